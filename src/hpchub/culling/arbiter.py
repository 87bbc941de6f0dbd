"""The hook jupyterhub-idle-culler calls for each server (its `cull_arbiter_hook`)."""

from __future__ import annotations

from functools import cache

from ..config.loader import load_site
from .policy import IdlePolicy, should_cull


@cache
def _policy() -> IdlePolicy:
    # The culler runs as a hub service with HPCHUB_CONFIG set; read the site file once.
    return IdlePolicy.from_site(load_site())


def arbiter_for(policy: IdlePolicy | None = None):
    """The hook for ``policy`` (default: the site file's); bench/run passes its own site."""

    def arbiter(*, inactive, inactive_limit, server, **_kwargs) -> bool:
        return should_cull(policy or _policy(), inactive.total_seconds(), server)

    return arbiter


def cull_arbiter(*, inactive, inactive_limit, server, **_kwargs) -> bool:
    """True if ``server`` has been idle longer than its own timeout (not the global one)."""
    return arbiter_for()(inactive=inactive, inactive_limit=inactive_limit, server=server)
