"""Small Slurm look-ups and resets the benchmark needs (argument lists, no shell)."""

from __future__ import annotations

import contextlib
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


class RpcMeter:
    """RPC counts over a window that survive someone else's ``sdiag --reset`` (the cluster is
    shared, and other benchmarks reset it): sdiag is read every ``every`` seconds and the
    counts added up, taking a new 'Data since' as a reset (only the RPCs between the last
    read and that reset are lost; ``resets`` says how many there were)."""

    def __init__(self, every: float = 2.0):
        import threading

        self.every = every
        self.by_user: dict[str, int] = {}
        self.by_type: dict[str, int] = {}
        self.resets = 0
        self._stop = threading.Event()
        self._last = sdiag()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _add(self, st: RpcStats) -> None:
        prev = self._last
        fresh = st.since != prev.since or any(
            n < prev.by_user.get(u, 0) for u, n in st.by_user.items()
        )
        if fresh:
            self.resets += 1
        for mine, now, before in (
            (self.by_user, st.by_user, prev.by_user),
            (self.by_type, st.by_type, prev.by_type),
        ):
            for k, n in now.items():
                mine[k] = mine.get(k, 0) + (n if fresh else max(0, n - before.get(k, 0)))
        self._last = st

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self._add(sdiag())
            except (subprocess.CalledProcessError, ValueError):
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(subprocess.CalledProcessError, ValueError):
            self._add(sdiag())

    def users_total(self, users) -> int:
        wanted = set(users)
        return sum(n for u, n in self.by_user.items() if u in wanted)

    @property
    def total(self) -> int:
        return sum(self.by_type.values())
