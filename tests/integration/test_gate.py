"""The gate at Apache, for real: a second virtual host from the test bed's site file with the
gate required of everyone (the test bed's own exempts this machine), and an Apache-only
(remote_user) virtual host in front of a recording backend. Both are added to the test bed's
Apache on the hub's host, and asked from there (the hub's firewall opens only its own ports)."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from tornado.httputil import HTTPHeaders

from hpchub.auth.frontend import GATE_REFUSAL
from hpchub.auth.remote_user import RemoteUserAuthenticator
from hpchub.config.loader import load_site, parse_site
from hpchub.deploy.install import Installer
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.render import SystemFile, apache_vhost
from hpchub.deploy.secrets import ensure_secrets

from .hubclient import HubClient
from .hubhost import hub_cmd, on_hub_host


def _https_port(testbed) -> int:
    return int(testbed["https_url"].rsplit(":", 1)[1])


def _answers(testbed, port: int) -> bool:
    def connect() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    return on_hub_host(testbed, connect)


def _wait(check, what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(what)


def _graceful(paths: DeployPaths) -> None:
    """The test bed's own Apache (its apachectl enters the hub's host)."""
    subprocess.run([str(paths.deploy.web.apachectl), "graceful"], check=True, capture_output=True)


def install_vhost(testbed, paths: DeployPaths) -> Path:
    """Install just the virtual host of ``paths`` with hpchub's installer (checked, atomic)."""
    web = paths.deploy.web
    vhost = SystemFile(web.vhost_file, apache_vhost(paths), "test vhost", check="apache")
    inst = Installer(paths, log=lambda m: None)
    inst.install_files(inst.plan([vhost]))
    _graceful(paths)
    _wait(lambda: _answers(testbed, web.https_port), f"Apache on {web.https_port}")
    return web.vhost_file


def remove_vhost(paths: DeployPaths) -> None:
    web = paths.deploy.web
    for p in (web.vhost_link, web.vhost_file):
        if p is not None:
            p.unlink(missing_ok=True)
    _graceful(paths)


def _variant(testbed, suffix: str, port: int, **changes) -> dict:
    data = load_site(testbed["site_file"]).model_dump(mode="json")
    web = data["deploy"]["web"]
    web.update(
        https_port=port,
        http_port=None,
        vhost_file=f"{testbed['apache_confdir']}/sites-available/hpchub-test-{suffix}.conf",
        vhost_link=f"{testbed['apache_confdir']}/sites-enabled/hpchub-test-{suffix}.conf",
    )
    web["gate"]["exempt_networks"] = []
    for key, value in changes.items():
        section, name = key.split("__")
        data[section][name] = value
    return data


# -- PAM behind the gate -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gated(testbed):
    port = _https_port(testbed) + 1
    paths = DeployPaths(parse_site(_variant(testbed, "gate", port)), Path(testbed["site_file"]))
    install_vhost(testbed, paths)
    yield f"https://localhost:{port}"
    remove_vhost(paths)


def _client(base: str, testbed, gate_user: dict | None) -> HubClient:
    c = HubClient(base)
    c.s.verify = testbed["tls_cert"]
    if gate_user:
        c.s.auth = (gate_user["name"], gate_user["password"])
    return c


def test_outsiders_meet_the_gate(gated, testbed):
    c = _client(gated, testbed, None)
    assert on_hub_host(testbed, c.s.get, gated + "/hub/login").status_code == 401


def test_the_gates_user_logs_in_as_themselves(gated, testbed):
    alice = testbed["users"][0]
    c = _client(gated, testbed, alice)
    r = on_hub_host(testbed, c.login, alice["name"], alice["password"])
    assert r.status_code == 302


def test_another_gate_identity_cannot_use_a_known_password(gated, testbed):
    alice, bob = testbed["users"][0], testbed["users"][1]
    c = _client(gated, testbed, bob)  # bob passed the gate...
    r = on_hub_host(testbed, c.login, alice["name"], alice["password"])  # ...knows her password
    assert r.status_code == 403
    log = (Path(testbed["logs"]) / "hub.log").read_text()
    assert "Login as 'alice' refused: the gate identified 'bob'" in log


def test_a_spoofed_identity_header_is_dropped(gated, testbed):
    alice = testbed["users"][0]
    # From this machine the test bed's own vhost skips the gate: a forged identity header
    # would make the hub refuse alice. Apache drops it, so alice logs in.
    c = _client(testbed["https_url"], testbed, None)
    c.s.headers["X-Hpchub-Remote-User"] = "bob"
    assert c.login(alice["name"], alice["password"]).status_code == 302


# -- Apache alone (remote_user) ------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, dict]] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        self.seen.append((self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        return


@pytest.fixture(scope="module")
def remote_user(testbed, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("remote-user")
    backend_port = _https_port(testbed) + 2
    port = _https_port(testbed) + 3
    # The backend listens on the hub's host, where the test bed's Apache forwards to it.
    server = on_hub_host(
        testbed, http.server.ThreadingHTTPServer, ("127.0.0.1", backend_port), _Recorder
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = _variant(
        testbed,
        "remote-user",
        port,
        hub__authenticator="remote_user",
        hub__public_url=f"http://127.0.0.1:{backend_port}/",
        hub__data_dir=str(tmp / "state"),
    )
    data["deploy"]["etc_dir"] = str(tmp / "etc")
    paths = DeployPaths(parse_site(data), Path(testbed["site_file"]))
    ensure_secrets(paths, chown=False)
    install_vhost(testbed, paths)
    yield f"https://localhost:{port}", paths
    remove_vhost(paths)
    server.shutdown()
    server.server_close()


def test_apache_vouches_for_the_gate_user_to_the_hub_only(remote_user, testbed):
    base, paths = remote_user
    alice = testbed["users"][0]
    s = requests.Session()
    s.trust_env = False
    s.verify = testbed["tls_cert"]
    forged = {"X-Hpchub-Remote-User": "root", "X-Hpchub-Frontend": "forged"}
    get = lambda path: on_hub_host(testbed, s.get, base + path, headers=forged)  # noqa: E731
    assert get("/hub/login").status_code == 401
    assert _Recorder.seen == []
    s.auth = (alice["name"], alice["password"])
    _Recorder.seen.clear()
    assert get("/hub/login").status_code == 200
    assert get("/user/alice/api/status").status_code == 200
    (hub_path, hub_headers), (user_path, user_headers) = _Recorder.seen
    secret = paths.frontend_secret.read_text().strip()
    assert hub_path == "/hub/login"
    assert hub_headers["X-Hpchub-Remote-User"] == "alice"
    assert hub_headers["X-Hpchub-Frontend"] == secret
    assert hub_headers["X-Forwarded-Proto"] == "https"
    # A user's server learns neither who passed the gate nor the secret.
    assert user_path == "/user/alice/api/status"
    assert "X-Hpchub-Remote-User" not in user_headers
    assert "X-Hpchub-Frontend" not in user_headers


async def test_the_hubs_authenticator_accepts_what_apache_sent(remote_user, testbed):
    base, paths = remote_user
    _Recorder.seen.clear()
    alice = testbed["users"][0]
    s = requests.Session()
    s.trust_env = False
    s.verify = testbed["tls_cert"]
    s.auth = (alice["name"], alice["password"])
    on_hub_host(testbed, s.get, base + "/hub/login")
    headers = HTTPHeaders(_Recorder.seen[-1][1])
    auth = RemoteUserAuthenticator(frontend_secret_file=str(paths.frontend_secret))

    class Handler:
        class request:  # noqa: N801 - shaped like tornado's handler.request
            remote_ip = "127.0.0.1"

    Handler.request.headers = headers
    assert (await auth.authenticate(Handler()))["name"] == "alice"
    # The same request straight to the hub's port (as a job could send it) has no secret.
    direct = HTTPHeaders({"X-Hpchub-Remote-User": "alice"})
    Handler.request.headers = direct
    assert await auth.authenticate(Handler()) is None


# -- Around the gate: straight to the hub's own port, from a compute node ---------------------

BATCH_NETNS = "/run/netns/hpchub-batch"

_FROM_NODE = r"""
import json, sys, requests
hub, user, password, token, refusal = sys.argv[1:6]
forged = {"X-Forwarded-For": "127.0.0.1"}  # the test bed's gate exempts loopback
out = {}
for name, headers in (("form", {}), ("form_forged", forged)):
    s = requests.Session()
    s.trust_env = False
    s.get(hub + "/hub/login", headers=headers, timeout=30)
    form = {"username": user, "password": password, "_xsrf": s.cookies.get("_xsrf", "")}
    r = s.post(hub + "/hub/login", data=form, headers=headers, allow_redirects=False, timeout=60)
    out[name] = [r.status_code, refusal in r.text, "jupyterhub-session-id" in r.cookies]
body = {"auth": {"username": user, "password": password}}
for name, headers in (("token_api", {}), ("token_api_forged", forged)):
    r = requests.post(hub + f"/hub/api/users/{user}/tokens", json=body, headers=headers, timeout=60)
    out[name] = [r.status_code, r.text[:200]]
auth = {"Authorization": f"token {token}"}
out["api"] = requests.get(hub + "/hub/api/", timeout=30).status_code
out["api_user"] = requests.get(hub + "/hub/api/user", headers=auth, timeout=30).status_code
r = requests.post(hub + "/hub/api/hpchub/port", json={"port": 1}, headers=auth, timeout=30)
out["callback"] = [r.status_code, r.text[:200]]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def from_batch_node(testbed):
    """What a user on the batch node (outside the gate's exempt networks) gets from the hub's
    own port, with alice's correct password and a token of hers."""
    hub = load_site(testbed["site_file"]).hub.hub_connect_url.rstrip("/")
    alice = testbed["users"][0]
    c = HubClient(testbed["hub_url"])  # from this machine, exempt: allowed
    assert c.login(alice["name"], alice["password"]).status_code == 302
    token = c.make_token()
    r = subprocess.run(
        ["nsenter", f"--net={BATCH_NETNS}", sys.executable, "-c", _FROM_NODE]
        + [hub, alice["name"], alice["password"], token, GATE_REFUSAL],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_correct_password_straight_to_the_hub_port_is_refused(from_batch_node):
    for name in ("form", "form_forged"):
        status, says_why, session = from_batch_node[name]
        assert (status, says_why, session) == (403, True, False), (name, from_batch_node[name])
    for name in ("token_api", "token_api_forged"):
        status, text = from_batch_node[name]
        assert status == 403, (name, from_batch_node[name])
        assert '"token"' not in text


def test_the_api_and_the_port_callback_still_answer_there(from_batch_node):
    assert from_batch_node["api"] == 200
    assert from_batch_node["api_user"] == 200
    # A user's token is not a server's: the callback answers, and refuses it for that reason.
    status, text = from_batch_node["callback"]
    assert status == 403 and "this token belongs to no starting server" in text, (status, text)


def test_doctor_sees_no_login_around_the_gate(testbed):
    hpchub = str(Path(sys.executable).with_name("hpchub"))
    r = subprocess.run(
        hub_cmd(testbed, hpchub, "--config", testbed["site_file"], "doctor", "--json"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    gate = [f for f in json.loads(r.stdout) if f["check"] == "SSO gate"]
    assert [f["severity"] for f in gate] == ["ok"], gate
    assert "refused for the gate" in gate[0]["what"]
