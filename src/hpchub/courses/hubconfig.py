"""Map the site file's courses onto the hub: the staging hook and the students' page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from traitlets.config import Config

from .stager import CourseStager

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "courses"

if TYPE_CHECKING:
    from ..config.models import SiteConfig


def courses_piece(site: SiteConfig, stager: CourseStager | None = None) -> Config:
    """The staging hook (when a course stages on spawn), the students' page and its templates.

    The hook goes into ``SlurmSpawner.internal_pre_spawn_hooks``: a site's own
    ``pre_spawn_hook`` in jupyterhub_config.d runs as well, it does not replace staging.
    """
    c = Config()
    if not site.courses:
        return c
    from .web import handlers

    stager = stager or CourseStager(site)
    if any(course.stage_on_spawn for course in site.courses):
        c.SlurmSpawner.internal_pre_spawn_hooks = [stager.pre_spawn_hook]
    c.JupyterHub.extra_handlers = handlers(stager)
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    return c
