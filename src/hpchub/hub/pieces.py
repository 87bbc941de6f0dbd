"""The hub's own pieces of configuration: small pure functions, site model in, ``Config`` out.

Tests apply them to nothing and assert on what they return. Features keep their pieces in their
own ``hubconfig`` module; ``configure`` merges them all (``merge.py``).
"""

from __future__ import annotations

from pathlib import Path

from traitlets.config import Config

from ..config.models import SiteConfig
from ..culling.service import activity_environment
from ..deploy.database import db_url
from ..kernels.extensions import job_environment
from ..singleuser.apps import CODE_SERVER_ENV

HUB_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "hub"


def hub_piece(site: SiteConfig) -> Config:
    """Bind URLs, state files, the proxy, who may log in."""
    hub, c = site.hub, Config()
    c.JupyterHub.bind_url = hub.public_url
    c.JupyterHub.hub_bind_url = hub.hub_bind_url
    if hub.hub_connect_url:
        c.JupyterHub.hub_connect_url = hub.hub_connect_url
    if hub.database is None:  # PostgreSQL: deploy.database.database_piece
        c.JupyterHub.db_url = db_url(site)
    c.JupyterHub.cookie_secret_file = str(hub.data_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.log_level = hub.log_level
    # Our page templates (home page notes) extend JupyterHub's own.
    c.JupyterHub.template_paths = [str(HUB_TEMPLATES)]
    # Servers are Slurm jobs: they outlive hub restarts, and the hub finds them again.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = not hub.external_proxy
    c.ConfigurableHTTPProxy.should_start = not hub.external_proxy
    c.ConfigurableHTTPProxy.api_url = hub.proxy_api_url.rstrip("/")
    c.Authenticator.allowed_users = set(hub.allowed_users)
    c.Authenticator.admin_users = set(hub.admin_users)
    return c


def spawner_piece(site: SiteConfig) -> Config:
    """The spawner holds the site model itself; JupyterHub's own spawner traits come from it."""
    su, c = site.singleuser, Config()
    c.JupyterHub.spawner_class = "hpchub.spawner.slurm.SlurmSpawner"
    c.SlurmSpawner.site = site
    c.SlurmSpawner.cmd = [str(su.prefix / "bin" / "hpchub-jupyterhub-singleuser")]
    c.Spawner.default_url = su.default_url
    c.SlurmSpawner.start_timeout = su.start_timeout + su.pending_timeout
    c.Spawner.disable_user_config = su.disable_user_config
    # JupyterHub's own poll reads the monitor's latest view: no Slurm call per server.
    c.Spawner.poll_interval = site.slurm.poll_interval
    return c


def environment_piece(site: SiteConfig) -> Config:
    """The job's environment, composed in this one place: the admin's variables, then what
    kernels and extensions need (our folders first on JUPYTER_PATH), then activity reporting."""
    env = job_environment(
        site.kernels, site.extensions, site.singleuser.prefix, dict(site.singleuser.environment)
    )
    env.update(activity_environment(site))
    if site.apps.code_server is not None and "vscode" in site.apps.offered:
        env[CODE_SERVER_ENV] = str(site.apps.code_server)
    c = Config()
    c.SlurmSpawner.job_environment = env
    return c


def servers_piece(site: SiteConfig) -> Config:
    """Named servers and how many each user may have."""
    c = Config()
    c.JupyterHub.allow_named_servers = site.servers.named_servers
    c.JupyterHub.named_server_limit_per_user = site.servers.named_server_limit
    return c
