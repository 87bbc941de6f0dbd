"""Monitoring: which scraper services may read the hub's Prometheus metrics."""

from __future__ import annotations

from pydantic import Field, field_validator

from .base import Strict
from .culling import CULLER_SERVICE
from .deploy import SafePath
from .names import UnixName

# Names that hpchub's own services use; a scraper cannot take them (or their role).
RESERVED_SERVICE_NAMES = frozenset({CULLER_SERVICE})


class Scraper(Strict):
    """A service (Prometheus, an agent) that reads /hub/metrics with its own token."""

    name: UnixName = Field(description="The service's name in the hub (e.g. prometheus).")
    token_file: SafePath = Field(
        description=(
            "File holding the service's API token (at least 32 characters, one line), readable "
            "by the hub user and not by others, e.g. root:jupyterhub-daemon mode 640. The hub "
            "reads it at start; the token is never written into the site file."
        )
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_SERVICE_NAMES:
            raise ValueError(f"{value!r} is hpchub's own service; choose another name")
        return value


class MonitoringSettings(Strict):
    """Metrics: JupyterHub's and hpchub's, at /hub/metrics, for services granted read:metrics."""

    scrapers: list[Scraper] = Field(
        default_factory=list,
        description=(
            "Services granted only the read:metrics scope. /hub/metrics always requires a "
            "token with that scope (JupyterHub.authenticate_prometheus stays on)."
        ),
    )

    @field_validator("scrapers")
    @classmethod
    def _unique(cls, value: list[Scraper]) -> list[Scraper]:
        names = [s.name for s in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"scraper names must be unique; repeated: {dup}")
        return value
