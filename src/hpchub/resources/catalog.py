"""What the site offers: partitions, profiles and custom limits, and who may use which."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

from ..config.courses import Course
from ..config.models import Partition, SiteConfig
from ..config.profiles import CustomResources, Profile

# Catalogs by site model: the hub holds one model, so this holds one entry (tests: a few).
_BUILT: dict[int, tuple[SiteConfig, Catalog]] = {}


@dataclass(frozen=True)
class Catalog:
    """The site's offer, built once from the site file (or the spawner's traits)."""

    partitions: dict[str, Partition]
    profiles: tuple[Profile, ...]
    custom: CustomResources
    courses: tuple[Course, ...] = ()
    apps: tuple[str, ...] = ("jupyterlab",)

    @classmethod
    def from_site(cls, site: SiteConfig) -> Catalog:
        return cls(
            {p.name: p for p in site.slurm.partitions},
            tuple(site.profiles),
            site.custom,
            tuple(site.courses),
            site.apps.choices(),
        )

    @classmethod
    def for_site(cls, site: SiteConfig) -> Catalog:
        """The catalog of ``site``, built once for that model (the hub holds one)."""
        held = _BUILT.get(id(site))
        if held is None or held[0] is not site:
            held = _BUILT[id(site)] = (site, cls.from_site(site))
        return held[1]

    def visible(self, user: str, groups: set[str]) -> list[Profile]:
        """Profiles ``user`` may see and use: their active courses' profiles first; a profile
        that a course names is for that course's members only."""
        allowed = [p for p in self.profiles if p.admits(user, groups)]
        if not self.courses:
            return allowed
        from .membership import arrange_profiles, today

        # arrange_profiles reads only ``.courses`` of its site argument: the catalog has it.
        return arrange_profiles(allowed, self, user, groups, today(), key=attrgetter("key"))

    def course_labels(self, user: str, groups: set[str]) -> dict[str, str]:
        """Profile key -> the title of the user's active course that offers it (the form's badge)."""
        from .membership import courses_for, today

        labels: dict[str, str] = {}
        for course in courses_for(self, user, groups, today()):
            for key in course.profiles:
                labels.setdefault(key, course.title or course.name)
        return labels

    def custom_allowed(self, user: str, groups: set[str]) -> bool:
        return self.custom.enabled and self.custom.admits(user, groups)

    def longest_time(self) -> int:
        """The longest time limit anyone may ask for (a profile's or custom's), in seconds."""
        times = [p.time for p in self.profiles]
        if self.custom.enabled:
            times.append(self.custom.max_time)
        return max(times, default=0)

    def profile(self, key: str) -> Profile | None:
        return next((p for p in self.profiles if p.key == key), None)
