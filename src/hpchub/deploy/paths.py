"""Where each deployed file lives, derived from the site file in one place.

The renderer, the installer, `hpchub doctor` and the testbed all ask this object, so that a
path is never spelled twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..config.models import SiteConfig
from ..config.timelimit import EXTEND_HELPER

USER_HEADER = "X-Hpchub-Remote-User"
"""The header Apache sets, for /hub/ only, to the identity that passed the gate."""
SECRET_HEADER = "X-Hpchub-Frontend"  # noqa: S105 - a header name, not a secret
"""The header that proves a request came through Apache (remote_user, or the gate on)."""

APACHE_MODULES = ("proxy", "proxy_http", "proxy_wstunnel", "ssl", "headers", "rewrite")
"""Apache modules the virtual host needs (besides the gate's own)."""


def _host_port(url: str) -> tuple[str, int]:
    u = urlparse(url)
    host = u.hostname or "127.0.0.1"
    port = u.port or (443 if u.scheme == "https" else 80)
    return host, port


def connect_host(host: str) -> str:
    """Where to connect to a service bound to ``host`` (a wildcard bind means loopback)."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "*") else host  # noqa: S104


def _below(base: Callable[[DeployPaths], Path], *names: str) -> property:
    """A path property: ``names`` below the folder ``base`` gives."""
    return property(lambda self: Path(base(self), *names))


@dataclass(frozen=True)
class DeployPaths:
    """Every path and address a deployment of ``site`` uses."""

    site: SiteConfig
    site_path: Path

    @property
    def deploy(self):
        return self.site.deploy

    # -- files that `hpchub install` writes ---------------------------------------------
    @property
    def hub_unit(self) -> Path:
        return self.deploy.systemd.unit_dir / self.deploy.systemd.hub_unit

    @property
    def proxy_unit(self) -> Path:
        return self.deploy.systemd.unit_dir / self.deploy.systemd.proxy_unit

    config_py = _below(lambda p: p.deploy.etc_dir, "jupyterhub_config.py")
    slurm_dir = _below(lambda p: p.deploy.etc_dir, "slurm")
    extend_helper = _below(lambda p: p.deploy.etc_dir, EXTEND_HELPER)
    apache_secret_conf = _below(lambda p: p.deploy.etc_dir, "apache-frontend-secret.conf")

    # -- state and secrets (owned by the hub user) --------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.site.hub.data_dir

    cookie_secret = _below(lambda p: p.data_dir, "jupyterhub_cookie_secret")
    proxy_env = _below(lambda p: p.data_dir, "proxy.env")
    frontend_secret = _below(lambda p: p.data_dir, "frontend-secret")

    # The hub's SQLite database (JupyterHub's db_url names it).
    hub_db = _below(lambda p: p.data_dir, "jupyterhub.sqlite")
    # Cancels the monitor still owes Slurm (they survive hub restarts).
    pending_cancels = _below(lambda p: p.data_dir, "pending-cancels.json")
    hub_log = _below(lambda p: p.deploy.log_dir, "hub.log")
    proxy_log = _below(lambda p: p.deploy.log_dir, "proxy.log")

    # -- software ---------------------------------------------------------------------
    @property
    def prefix(self) -> Path:
        return self.site.singleuser.prefix

    helper = _below(lambda p: p.prefix, "bin", "hpchub-user")

    # -- addresses --------------------------------------------------------------------
    @property
    def proxy_public(self) -> tuple[str, int]:
        """(ip, port) the proxy listens on for users (Apache forwards there)."""
        return _host_port(self.site.hub.public_url)

    @property
    def proxy_api(self) -> tuple[str, int]:
        return _host_port(self.site.hub.proxy_api_url)

    @property
    def hub_bind(self) -> tuple[str, int]:
        """(ip, port) the hub's API listens on (compute nodes reach it: API, port callback)."""
        return _host_port(self.site.hub.hub_bind_url)

    @property
    def hub_local_url(self) -> str:
        """The hub's API as seen from the hub node itself (the proxy's default target)."""
        host, port = self.hub_bind
        return f"http://{connect_host(host)}:{port}"

    @property
    def backend_url(self) -> str:
        """What Apache proxies to: the proxy's public side."""
        host, port = self.proxy_public
        return f"http://{connect_host(host)}:{port}/"

    @property
    def https_url(self) -> str:
        web = self.deploy.web
        port = "" if web.https_port == 443 else f":{web.https_port}"
        return f"https://{web.server_name}{port}/"

    @property
    def remote_user_mode(self) -> bool:
        return self.site.hub.authenticator == "remote_user"

    @property
    def gate_on(self) -> bool:
        web = self.deploy.web
        return web.enabled and web.gate.enabled

    @property
    def uses_frontend_secret(self) -> bool:
        """Apache proves itself to the hub with a secret header (remote_user, or the gate on)."""
        return self.remote_user_mode or self.gate_on
