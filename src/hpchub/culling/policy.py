"""Each server's idle timeout, from the same site file and validation path as its start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config.models import SiteConfig
from ..core.accounts import groups_of
from ..resources.catalog import Catalog
from ..resources.request import OptionsError, resolve_request

log = logging.getLogger("hpchub.culling")


@dataclass(frozen=True)
class IdlePolicy:
    """Maps a server (as the hub API shows it) to the seconds it may stay idle."""

    catalog: Catalog
    groups: Callable[[str], frozenset[str]] = field(default=groups_of)

    @classmethod
    def from_site(cls, site: SiteConfig, groups=groups_of) -> IdlePolicy:
        return cls(Catalog.from_site(site), groups)

    @property
    def shortest(self) -> int:
        """The strictest timeout the site has: used when a server's options no longer resolve."""
        values = [p.idle_timeout for p in self.catalog.profiles]
        values += [r.idle_timeout for r in self.catalog.custom.idle_timeouts]
        return min(values)

    def timeout_for(self, user: str, options: dict | None) -> int:
        """Idle timeout of a server started by ``user`` with ``options`` (its user_options)."""
        try:
            req = resolve_request(options or {}, self.catalog, user, set(self.groups(user)))
        except OptionsError as err:
            # The site file changed since the start (profile gone, limits lowered).
            log.warning("options of %s no longer resolve (%s); using %ss", user, err, self.shortest)
            return self.shortest
        return req.idle_timeout


def should_cull(policy: IdlePolicy, inactive_s: float, server: dict) -> bool:
    """The culling decision for one server model from the hub API."""
    user = str(server.get("full_name", "")).split("/", 1)[0]
    if not user:
        return False
    return inactive_s >= policy.timeout_for(user, server.get("user_options"))
