from traitlets.config import Config

from hpchub.config.apply import apply_hub, apply_site, apply_slurm
from hpchub.config.loader import parse_site


def test_apply_site_on_empty_config():
    site = parse_site(
        {
            "hub": {
                "allowed_groups": ["jupyter"],
                "admin_users": ["root2"],
                "data_dir": "/srv/hub",
            },
            "slurm": {"poll_interval": 10},
        }
    )
    c = apply_site(site, Config())
    assert c.JupyterHub.spawner_class == "hpchub.spawner.slurm.SlurmSpawner"
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.db_url == "sqlite:////srv/hub/jupyterhub.sqlite"
    assert c.PAMAuthenticator.allowed_groups == {"jupyter"}
    assert c.PAMAuthenticator.open_sessions is False
    assert c.Authenticator.admin_users == {"root2"}
    assert c.SlurmSpawner.poll_interval_s == 10.0
    assert [p["key"] for p in c.SlurmSpawner.profiles] == ["small-long", "medium", "large-short"]
    assert c.SlurmSpawner.profiles[1]["partitions"] == ["jupyter-short", "jupyter-overflow"]
    assert c.SlurmSpawner.custom_resources["max_memory"] == "16G"
    assert c.JupyterHub.allow_named_servers is True
    assert c.JupyterHub.named_server_limit_per_user == 3
    assert c.Spawner.default_url == "/lab"
    assert c.Spawner.disable_user_config is True
    assert tuple(h[0] for h in c.JupyterHub.extra_handlers) == ("/api/hpchub/port",)


def test_external_proxy_is_not_started_by_hub():
    c = Config()
    apply_hub(parse_site({}).hub, c)
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.JupyterHub.cleanup_proxy is False


def test_slurm_partitions_are_plain_data():
    c = Config()
    apply_slurm(parse_site({}).slurm, c)
    assert c.SlurmSpawner.partitions[0] == {
        "name": "jupyter-short",
        "description": "",
        "max_time": "12h",
        "max_memory": None,
        "max_cpus": None,
    }


def test_no_batchspawner_anywhere():
    import sys

    import hpchub.spawner.callback  # noqa: F401
    import hpchub.spawner.slurm  # noqa: F401

    assert "batchspawner" not in sys.modules
