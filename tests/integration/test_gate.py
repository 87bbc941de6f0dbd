"""The gate at Apache, for real: a second virtual host from the test bed's site file with the
gate required of everyone (the test bed's own exempts this machine), and an Apache-only
(remote_user) virtual host in front of a recording backend (both in gate_vhosts.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from tornado.httputil import HTTPHeaders

from hpchub.auth.frontend import GATE_REFUSAL
from hpchub.auth.remote_user import RemoteUserAuthenticator
from hpchub.config.loader import load_site

from .gate_vhosts import Recorder
from .hubclient import HubClient


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


def test_apache_vouches_for_the_gate_user_to_the_hub_only(remote_user, testbed):
    base, paths = remote_user
    alice = testbed["users"][0]
    s = requests.Session()
    s.trust_env = False
    s.verify = testbed["tls_cert"]
    forged = {"X-Hpchub-Remote-User": "root", "X-Hpchub-Frontend": "forged"}
    Recorder.seen.clear()
    assert s.get(base + "/hub/login", headers=forged).status_code == 401
    assert Recorder.seen == []
    s.auth = (alice["name"], alice["password"])
    Recorder.seen.clear()
    assert s.get(base + "/hub/login", headers=forged).status_code == 200
    assert s.get(base + "/user/alice/api/status", headers=forged).status_code == 200
    (hub_path, hub_headers), (user_path, user_headers) = Recorder.seen
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
    Recorder.seen.clear()
    alice = testbed["users"][0]
    s = requests.Session()
    s.trust_env = False
    s.verify = testbed["tls_cert"]
    s.auth = (alice["name"], alice["password"])
    s.get(base + "/hub/login")
    headers = HTTPHeaders(Recorder.seen[-1][1])
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
        [hpchub, "--config", testbed["site_file"], "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    gate = [f for f in json.loads(r.stdout) if f["check"] == "SSO gate"]
    assert [f["severity"] for f in gate] == ["ok"], gate
    assert "refused for the gate" in gate[0]["what"]
