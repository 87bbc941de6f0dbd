"""The gate's identity at the hub: PAM that must agree with it, and Apache-only remote_user."""

from types import SimpleNamespace

import pytest
from tornado.httputil import HTTPHeaders

from hpchub.auth.gate import GatedPAMAuthenticator, GateRefused, gate_account
from hpchub.auth.hubconfig import auth_piece
from hpchub.auth.remote_user import RemoteUserAuthenticator
from hpchub.deploy.hubconfig import scrubbed_log_request

PATTERN = r"^(?P<user>[a-z]+)@example\.org$"


def handler(**headers):
    return SimpleNamespace(
        request=SimpleNamespace(headers=HTTPHeaders(headers), remote_ip="10.1.1.1")
    )


def test_gate_account_mapping():
    assert gate_account(HTTPHeaders(), PATTERN) is None
    assert (
        gate_account(HTTPHeaders({"X-Hpchub-Remote-User": "alice@example.org"}), PATTERN) == "alice"
    )
    with pytest.raises(GateRefused):
        gate_account(HTTPHeaders({"X-Hpchub-Remote-User": "alice@evil.org"}), PATTERN)


async def test_gated_pam_refuses_another_account_before_trying_pam(pam_calls):
    auth = GatedPAMAuthenticator(gate_user_pattern=PATTERN)
    h = handler(**{"X-Hpchub-Remote-User": "bob@example.org"})
    assert await auth.authenticate(h, {"username": "alice", "password": "x"}) is None
    assert pam_calls == []  # no password of alice was tried for bob
    h = handler(**{"X-Hpchub-Remote-User": "alice@example.org"})
    assert await auth.authenticate(h, {"username": "alice", "password": "x"}) == "alice"
    h = handler(**{"X-Hpchub-Remote-User": "alice@other.org"})
    assert await auth.authenticate(h, {"username": "alice", "password": "x"}) is None


async def test_gated_pam_without_gate_identity_is_plain_pam(pam_calls):
    auth = GatedPAMAuthenticator(gate_user_pattern=PATTERN)
    assert await auth.authenticate(handler(), {"username": "alice", "password": "x"}) == "alice"
    assert pam_calls == ["alice"]


@pytest.fixture
def remote(tmp_path):
    secret = "s" * 64
    f = tmp_path / "frontend-secret"
    f.write_text(secret + "\n")
    auth = RemoteUserAuthenticator(frontend_secret_file=str(f), user_pattern=r"^(?P<user>[a-z]+)$")
    return auth, secret


async def test_remote_user_needs_the_frontend_secret(remote):
    auth, secret = remote
    assert await auth.authenticate(handler(**{"X-Hpchub-Remote-User": "root"})) is None
    wrong = handler(**{"X-Hpchub-Remote-User": "root", "X-Hpchub-Frontend": "x" * 64})
    assert await auth.authenticate(wrong) is None
    right = handler(**{"X-Hpchub-Remote-User": "nobody", "X-Hpchub-Frontend": secret})
    assert (await auth.authenticate(right))["name"] == "nobody"


async def test_remote_user_refuses_unknown_or_unmapped_accounts(remote):
    auth, secret = remote
    for ident in ("nosuchuserhere", "Root!", "", "root"):
        h = handler(**{"X-Hpchub-Remote-User": ident, "X-Hpchub-Frontend": secret})
        assert await auth.authenticate(h) is None


async def test_remote_user_admin_groups(remote):
    auth, secret = remote
    import grp
    import pwd

    auth.admin_groups = {grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name}
    h = handler(**{"X-Hpchub-Remote-User": "nobody", "X-Hpchub-Frontend": secret})
    assert (await auth.authenticate(h))["admin"] is True


def test_login_handler_is_the_remote_user_one(remote):
    auth, _ = remote
    assert auth.auto_login is True
    assert auth.get_handlers(None)[0][0] == "/login"


def test_scrubbed_log_drops_our_headers(monkeypatch):
    seen = {}
    monkeypatch.setattr("jupyterhub.log.log_request", lambda h: seen.update(h.request.headers))
    h = handler(**{"X-Hpchub-Frontend": "secret", "X-Hpchub-Remote-User": "a", "Accept": "*/*"})
    scrubbed_log_request(h)
    assert seen == {"Accept": "*/*"}


def test_one_place_picks_the_authenticator():

    from hpchub.config.loader import parse_site

    c = auth_piece(parse_site({}))
    assert c.JupyterHub.authenticator_class == "hpchub.auth.names.PAMAuthenticator"
    gate = {"enabled": True, "directives": ["AuthType shibboleth"], "user_pattern": PATTERN}
    c = auth_piece(parse_site({"deploy": {"web": {"gate": gate}}}))
    assert c.JupyterHub.authenticator_class == "hpchub.auth.gate.GatedPAMAuthenticator"
    assert c.GatedPAMAuthenticator.gate_user_pattern == PATTERN
    site = parse_site(
        {
            "hub": {"authenticator": "remote_user", "allowed_groups": ["jupyter"]},
            "deploy": {"web": {"gate": gate}},
        }
    )
    c = auth_piece(site)
    assert c.JupyterHub.authenticator_class.endswith("RemoteUserAuthenticator")
    assert c.RemoteUserAuthenticator.frontend_secret_file == "/var/lib/hpchub/frontend-secret"
    assert c.RemoteUserAuthenticator.allowed_groups == {"jupyter"}


# -- the gate from the hub's own port (issue 12 item 5) ------------------------------------------


class _Socket:
    def __init__(self, local):
        self.local = local

    def getsockname(self):
        return (self.local, 8081)


def peer_handler(peer: str, local: str = "10.0.0.1", remote_ip: str | None = None, **headers):
    """A request whose connection comes from ``peer`` to this machine's ``local`` address."""
    connection = SimpleNamespace(
        context=SimpleNamespace(address=(peer, 40000)),
        stream=SimpleNamespace(socket=_Socket(local)),
    )
    request = SimpleNamespace(
        headers=HTTPHeaders(headers), remote_ip=remote_ip or peer, connection=connection
    )
    return SimpleNamespace(request=request)


@pytest.fixture
def gated(tmp_path):
    f = tmp_path / "frontend-secret"
    f.write_text("s" * 64 + "\n")
    auth = GatedPAMAuthenticator(
        gate_user_pattern=PATTERN,
        frontend_secret_file=str(f),
        gate_exempt_networks=["192.168.0.0/16"],
    )
    return auth, "s" * 64


async def test_gate_refuses_a_login_around_it_before_trying_pam(gated, pam_calls):
    from tornado import web

    from hpchub.auth.frontend import GATE_REFUSAL

    auth, _ = gated
    data = {"username": "alice", "password": "x"}
    for h in (
        peer_handler("10.0.0.2"),  # a compute node, straight to the hub's port
        peer_handler("10.0.0.2", remote_ip="192.168.1.1"),  # ... with a forged X-Forwarded-For
        peer_handler("10.0.0.2", **{"X-Hpchub-Frontend": "x" * 64}),  # a guessed secret
        peer_handler("10.0.0.1"),  # this machine itself, outside the exempt networks
    ):
        with pytest.raises(web.HTTPError) as err:
            await auth.authenticate(h, data)
        assert err.value.status_code == 403 and err.value.reason == GATE_REFUSAL
    assert pam_calls == []


async def test_gate_lets_apache_and_the_exempt_networks_through(gated, pam_calls):
    auth, secret = gated
    data = {"username": "alice", "password": "x"}
    assert await auth.authenticate(peer_handler("10.0.0.2", **{"X-Hpchub-Frontend": secret}), data)
    assert await auth.authenticate(peer_handler("192.168.4.5"), data)  # exempt, directly
    # Forwarded by Apache or the proxy on this machine for an exempt client.
    assert await auth.authenticate(peer_handler("127.0.0.1", remote_ip="192.168.4.5"), data)
    assert await auth.authenticate(peer_handler("10.0.0.1", remote_ip="192.168.4.5"), data)
    assert pam_calls == ["alice"] * 4


def test_client_address_believes_forwarding_only_from_this_machine():
    from hpchub.auth.frontend import client_address, in_networks

    assert client_address(peer_handler("10.0.0.2", remote_ip="127.0.0.1").request) == "10.0.0.2"
    assert client_address(peer_handler("127.0.0.1", remote_ip="10.9.9.9").request) == "10.9.9.9"
    assert client_address(peer_handler("10.0.0.1").request) == "127.0.0.1"
    assert in_networks("10.1.2.3", ["10.0.0.0/8"]) and not in_networks("10.1.2.3", ["::1/128"])
    assert not in_networks("not an address", ["0.0.0.0/0"])


def test_the_gate_gets_its_secret_and_exempt_networks():
    from hpchub.config.loader import parse_site

    gate = {
        "enabled": True,
        "match_user": False,
        "exempt_networks": ["10.0.0.0/8"],
        "directives": ["AuthType shibboleth"],
    }
    c = auth_piece(parse_site({"deploy": {"web": {"gate": gate}}}))
    assert c.JupyterHub.authenticator_class == "hpchub.auth.gate.GatedPAMAuthenticator"
    assert c.GatedPAMAuthenticator.gate_match_user is False
    assert c.GatedPAMAuthenticator.frontend_secret_file == "/var/lib/hpchub/frontend-secret"
    assert c.GatedPAMAuthenticator.gate_exempt_networks == ["10.0.0.0/8"]
