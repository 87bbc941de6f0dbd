"""Pure parsers of Slurm command output, tested against output captured from the real tools."""

from __future__ import annotations

import re
from dataclasses import dataclass

# One line per job: id|state|reason|batch host|start time|partition|time limit|nodes
SQUEUE_FORMAT = "%i|%T|%r|%B|%S|%P|%l|%N"

_SBATCH_ID_RE = re.compile(r"^(\d+)(?:;[\w.-]+)?$")


class SlurmParseError(ValueError):
    """Slurm printed something we do not understand."""


@dataclass(frozen=True)
class JobInfo:
    """One job as squeue reports it."""

    job_id: str
    state: str
    reason: str
    batch_host: str
    start_time: str
    partition: str
    time_limit: str
    nodes: str

    @property
    def host(self) -> str | None:
        """The node the batch script runs on, when there is one."""
        if self.batch_host and self.batch_host not in ("n/a", "(null)"):
            return self.batch_host
        return None


def parse_sbatch_parsable(stdout: str) -> str:
    """The job id from `sbatch --parsable` ('1234' or '1234;cluster')."""
    lines = [ln.strip() for ln in stdout.strip().splitlines() if ln.strip()]
    if not lines:
        raise SlurmParseError("sbatch printed no job id")
    m = _SBATCH_ID_RE.match(lines[-1])
    if not m:
        raise SlurmParseError(f"sbatch printed no job id: {lines[-1]!r}")
    return m.group(1)


def parse_squeue(stdout: str) -> dict[str, JobInfo]:
    """Jobs by id from `squeue --noheader --format=SQUEUE_FORMAT`. Array/het suffixes are kept."""
    jobs: dict[str, JobInfo] = {}
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        parts = line.split("|")
        if len(parts) != 8:
            raise SlurmParseError(f"unexpected squeue line: {line!r}")
        info = JobInfo(*parts)
        jobs[info.job_id] = info
    return jobs


def parse_scontrol_record(text: str) -> dict[str, str]:
    """Key=value pairs of one `scontrol show ... -o` record (values may hold spaces)."""
    text = text.strip()
    # Keys are CamelCase words followed by '='; values run to the next key.
    pairs = re.findall(
        r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=(.*?)(?=\s+[A-Za-z][A-Za-z0-9_:/]*=|$)", text
    )
    return {k: v for k, v in pairs}


@dataclass(frozen=True)
class NodeInfo:
    """One node from sinfo: where it is and what it has free."""

    name: str
    address: str
    state: str
    cpus_total: int
    cpus_alloc: int
    memory_mib: int
    free_memory_mib: int | None
    partitions: tuple[str, ...]


SINFO_NODE_FORMAT = "%N|%o|%T|%C|%m|%e|%R"


def parse_sinfo_nodes(stdout: str) -> dict[str, NodeInfo]:
    """Nodes by name from `sinfo -N --noheader --format=SINFO_NODE_FORMAT` (one line per node and partition)."""
    nodes: dict[str, NodeInfo] = {}
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        parts = line.split("|")
        if len(parts) != 7:
            raise SlurmParseError(f"unexpected sinfo line: {line!r}")
        name, addr, state, cpus, mem, free, part = parts
        alloc, _idle, _other, total = (int(x) for x in cpus.split("/"))
        free_mib = int(free) if free.strip().isdigit() else None
        prev = nodes.get(name)
        parts_t = (prev.partitions if prev else ()) + (part,)
        nodes[name] = NodeInfo(
            name=name,
            address=addr,
            state=state,
            cpus_total=total,
            cpus_alloc=alloc,
            memory_mib=int(mem.rstrip("+")),
            free_memory_mib=free_mib,
            partitions=parts_t,
        )
    return nodes


@dataclass(frozen=True)
class QueuePlace:
    """Where a pending job stands: its place among pending jobs of its first partition."""

    position: int
    total: int
    expected_start: str | None


PENDING_FORMAT = "%i|%P|%Q|%S"


def parse_queue_places(stdout: str) -> dict[str, QueuePlace]:
    """Places from `squeue --start -h -t PENDING -o PENDING_FORMAT` (higher priority first)."""
    rows = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        parts = line.split("|")
        if len(parts) != 4:
            raise SlurmParseError(f"unexpected squeue --start line: {line!r}")
        jid, partitions, prio, start = parts
        first = partitions.split(",")[0]
        rows.append((first, -int(prio or 0), int(jid) if jid.isdigit() else 0, jid, start))
    rows.sort()
    places: dict[str, QueuePlace] = {}
    by_part: dict[str, list] = {}
    for row in rows:
        by_part.setdefault(row[0], []).append(row)
    for items in by_part.values():
        for i, (_p, _q, _n, jid, start) in enumerate(items):
            known = start and start not in ("N/A", "Unknown", "(null)")
            places[jid] = QueuePlace(i + 1, len(items), start if known else None)
    return places
