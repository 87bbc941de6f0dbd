"""What the system checks of `hpchub doctor` look at, and the one way they run commands."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.commands import run_command
from ..deploy.paths import DeployPaths
from ..slurm.client import Runner as SlurmRunner
from ..slurm.client import SlurmClient
from ..slurm.runner import run as run_async
from .findings import Runner


@dataclass
class Deployment:
    """The site's paths, how to run commands (tests pass fakes) and where /proc is."""

    paths: DeployPaths
    run: Runner = run_command
    slurm_run: SlurmRunner = run_async
    proc: Path = Path("/proc")
    pam_dir: Path = Path("/etc/pam.d")
    sssd_socket: Path = Path("/var/lib/sss/pipes/pam")
    euid: int = field(default_factory=os.geteuid)

    @property
    def hub_user(self) -> str:
        return self.paths.deploy.hub_user

    def as_hub_user(self, *argv: str) -> list[str]:
        """Run a query as the hub user when we are root (it must work without sudo)."""
        if self.euid == 0:
            return ["runuser", "-u", self.hub_user, "--", *argv]
        return list(argv)

    def slurm(self) -> SlurmClient:
        """The Slurm gateway, its queries run as the hub user, as the hub itself runs them."""

        async def as_hub_user(argv, **kw):
            return await self.slurm_run(self.as_hub_user(*argv), **kw)

        return SlurmClient(self.paths.site.slurm, as_hub_user)
