"""Idle culling: how often the culler looks, and how hard it may push the hub."""

from __future__ import annotations

from pydantic import Field

from .base import Strict
from .units import IntervalSeconds

CULLER_SERVICE = "idle-culler"
"""The culler's service (and role) name in the hub."""


class CullingSettings(Strict):
    """The hub-managed idle culler (jupyterhub-idle-culler with hpchub's per-server policy).

    Each server's idle timeout comes from its profile (or, for custom servers, from
    custom.idle_timeouts by memory): big servers go first, small ones may stay.
    """

    enabled: bool = Field(True, description="Run the idle culler as a hub-managed service.")
    every: IntervalSeconds = Field(
        "5m", validate_default=True, description="How often the culler looks at all servers."
    )
    concurrency: int = Field(
        10, ge=1, le=100, description="At most this many hub API requests at once during a pass."
    )
    page_size: int = Field(
        200,
        ge=10,
        le=1000,
        description="Users per page when the culler lists them (paginated API).",
    )
    activity_interval: IntervalSeconds = Field(
        "5m",
        validate_default=True,
        description="How often each server reports its activity to the hub (kernels and terminals count).",
    )
    busy_check: IntervalSeconds = Field(
        "1m",
        validate_default=True,
        description="How often a server checks for busy kernels and running terminal commands, "
        "which keep it from being culled even when they print nothing.",
    )
