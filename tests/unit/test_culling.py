import datetime as dt

from hpchub.culling.policy import IdlePolicy, should_cull
from hpchub.culling.service import CULLER_SCOPES
from hpchub.hub.wiring import site_config

from .test_resources import SITE


def server(user, options, name=""):
    return {"full_name": f"{user}/{name}", "name": name, "user_options": options}


def test_idle_timeout_follows_profile_and_memory():
    policy = IdlePolicy.from_site(SITE, groups=lambda user: frozenset({"power"}))
    assert policy.timeout_for("alice", {"profile": "small"}) == 24 * 3600
    assert policy.timeout_for("alice", {"profile": "big"}) == 3600
    # Custom: by memory, from the site's table (up to 4G: 24h; up to 16G: 4h).
    assert policy.timeout_for("alice", {"profile": "custom", "memory": "2G"}) == 24 * 3600
    assert policy.timeout_for("alice", {"profile": "custom", "memory": "8G"}) == 4 * 3600


def test_big_goes_first_small_may_stay():
    policy = IdlePolicy.from_site(SITE)
    idle_2h = dt.timedelta(hours=2).total_seconds()
    assert should_cull(policy, idle_2h, server("alice", {"profile": "big"}))
    assert not should_cull(policy, idle_2h, server("alice", {"profile": "small"}))


def test_options_that_no_longer_resolve_get_the_shortest_timeout():
    policy = IdlePolicy.from_site(SITE)
    assert policy.timeout_for("alice", {"profile": "removed-profile"}) == policy.shortest == 3600


def test_no_user_no_cull():
    assert not should_cull(IdlePolicy.from_site(SITE), 10**9, {"user_options": {}})


def test_service_and_least_privilege_role():
    c = site_config(SITE, site_file="/etc/hpchub/hpchub.yaml")
    (svc,) = c.JupyterHub.services
    assert svc["name"] == "idle-culler"
    assert "--api-page-size=200" in svc["command"] and "--concurrency=10" in svc["command"]
    assert any(a.startswith("--config=") and a.endswith("culler_config.py") for a in svc["command"])
    assert svc["environment"] == {"HPCHUB_CONFIG": "/etc/hpchub/hpchub.yaml"}
    (role,) = c.JupyterHub.load_roles
    assert role == {"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]}
    assert set(CULLER_SCOPES) == {
        "list:users",
        "read:users:activity",
        "read:servers",
        "delete:servers",
    }
    assert c.SlurmSpawner.job_environment["JUPYTERHUB_ACTIVITY_INTERVAL"] == "300"


def test_arbiter_hook_signature():
    from hpchub.culling import arbiter

    arbiter._policy.cache_clear()
    arbiter._policy = lambda: IdlePolicy.from_site(SITE)  # type: ignore[assignment]
    try:
        assert arbiter.cull_arbiter(
            inactive=dt.timedelta(hours=2),
            inactive_limit=60,
            server=server("alice", {"profile": "big"}),
        )
    finally:
        import importlib

        importlib.reload(arbiter)
