"""Map the site file onto JupyterHub's traitlets: small pure functions, one per section.

Each takes the model and a traitlets ``Config`` and only sets keys; tests apply them to an
empty ``Config()`` and assert on the result.
"""

from __future__ import annotations

from traitlets.config import Config

from ..config.units import format_duration, format_memory
from .models import HubSettings, ResourceDefaults, SingleUserSettings, SiteConfig, SlurmSettings


def apply_hub(hub: HubSettings, c: Config) -> None:
    """Bind URLs, login policy, state files, proxy."""
    c.JupyterHub.bind_url = hub.public_url
    c.JupyterHub.hub_bind_url = hub.hub_bind_url
    if hub.hub_connect_url:
        c.JupyterHub.hub_connect_url = hub.hub_connect_url
    c.JupyterHub.db_url = f"sqlite:///{hub.data_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(hub.data_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.log_level = hub.log_level
    # Servers are Slurm jobs: they outlive hub restarts, and the hub finds them again.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = not hub.external_proxy
    c.ConfigurableHTTPProxy.should_start = not hub.external_proxy
    c.ConfigurableHTTPProxy.api_url = hub.proxy_api_url.rstrip("/")
    if hub.authenticator == "pam":
        c.JupyterHub.authenticator_class = "pam"
        # An unprivileged hub cannot open PAM sessions; authentication alone is enough.
        c.PAMAuthenticator.open_sessions = False
        c.PAMAuthenticator.check_account = True
    else:
        c.JupyterHub.authenticator_class = "hpchub.auth.remote_user.RemoteUserAuthenticator"
    c.Authenticator.allowed_users = set(hub.allowed_users)
    c.Authenticator.admin_users = set(hub.admin_users)
    if hub.allowed_groups or hub.admin_groups:
        c.PAMAuthenticator.allowed_groups = set(hub.allowed_groups)
        c.PAMAuthenticator.admin_groups = set(hub.admin_groups)


def apply_slurm(slurm: SlurmSettings, c: Config) -> None:
    """How the spawner reaches Slurm."""
    c.SlurmSpawner.slurm_bin_dir = str(slurm.bin_dir)
    c.SlurmSpawner.sudo_path = str(slurm.sudo)
    c.SlurmSpawner.partitions = [p.model_dump(mode="json") for p in slurm.partitions]
    c.SlurmSpawner.default_partition = slurm.default_partition
    c.SlurmSpawner.submit_timeout = slurm.submit_timeout
    c.SlurmSpawner.poll_interval_s = float(slurm.poll_interval)
    c.SlurmSpawner.extra_sbatch_args = list(slurm.extra_sbatch_args)


def apply_singleuser(su: SingleUserSettings, c: Config) -> None:
    """What runs in the job and how long the hub waits for it."""
    c.JupyterHub.spawner_class = "hpchub.spawner.slurm.SlurmSpawner"
    c.SlurmSpawner.singleuser_prefix = str(su.prefix)
    c.SlurmSpawner.cmd = [str(su.prefix / "bin" / "jupyterhub-singleuser")]
    c.Spawner.default_url = su.default_url
    c.SlurmSpawner.port_range = tuple(su.port_range)
    c.SlurmSpawner.log_dir = su.log_dir
    c.SlurmSpawner.log_max_age_days = su.log_max_age_days
    c.SlurmSpawner.start_timeout = su.start_timeout + su.pending_timeout
    c.SlurmSpawner.pending_timeout = su.pending_timeout
    c.Spawner.disable_user_config = su.disable_user_config
    c.SlurmSpawner.job_environment = dict(su.environment)


def apply_resources(r: ResourceDefaults, c: Config) -> None:
    """Defaults for a server when the user chooses nothing."""
    c.SlurmSpawner.default_resources = {
        "memory": format_memory(r.memory),
        "cpus": r.cpus,
        "time": format_duration(r.time),
    }


def apply_site(site: SiteConfig, c: Config | None = None) -> Config:
    """Apply every section of the site file; returns the Config it filled."""
    c = Config() if c is None else c
    apply_hub(site.hub, c)
    apply_slurm(site.slurm, c)
    apply_singleuser(site.singleuser, c)
    apply_resources(site.resources, c)
    from ..spawner.callback import handlers

    c.JupyterHub.extra_handlers = handlers()
    from ..courses.apply import apply_courses

    apply_courses(site, c)
    return c
