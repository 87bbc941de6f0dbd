"""CPU time and memory of a process from /proc (parsers are pure; readers take the pid)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuTimes:
    """Seconds of CPU: the process itself, and its children that it has waited for."""

    own: float
    children: float


def parse_stat(text: str, ticks: int) -> CpuTimes:
    """utime+stime and cutime+cstime from the text of /proc/PID/stat."""
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime..cstime are fields 14..17.
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return CpuTimes((utime + stime) / ticks, (cutime + cstime) / ticks)


def parse_status_kib(text: str, key: str) -> int:
    """A 'kB' field (VmRSS, VmHWM) of /proc/PID/status, in KiB (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_times(pid: int) -> CpuTimes:
    return parse_stat(Path(f"/proc/{pid}/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return parse_status_kib(text, "VmRSS"), parse_status_kib(text, "VmHWM")


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (scanning /proc; works where .../children is missing)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def parse_cpu_stat_usec(text: str) -> int:
    """usage_usec from a cgroup v2 cpu.stat (0 if absent)."""
    for line in text.splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1])
    return 0


def job_cpu_seconds(job_id: str, root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPU seconds every process of a running Slurm job has used so far, from its cgroup.

    cgroup v1 (Slurm's cpuacct hierarchy: slurm_NODE/uid_UID/job_ID/cpuacct.usage, ns) or v2
    (.../job_ID/cpu.stat, usage_usec); None when the job has no cgroup here (ended, or Slurm
    does not track jobs with cgroups).
    """
    for path in root.glob(f"cpuacct/slurm*/uid_*/job_{job_id}/cpuacct.usage"):
        try:
            return int(path.read_text()) / 1e9
        except OSError:
            continue
    if not (root / "cgroup.controllers").exists():  # not cgroup v2
        return None
    for path in root.glob(f"**/job_{job_id}/cpu.stat"):
        try:
            return parse_cpu_stat_usec(path.read_text()) / 1e6
        except OSError:
            continue
    return None
