"""The gate at Apache, for real: a second virtual host from the test bed's site file with the
gate required of everyone (the test bed's own exempts this machine), and an Apache-only
(remote_user) virtual host in front of a recording backend."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from tornado.httputil import HTTPHeaders

from hpchub.auth.remote_user import RemoteUserAuthenticator
from hpchub.config.loader import load_site, parse_site
from hpchub.deploy.install import Installer
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.render import SystemFile, apache_vhost
from hpchub.deploy.secrets import ensure_secrets

from .hubclient import HubClient


def _https_port(testbed) -> int:
    return int(testbed["https_url"].rsplit(":", 1)[1])


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait(check, what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(what)


def _graceful() -> None:
    subprocess.run(["apachectl", "graceful"], check=True, capture_output=True)


def install_vhost(paths: DeployPaths) -> Path:
    """Install just the virtual host of ``paths`` with hpchub's installer (checked, atomic)."""
    web = paths.deploy.web
    vhost = SystemFile(web.vhost_file, apache_vhost(paths), "test vhost", check="apache")
    inst = Installer(paths, log=lambda m: None)
    inst.install_files(inst.plan([vhost]))
    _graceful()
    _wait(lambda: _answers(web.https_port), f"Apache on {web.https_port}")
    return web.vhost_file


def remove_vhost(paths: DeployPaths) -> None:
    web = paths.deploy.web
    for p in (web.vhost_link, web.vhost_file):
        if p is not None:
            p.unlink(missing_ok=True)
    _graceful()


def _variant(testbed, suffix: str, port: int, **changes) -> dict:
    data = load_site(testbed["site_file"]).model_dump(mode="json")
    web = data["deploy"]["web"]
    web.update(
        https_port=port,
        http_port=None,
        vhost_file=f"/etc/apache2/sites-available/hpchub-test-{suffix}.conf",
        vhost_link=f"/etc/apache2/sites-enabled/hpchub-test-{suffix}.conf",
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
    install_vhost(paths)
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
    assert c.s.get(gated + "/hub/login").status_code == 401


def test_the_gates_user_logs_in_as_themselves(gated, testbed):
    alice = testbed["users"][0]
    c = _client(gated, testbed, alice)
    assert c.login(alice["name"], alice["password"]).status_code == 302


def test_another_gate_identity_cannot_use_a_known_password(gated, testbed):
    alice, bob = testbed["users"][0], testbed["users"][1]
    c = _client(gated, testbed, bob)  # bob passed the gate...
    r = c.login(alice["name"], alice["password"])  # ...and knows alice's password
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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", backend_port), _Recorder)
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
    install_vhost(paths)
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
    assert s.get(base + "/hub/login", headers=forged).status_code == 401
    assert _Recorder.seen == []
    s.auth = (alice["name"], alice["password"])
    _Recorder.seen.clear()
    assert s.get(base + "/hub/login", headers=forged).status_code == 200
    assert s.get(base + "/user/alice/api/status", headers=forged).status_code == 200
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
    s.get(base + "/hub/login")
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
