"""Map the site file's courses onto the hub: the staging hook and the students' page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from traitlets.config import Config

from .stager import CourseStager, chain_pre_spawn_hook

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "courses"

if TYPE_CHECKING:
    from ..config.models import SiteConfig


def apply_courses(site: SiteConfig, c: Config) -> CourseStager | None:
    """The staging hook (when a course stages on spawn), the students' page and its template
    folder; returns the stager (None when the site has no course)."""
    if not site.courses:
        return None
    from .web import handlers

    stager = CourseStager(site)
    if any(course.stage_on_spawn for course in site.courses):
        previous = c.Spawner.pre_spawn_hook if "pre_spawn_hook" in c.Spawner else None
        c.Spawner.pre_spawn_hook = chain_pre_spawn_hook(previous, stager.pre_spawn_hook)
    extra = c.JupyterHub.extra_handlers if "extra_handlers" in c.JupyterHub else []
    c.JupyterHub.extra_handlers = [*extra, *handlers(stager)]
    paths = c.JupyterHub.template_paths if "template_paths" in c.JupyterHub else []
    c.JupyterHub.template_paths = [*paths, str(TEMPLATES)]
    return stager
