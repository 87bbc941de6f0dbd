from traitlets.config import Config

from hpchub.config.loader import parse_site
from hpchub.hub.pieces import hub_piece
from hpchub.hub.wiring import site_config
from hpchub.spawner.slurm import SlurmSpawner


def test_apply_site_on_empty_config():
    site = parse_site(
        {
            "hub": {
                "allowed_groups": ["jupyter"],
                "admin_users": ["root2"],
                "data_dir": "/srv/hub",
            },
            "slurm": {"poll_interval": "10s"},
        }
    )
    c = site_config(site)
    assert c.JupyterHub.spawner_class == "hpchub.spawner.slurm.SlurmSpawner"
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.db_url == "sqlite:////srv/hub/jupyterhub.sqlite"
    assert c.PAMAuthenticator.allowed_groups == {"jupyter"}
    assert c.PAMAuthenticator.open_sessions is False
    assert c.Authenticator.admin_users == {"root2"}
    assert c.SlurmSpawner.site is site
    assert c.JupyterHub.allow_named_servers is True
    assert c.JupyterHub.named_server_limit_per_user == 3
    assert c.Spawner.default_url == "/lab"
    assert c.Spawner.disable_user_config is True
    assert tuple(h[0] for h in c.JupyterHub.extra_handlers) == (
        "/api/hpchub/port",
        "/api/hpchub/time/([^/]+)/?([^/]*)",
    )


def test_external_proxy_is_not_started_by_hub():
    c = hub_piece(parse_site({}))
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.JupyterHub.cleanup_proxy is False


def test_every_spawner_reads_the_one_site_model():
    """The spawner holds the model, not copies of its values or of its defaults."""
    site = parse_site(
        {
            "slurm": {
                "poll_interval": "10s",
                "partitions": [
                    {"name": "jupyter-short"},
                    {"name": "jupyter-long", "max_time": "3d"},
                    {"name": "jupyter-overflow"},
                ],
            }
        }
    )
    a, b = SlurmSpawner(config=site_config(site)), SlurmSpawner(config=site_config(site))
    assert a.site is site and b.site is site  # traitlets deep-copies config: never this one
    assert a.catalog is b.catalog
    assert a.poll_interval_s == 10.0
    assert a.port_range == tuple(site.singleuser.port_range)
    assert [p.key for p in a.catalog.profiles] == ["small-long", "medium", "large-short"]
    assert a.catalog.profiles[1].partitions == ["jupyter-short", "jupyter-overflow"]
    # With nothing set, the spawner's defaults are the model's own, not a copy that can drift.
    from hpchub.config.models import SiteConfig

    assert SlurmSpawner().site == SiteConfig()


def test_no_batchspawner_anywhere():
    import sys

    import hpchub.spawner.callback  # noqa: F401
    import hpchub.spawner.slurm  # noqa: F401

    assert "batchspawner" not in sys.modules


def test_pieces_merge_in_any_order_and_conflicts_are_named():
    import random

    import pytest

    from hpchub.hub.merge import WiringConflict, merge

    site = parse_site({"hub": {"allowed_groups": ["jupyter"]}})
    whole = site_config(site)
    from hpchub.hub import wiring

    pieces = [
        wiring.hub_piece(site),
        wiring.auth_piece(site),
        wiring.spawner_piece(site),
        wiring.environment_piece(site),
        wiring.servers_piece(site),
        wiring.culling_piece(site, None),
        wiring.deploy_piece(site),
        wiring.callback_piece(),
        wiring.courses_piece(site),
    ]
    random.Random(1).shuffle(pieces)
    shuffled = merge(pieces)
    pam = "hpchub.auth.names.PAMAuthenticator"
    assert shuffled.JupyterHub.authenticator_class == whole.JupyterHub.authenticator_class == pam
    assert shuffled.SlurmSpawner.job_environment == whole.SlurmSpawner.job_environment
    a, b = Config(), Config()
    a.JupyterHub.authenticator_class = "pam"
    b.JupyterHub.authenticator_class = "other"
    with pytest.raises(WiringConflict, match="authenticator_class is set twice"):
        merge([a, b])
    a.SlurmSpawner.job_environment = {"X": "1"}
    b2 = Config()
    b2.SlurmSpawner.job_environment = {"X": "2"}
    with pytest.raises(WiringConflict, match=r"job_environment\['X'\]"):
        merge([a, b2])


def test_the_job_environment_is_composed_in_one_place():
    site = parse_site({"singleuser": {"environment": {"FOO": "bar"}}})
    env = site_config(site).SlurmSpawner.job_environment
    assert env["FOO"] == "bar"
    assert env["JUPYTERHUB_ACTIVITY_INTERVAL"] == str(site.culling.activity_interval)
    assert env["MODULEPATH"]
