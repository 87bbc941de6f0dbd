"""What the site offers: partitions, profiles and custom limits, and who may use which."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.models import Partition, SiteConfig
from ..config.profiles import CustomResources, Profile


@dataclass(frozen=True)
class Catalog:
    """The site's offer, built once from the site file (or the spawner's traits)."""

    partitions: dict[str, Partition]
    profiles: tuple[Profile, ...]
    custom: CustomResources

    @classmethod
    def from_site(cls, site: SiteConfig) -> Catalog:
        return cls({p.name: p for p in site.slurm.partitions}, tuple(site.profiles), site.custom)

    def visible(self, user: str, groups: set[str]) -> list[Profile]:
        """Profiles ``user`` may see, in the site's order."""
        return [p for p in self.profiles if p.admits(user, groups)]

    def custom_allowed(self, user: str, groups: set[str]) -> bool:
        return self.custom.enabled and self.custom.admits(user, groups)

    def profile(self, key: str) -> Profile | None:
        return next((p for p in self.profiles if p.key == key), None)
