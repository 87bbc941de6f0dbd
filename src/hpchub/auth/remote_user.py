"""hub.authenticator: remote_user -- Apache's gate alone decides who the user is.

The identity arrives in a header that Apache sets for /hub/ only. Because compute nodes (and
so users' jobs) can reach the hub's own port directly, a header alone proves nothing: Apache
also adds a secret that only it and the hub know, and a request without it is refused.
"""

from __future__ import annotations

import pwd

from jupyterhub.auth import LocalAuthenticator
from jupyterhub.handlers import BaseHandler
from tornado import web
from traitlets import Set, Unicode

from ..core.names import DEFAULT_USER_PATTERN, NameRefused
from ..deploy.paths import SECRET_HEADER, USER_HEADER
from .frontend import FrontendSecret
from .gate import GateRefused, gate_account
from .names import AccountNames


class RemoteUserLoginHandler(BaseHandler):
    """GET /hub/login: log in whoever Apache vouches for."""

    async def get(self):
        user = await self.login_user()
        if user is None:
            raise web.HTTPError(
                403,
                "The web server in front of the hub did not vouch for you. "
                "Log in through the site's single sign-on page.",
            )
        self.redirect(self.get_next_url(user))


class RemoteUserAuthenticator(AccountNames, LocalAuthenticator):
    """Trusts the identity set by Apache, when the request carries Apache's secret."""

    auto_login = True

    user_header = Unicode(USER_HEADER, help="Header with the identity Apache vouches for.").tag(
        config=True
    )
    secret_header = Unicode(
        SECRET_HEADER, help="Header with the secret proving the request came through Apache."
    ).tag(config=True)
    frontend_secret_file = Unicode(
        help="File holding the secret Apache adds (mode 600, owned by the hub user)."
    ).tag(config=True)
    user_pattern = Unicode(
        DEFAULT_USER_PATTERN,
        help="Regular expression mapping the identity to a cluster account (group 'user').",
    ).tag(config=True)
    admin_groups = Set(help="Unix groups whose members are hub admins.").tag(config=True)

    _secret: FrontendSecret | None = None

    def get_handlers(self, app):
        return [(r"/login", RemoteUserLoginHandler)]

    def came_through_apache(self, headers) -> bool:
        """Whether the request carries the frontend secret (compared in constant time)."""
        if self._secret is None:
            if not self.frontend_secret_file:
                raise RuntimeError("RemoteUserAuthenticator.frontend_secret_file is not set")
            self._secret = FrontendSecret(self.frontend_secret_file)
        return self._secret.sent_in(headers, self.secret_header)

    async def authenticate(self, handler, data=None):
        headers = handler.request.headers
        if not self.came_through_apache(headers):
            self.log.warning(
                "Refused a login from %s: it did not come through the web server",
                handler.request.remote_ip,
            )
            return None
        try:
            name = gate_account(
                headers, self.user_pattern, self.user_header, self.realms, self.username_map
            )
        except GateRefused as err:
            self.log.warning("Refused a login: %s", err)
            return None
        except NameRefused as err:
            self.log.warning("Refused a login: %s", err)
            raise web.HTTPError(403, "%s", str(err)) from None
        if name is None:
            return None
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            self.log.warning("Refused a login as %r: no such account on this cluster", name)
            return None
        if account.pw_uid == 0:
            self.log.warning("Refused a login as %r: uid 0", name)
            return None
        gid = account.pw_gid
        admin = None
        if self.admin_groups:
            gids = set(self._getgrouplist(name, gid))
            for group in self.admin_groups:
                try:
                    if self._getgrnam(group).gr_gid in gids:
                        admin = True
                except KeyError:
                    self.log.error("No such group: %s", group)
        return {"name": name, "admin": admin}
