"""The gate at Apache, seen from the hub: who passed it, and PAM that must agree with it.

Apache sends the identity that passed the gate (Shibboleth, OpenID Connect, any module that
sets REMOTE_USER) in one header, to /hub/ only, after dropping whatever the client sent under
that name. Requests from the networks exempt from the gate carry no identity.
"""

from __future__ import annotations

import re

from jupyterhub.auth import PAMAuthenticator
from traitlets import Bool, Unicode

from ..core.names import DEFAULT_USER_PATTERN, is_unix_name
from ..deploy.paths import USER_HEADER


class GateRefused(Exception):
    """The gate's identity does not name a cluster account."""


def gate_account(headers, pattern: str, header: str = USER_HEADER) -> str | None:
    """The cluster account the gate let through, or None when the request skipped the gate."""
    raw = (headers.get(header) or "").strip()
    if not raw:
        return None
    m = re.fullmatch(pattern, raw)
    if m is None or not is_unix_name(m.group("user")):
        raise GateRefused(f"gate identity {raw!r} names no cluster account (pattern {pattern!r})")
    return m.group("user")


class GatedPAMAuthenticator(PAMAuthenticator):
    """PAM login; a user who came through the gate may log in only as the gate's account.

    A stolen cluster password is then useless from outside without the owner's own SSO login.
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

    async def authenticate(self, handler, data):
        if self.gate_match_user and handler is not None:
            username = self.normalize_username((data or {}).get("username", ""))
            try:
                account = gate_account(
                    handler.request.headers, self.gate_user_pattern, self.gate_user_header
                )
            except GateRefused as err:
                self.log.warning("Login as %r refused: %s", username, err)
                return None
            if account is not None and account != username:
                # Checked before PAM: no password is tried for an account the gate did not name.
                self.log.warning("Login as %r refused: the gate identified %r", username, account)
                return None
        return await super().authenticate(handler, data)
