"""Map the site file's courses onto the hub: the pre-spawn hook that stages materials."""

from __future__ import annotations

from typing import TYPE_CHECKING

from traitlets.config import Config

from .stager import CourseStager, chain_pre_spawn_hook

if TYPE_CHECKING:
    from ..config.models import SiteConfig


def apply_courses(site: SiteConfig, c: Config) -> CourseStager | None:
    """Install the staging hook when some course stages on spawn; returns the stager."""
    if not any(course.stage_on_spawn for course in site.courses):
        return None
    stager = CourseStager(site)
    previous = c.Spawner.pre_spawn_hook if "pre_spawn_hook" in c.Spawner else None
    c.Spawner.pre_spawn_hook = chain_pre_spawn_hook(previous, stager.pre_spawn_hook)
    return stager
