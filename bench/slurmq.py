"""Small Slurm look-ups and resets the benchmark needs (argument lists, no shell)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hpchub_testbed import procs

from .sdiag import RpcStats, parse_sdiag


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def jobs_of(users: list[str]) -> list[str]:
    """Active job ids of ``users`` (all of them are the benchmark's own users)."""
    if not users:
        return []
    out = sh("squeue", "-h", "-u", ",".join(users), "-o", "%i")
    return out.split()


def wait_no_jobs(users: list[str], timeout: float = 120) -> bool:
    """Wait until none of ``users`` has a job in Slurm (True), or ``timeout`` passes."""
    try:
        procs.wait_for(lambda: not jobs_of(users), timeout, "the jobs to end", interval=0.5)
    except TimeoutError:
        return False
    return True


def cancel_all(users: list[str]) -> None:
    """scancel every job of the benchmark's own users (never anyone else's)."""
    for i in range(0, len(users), 50):
        subprocess.run(["scancel", "-u", ",".join(users[i : i + 50])], capture_output=True)


def sdiag_reset() -> None:
    sh("sdiag", "--reset")


def sdiag() -> RpcStats:
    return parse_sdiag(sh("sdiag"))


def memory_enforcement() -> str:
    """AllowedRAMSpace from cgroup.conf: how far a job may exceed its --mem (percent)."""
    try:
        text = Path("/etc/slurm/cgroup.conf").read_text()
    except OSError:
        return "unknown"
    for line in text.splitlines():
        if line.startswith("AllowedRAMSpace="):
            return line.split("=", 1)[1].strip() + "%"
    return "unknown"


def jobs_by_user(users: list[str]) -> dict[str, str]:
    """user -> active job id, for ``users`` (each has at most one job in the benchmark)."""
    if not users:
        return {}
    out = sh("squeue", "-h", "-u", ",".join(users), "-o", "%u %i")
    return dict(line.split() for line in out.splitlines() if line.strip())
