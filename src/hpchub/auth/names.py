"""From the name a user types, or a gate vouches for, to the local account: one path for every
authenticator (PAM, PAM behind the gate, Apache's REMOTE_USER).

JupyterHub's own hooks do the work: ``normalize_username`` (lower case, ``username_map``) with
the site's realms cut off, and ``username_pattern`` holding the Unix name rule, so that every
hub user is a name that ``core.names`` accepts, whatever created it (a login, the admin API).
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from jupyterhub.auth import PAMAuthenticator as JupyterHubPAM
from tornado import web
from traitlets import List, Unicode

from ..core.names import UNIX_NAME_RULE, NameRefused, local_account

USERNAME_PATTERN = rf"\A{UNIX_NAME_RULE}\Z"
"""JupyterHub's ``Authenticator.username_pattern`` (it uses ``re.match``): the Unix name rule."""


class AccountNames(Authenticator):
    """Names of the site's realms (anna.lee@EXAMPLE.ORG) are the local account (anna.lee)."""

    realms = List(
        Unicode(),
        help="Realms whose names map to local accounts (lower case); names of others are refused.",
    ).tag(config=True)

    def normalize_username(self, username: str) -> str:
        """Lower case, ``username_map``, the realm cut off. A name of a foreign realm comes back
        as it is, and fails ``username_pattern``: the login itself says why (``login_name``)."""
        try:
            return local_account(username, self.realms, self.username_map)
        except NameRefused:
            return username

    def login_name(self, identity: str) -> str:
        """The account for a name typed at the login form; 403 in words for a foreign realm."""
        try:
            return local_account(identity, self.realms, self.username_map)
        except NameRefused as err:
            self.log.warning("Login refused: %s", err)
            # "%s": the identity is the user's text, never a format string.
            raise web.HTTPError(403, "%s", str(err)) from None


class PAMAuthenticator(AccountNames, JupyterHubPAM):
    """JupyterHub's PAM, asked only about a local account: never a realm, never a name outside
    the rule (JupyterHub itself checks the name only after asking PAM)."""

    async def authenticate(self, handler, data):
        name = self.login_name((data or {}).get("username", ""))
        if not self.validate_username(name):
            self.log.warning("Login refused: %r is not a user name", name)
            return None
        return await super().authenticate(handler, {**(data or {}), "username": name})


__all__ = ["USERNAME_PATTERN", "AccountNames", "PAMAuthenticator"]
