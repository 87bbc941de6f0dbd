"""Map the deploy section onto the hub's traitlets: the authenticator behind Apache, log hygiene.

Called from config.apply.apply_site; like the other apply_* functions it only sets keys.
"""

from __future__ import annotations

from traitlets.config import Config

from ..config.models import SiteConfig
from .paths import SECRET_HEADER, USER_HEADER, DeployPaths


def scrubbed_log_request(handler) -> None:
    """JupyterHub's request log, without our headers (it dumps all headers on a 500)."""
    from jupyterhub.log import log_request

    for name in (SECRET_HEADER, USER_HEADER):
        handler.request.headers.pop(name, None)
    log_request(handler)


def apply_deploy(site: SiteConfig, c: Config) -> None:
    """The gate or remote-user authenticator, and a request log that keeps secrets out."""
    paths = DeployPaths(site, site.hub.data_dir)
    web = site.deploy.web
    gate = web.gate
    if web.enabled:
        c.JupyterHub.tornado_settings.update({"log_function": scrubbed_log_request})
    if site.hub.authenticator == "remote_user":
        c.JupyterHub.authenticator_class = "hpchub.auth.remote_user.RemoteUserAuthenticator"
        c.RemoteUserAuthenticator.frontend_secret_file = str(paths.frontend_secret)
        c.RemoteUserAuthenticator.user_pattern = gate.user_pattern
        c.RemoteUserAuthenticator.allowed_groups = set(site.hub.allowed_groups)
        c.RemoteUserAuthenticator.admin_groups = set(site.hub.admin_groups)
    elif paths.gate_on:
        # Logins only through Apache (its secret) or from the exempt networks: the hub's own
        # port, which compute nodes reach, must not take a password around the gate.
        c.JupyterHub.authenticator_class = "hpchub.auth.gate.GatedPAMAuthenticator"
        c.GatedPAMAuthenticator.gate_user_pattern = gate.user_pattern
        c.GatedPAMAuthenticator.gate_match_user = gate.match_user
        c.GatedPAMAuthenticator.frontend_secret_file = str(paths.frontend_secret)
        c.GatedPAMAuthenticator.gate_exempt_networks = [str(n) for n in gate.exempt_networks]
