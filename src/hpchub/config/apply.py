"""Map the site file onto JupyterHub's traitlets: small pure functions, one per section.

Each takes the model and a traitlets ``Config`` and only sets keys; tests apply them to an
empty ``Config()`` and assert on the result.
"""

from __future__ import annotations

from pathlib import Path

from traitlets.config import Config

from .models import HubSettings, SingleUserSettings, SiteConfig, SlurmSettings


def apply_hub(hub: HubSettings, c: Config) -> None:
    """Bind URLs, login policy, state files, proxy."""
    c.JupyterHub.bind_url = hub.public_url
    c.JupyterHub.hub_bind_url = hub.hub_bind_url
    if hub.hub_connect_url:
        c.JupyterHub.hub_connect_url = hub.hub_connect_url
    c.JupyterHub.db_url = f"sqlite:///{hub.data_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(hub.data_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.log_level = hub.log_level
    c.SlurmSpawner.state_dir = str(hub.data_dir)
    c.SlurmSpawner.hub_name = hub.name
    # Our page templates (home page notes) extend JupyterHub's own.
    c.JupyterHub.template_paths = [
        str(Path(__file__).resolve().parent.parent / "templates" / "hub")
    ]
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
    # JupyterHub's own poll reads the monitor's latest view: no Slurm call per server.
    c.Spawner.poll_interval = slurm.poll_interval
    c.SlurmSpawner.extra_sbatch_args = list(slurm.extra_sbatch_args)


def apply_singleuser(su: SingleUserSettings, c: Config) -> None:
    """What runs in the job and how long the hub waits for it."""
    c.JupyterHub.spawner_class = "hpchub.spawner.slurm.SlurmSpawner"
    c.SlurmSpawner.singleuser_prefix = str(su.prefix)
    c.SlurmSpawner.cmd = [str(su.prefix / "bin" / "hpchub-jupyterhub-singleuser")]
    c.Spawner.default_url = su.default_url
    c.SlurmSpawner.port_range = tuple(su.port_range)
    c.SlurmSpawner.log_dir = su.log_dir
    c.SlurmSpawner.log_max_age_days = su.log_max_age_days
    c.SlurmSpawner.start_timeout = su.start_timeout + su.pending_timeout
    c.SlurmSpawner.pending_timeout = su.pending_timeout
    c.Spawner.disable_user_config = su.disable_user_config
    c.SlurmSpawner.job_environment = dict(su.environment)


def apply_choices(site: SiteConfig, c: Config) -> None:
    """Profiles, custom limits and named servers: what the form offers."""
    c.SlurmSpawner.profiles = [p.model_dump(mode="json") for p in site.profiles]
    c.SlurmSpawner.custom_resources = site.custom.model_dump(mode="json")
    c.SlurmSpawner.courses = [course.model_dump(mode="json") for course in site.courses]
    c.JupyterHub.allow_named_servers = site.servers.named_servers
    c.JupyterHub.named_server_limit_per_user = site.servers.named_server_limit


def apply_culling(site: SiteConfig, c: Config, site_file: str | None = None) -> None:
    """The idle culler service and its role; activity reporting in the jobs."""
    from ..culling.service import culler_role, culler_service

    env = dict(c.SlurmSpawner.job_environment) if "job_environment" in c.SlurmSpawner else {}
    # Servers report activity (busy kernels and terminals included) often enough for the
    # shortest idle timeout to be judged fairly.
    env["JUPYTERHUB_ACTIVITY_INTERVAL"] = str(site.culling.activity_interval)
    env["HPCHUB_BUSY_CHECK"] = str(site.culling.busy_check)
    c.SlurmSpawner.job_environment = env
    if site.culling.enabled:
        services = list(c.JupyterHub.services) if "services" in c.JupyterHub else []
        c.JupyterHub.services = [*services, culler_service(site, site_file=site_file)]
        roles = list(c.JupyterHub.load_roles) if "load_roles" in c.JupyterHub else []
        c.JupyterHub.load_roles = [*roles, culler_role()]


def apply_site(site: SiteConfig, c: Config | None = None, site_file: str | None = None) -> Config:
    """Apply every section of the site file; returns the Config it filled."""
    c = Config() if c is None else c
    apply_hub(site.hub, c)
    apply_slurm(site.slurm, c)
    apply_singleuser(site.singleuser, c)
    apply_choices(site, c)
    from ..kernels.hubconfig import apply_kernels

    apply_kernels(site, c)
    apply_culling(site, c, site_file)
    from ..deploy.hubconfig import apply_deploy

    apply_deploy(site, c)
    from ..spawner.callback import handlers

    c.JupyterHub.extra_handlers = handlers()
    from ..courses.apply import apply_courses

    apply_courses(site, c)
    return c
