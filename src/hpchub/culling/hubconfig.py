"""The culler's piece of the hub: its service and its least-privilege role."""

from __future__ import annotations

from traitlets.config import Config

from ..config.models import SiteConfig
from .service import culler_role, culler_service


def culling_piece(site: SiteConfig, site_file: str | None = None) -> Config:
    """The idle culler as a hub-managed service (when culling is on)."""
    c = Config()
    if site.culling.enabled:
        c.JupyterHub.services = [culler_service(site, site_file=site_file)]
        c.JupyterHub.load_roles = [culler_role()]
    return c
