"""Which authenticator the hub uses, decided in this one place."""

from __future__ import annotations

from traitlets.config import Config

from ..config.models import SiteConfig
from ..deploy.paths import DeployPaths
from .names import USERNAME_PATTERN


def auth_piece(site: SiteConfig) -> Config:
    """PAM; PAM behind the gate (the account must be the gate's); or Apache's REMOTE_USER."""
    c, hub = Config(), site.hub
    web = site.deploy.web
    gate = web.gate
    paths = DeployPaths(site, site.hub.data_dir)
    # Every authenticator here maps names the same way (auth/names.py), with JupyterHub's own
    # hooks: a hub user is always a name the Unix rule accepts, whoever created it.
    c.Authenticator.username_pattern = USERNAME_PATTERN
    c.Authenticator.username_map = dict(hub.username_map)
    c.AccountNames.realms = list(hub.realms)
    if hub.authenticator == "remote_user":
        c.JupyterHub.authenticator_class = "hpchub.auth.remote_user.RemoteUserAuthenticator"
        c.RemoteUserAuthenticator.frontend_secret_file = str(paths.frontend_secret)
        c.RemoteUserAuthenticator.user_pattern = gate.user_pattern
        c.RemoteUserAuthenticator.allowed_groups = set(hub.allowed_groups)
        c.RemoteUserAuthenticator.admin_groups = set(hub.admin_groups)
        return c
    if paths.gate_on:
        # Logins only through Apache (its secret) or from the exempt networks: the hub's own
        # port, which compute nodes reach, must not take a password around the gate.
        c.JupyterHub.authenticator_class = "hpchub.auth.gate.GatedPAMAuthenticator"
        c.GatedPAMAuthenticator.gate_user_pattern = gate.user_pattern
        c.GatedPAMAuthenticator.gate_match_user = gate.match_user
        c.GatedPAMAuthenticator.frontend_secret_file = str(paths.frontend_secret)
        c.GatedPAMAuthenticator.gate_exempt_networks = [str(n) for n in gate.exempt_networks]
    else:
        c.JupyterHub.authenticator_class = "hpchub.auth.names.PAMAuthenticator"
    # An unprivileged hub cannot open PAM sessions; authentication alone is enough.
    c.PAMAuthenticator.open_sessions = False
    c.PAMAuthenticator.check_account = True
    if site.deploy.pam_service:
        # RHEL: a service of its own (pam_sss), since the hub cannot read /etc/shadow there.
        c.PAMAuthenticator.service = site.deploy.pam_service
    if hub.allowed_groups or hub.admin_groups:
        c.PAMAuthenticator.allowed_groups = set(hub.allowed_groups)
        c.PAMAuthenticator.admin_groups = set(hub.admin_groups)
    return c
