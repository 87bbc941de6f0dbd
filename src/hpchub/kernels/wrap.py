"""Run `hpchub kernels test` as another user (their login environment) and/or inside Slurm.

The test re-runs itself through ``sudo -u USER -i`` (so the user's ~/.bash_profile and
~/.bashrc apply, as in their own sessions) and/or ``srun`` (so it runs on a compute node in a
real allocation), and reads back a JSON report. Argument lists only; values are validated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..config.models import SiteConfig
from ..core.names import check_name
from ..slurm.client import SlurmClient


def inner_argv(
    site: SiteConfig, site_file: Path, names: Sequence[str], timeout: float
) -> list[str]:
    """`hpchub kernels test --json` from the single-user environment (readable by users)."""
    hpchub = site.singleuser.prefix / "bin" / "hpchub"
    return [
        str(hpchub),
        f"--config={site_file}",
        "kernels",
        "test",
        "--json",
        f"--timeout={timeout:g}",
        *names,
    ]


def srun_argv(site: SiteConfig, partition: str | None, timeout: float) -> list[str]:
    """A one-task srun on the site's Jupyter partition: one CPU and 1 GiB, enough to start kernels."""
    minutes = max(5, int(timeout * 4 // 60) + 1)
    part = partition or site.slurm.default_partition
    return SlurmClient(site.slurm).srun_argv(part, minutes, "hpchub-kernels-test")


def test_argv(
    site: SiteConfig,
    site_file: Path,
    names: Sequence[str],
    timeout: float,
    user: str | None = None,
    in_slurm: bool = False,
    partition: str | None = None,
) -> list[str]:
    """The full command that runs the test where asked; the caller reads its JSON report."""
    for n in names:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", n):
            raise ValueError(f"kernel name {n!r}: only letters, digits and ._- are allowed")
    argv = inner_argv(site, site_file, names, timeout)
    if in_slurm:
        argv = [*srun_argv(site, partition, timeout), *argv]
    if user:
        check_name("unix", user, "user name")
        argv = [str(site.slurm.sudo), "-n", "-u", user, "-i", "--", *argv]
    return argv
