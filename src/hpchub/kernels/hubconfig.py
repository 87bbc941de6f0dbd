"""The kernels and extensions sections onto the hub's traitlets (a small pure function)."""

from __future__ import annotations

from traitlets.config import Config

from ..config.models import SiteConfig
from .extensions import job_environment


def apply_kernels(site: SiteConfig, c: Config) -> None:
    """Every job gets the shared kernels/config folders, the site MODULEPATH and nbdime's drivers.

    Runs after apply_singleuser, whose ``singleuser.environment`` it extends (our folders go
    first on JUPYTER_PATH and JUPYTER_CONFIG_PATH; the admin's entries follow).
    """
    existing = c.SlurmSpawner.job_environment if "job_environment" in c.SlurmSpawner else {}
    c.SlurmSpawner.job_environment = job_environment(
        site.kernels, site.extensions, site.singleuser.prefix, dict(existing)
    )
