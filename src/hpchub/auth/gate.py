"""The gate at Apache, seen from the hub: who passed it, and PAM that must agree with it.

Apache sends the identity that passed the gate (Shibboleth, OpenID Connect, any module that
sets REMOTE_USER) in one header, to /hub/ only, after dropping whatever the client sent under
that name. Requests from the networks exempt from the gate carry no identity.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from tornado import web
from traitlets import Bool, List, Unicode

from ..core.names import DEFAULT_USER_PATTERN, NameRefused, is_unix_name, local_account
from ..deploy.paths import SECRET_HEADER, USER_HEADER
from .frontend import GATE_REFUSAL, FrontendSecret, client_address, in_networks
from .names import PAMAuthenticator


class GateRefused(Exception):
    """The gate's identity does not name a cluster account."""


def gate_account(
    headers,
    pattern: str,
    header: str = USER_HEADER,
    realms: Collection[str] = (),
    username_map: Mapping[str, str] | None = None,
) -> str | None:
    """The cluster account the gate let through, or None when the request skipped the gate.

    The identity goes the way of a typed name (``core.names.local_account``: lower case, the
    username map, the site's realms cut off; NameRefused for another realm); ``pattern`` then
    applies to what is left (GateRefused when it does not match).
    """
    raw = (headers.get(header) or "").strip()
    if not raw:
        return None
    name = local_account(raw, realms, username_map)  # NameRefused: a realm not the site's
    m = re.fullmatch(pattern, name)
    if m is None or not is_unix_name(m.group("user")):
        raise GateRefused(f"gate identity {raw!r} names no cluster account (pattern {pattern!r})")
    return m.group("user")


class GatedPAMAuthenticator(PAMAuthenticator):
    """PAM login behind the gate: only through the web server (its secret header) or from the
    gate's exempt networks, and a user who passed the gate only as the gate's account.

    A stolen cluster password is then useless without the owner's own SSO login, from outside
    and from the compute nodes (which reach the hub's own port) alike. The login form and the
    token API (``POST /hub/api/users/NAME/tokens`` with ``auth``) both end up here.
    """

    gate_user_header = Unicode(
        USER_HEADER, help="Header in which Apache passes the identity that passed the gate."
    ).tag(config=True)
    gate_user_pattern = Unicode(
        DEFAULT_USER_PATTERN,
        help="Regular expression mapping the gate's identity to an account (group 'user').",
    ).tag(config=True)
    gate_match_user = Bool(
        True, help="Refuse a login whose account differs from the gate's identity."
    ).tag(config=True)
    frontend_secret_file = Unicode(
        "",
        help="File holding the secret Apache adds (mode 600, hub user). Empty: no such check.",
    ).tag(config=True)
    secret_header = Unicode(
        SECRET_HEADER, help="Header with the secret proving the request came through Apache."
    ).tag(config=True)
    gate_exempt_networks = List(
        Unicode(), help="Networks whose logins may skip the web server (the gate exempts them)."
    ).tag(config=True)

    _secret: FrontendSecret | None = None

    def came_around_the_gate(self, request) -> bool:
        """A request with neither Apache's secret nor an exempt network behind its connection."""
        if not self.frontend_secret_file:
            return False
        if self._secret is None:
            self._secret = FrontendSecret(self.frontend_secret_file)
        if self._secret.sent_in(request.headers, self.secret_header):
            return False
        return not in_networks(client_address(request), self.gate_exempt_networks)

    async def authenticate(self, handler, data):
        if handler is not None and self.came_around_the_gate(handler.request):
            # Checked before PAM: no password is tried for a request that skipped the gate.
            self.log.warning(
                "Login refused: the request from %s did not come through the web server's gate",
                client_address(handler.request),
            )
            raise web.HTTPError(403, GATE_REFUSAL, reason=GATE_REFUSAL)
        if self.gate_match_user and handler is not None:
            username = self.login_name((data or {}).get("username", ""))
            try:
                account = gate_account(
                    handler.request.headers,
                    self.gate_user_pattern,
                    self.gate_user_header,
                    self.realms,
                    self.username_map,
                )
            except GateRefused as err:
                self.log.warning("Login as %r refused: %s", username, err)
                return None
            except NameRefused as err:
                self.log.warning("Login as %r refused: the gate's %s", username, err)
                raise web.HTTPError(403, "%s", str(err)) from None
            if account is not None and account != username:
                # Checked before PAM: no password is tried for an account the gate did not name.
                self.log.warning("Login as %r refused: the gate identified %r", username, account)
                return None
        return await super().authenticate(handler, data)
