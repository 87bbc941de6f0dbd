"""Pure parsers of Slurm command output, tested against output captured from the real tools."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..config.units import parse_duration_seconds

# One line per job: id|state|reason|batch host|start time|partition|time limit|nodes
SQUEUE_FORMAT = "%i|%T|%r|%B|%S|%P|%l|%N"

# `squeue --only-job-state` (Slurm 24.05 and later): job id and state only.
STATE_ONLY_FORMAT = "%i|%T"

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


def _rows(stdout: str, fields: int, what: str) -> list[list[str]]:
    """The '|'-separated fields of each non-empty line; a line with another count is an error."""
    rows = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        parts = line.split("|")
        if len(parts) != fields:
            raise SlurmParseError(f"unexpected {what} line: {line!r}")
        rows.append(parts)
    return rows


def parse_squeue(stdout: str) -> dict[str, JobInfo]:
    """Jobs by id from `squeue --noheader --format=SQUEUE_FORMAT`. Array/het suffixes are kept."""
    jobs: dict[str, JobInfo] = {}
    for parts in _rows(stdout, 8, "squeue"):
        info = JobInfo(*parts)
        jobs[info.job_id] = info
    return jobs


def parse_job_states(stdout: str) -> dict[str, str]:
    """States by job id from `squeue --only-job-state --noheader --format=STATE_ONLY_FORMAT`."""
    states: dict[str, str] = {}
    for job_id, state in _rows(stdout, 2, "squeue --only-job-state"):
        if not job_id or not state:
            raise SlurmParseError(f"unexpected squeue --only-job-state line: {job_id}|{state}")
        states[job_id] = state
    return states


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


_GPU = re.compile(r"gpu(?::[\w.-]+)?:(\d+)")


SINFO_STATE_FIELDS = "NodeList:0|,StateLong:0|,CPUsState:0|,Memory:0|,AllocMem:0|,Partition:0|,Time:0|,Gres:0|,GresUsed:0"


@dataclass
class PartitionState:
    """Free resources and queue of one partition, summed over its usable nodes."""

    name: str
    nodes: int = 0
    cpus_total: int = 0
    cpus_alloc: int = 0
    memory_total: int = 0
    memory_alloc: int = 0
    max_node_memory: int = 0
    gpus_total: int = 0
    gpus_used: int = 0
    max_time: int | None = None
    pending: int = 0
    node_names: set[str] = field(default_factory=set)

    @property
    def cpus_free(self) -> int:
        return self.cpus_total - self.cpus_alloc

    @property
    def memory_free(self) -> int:
        return max(0, self.memory_total - self.memory_alloc)


def _gpus(gres: str) -> int:
    return sum(int(m) for m in _GPU.findall(gres or ""))


def _time(text: str) -> int | None:
    text = text.strip().lower()
    if text in ("infinite", "unlimited", "n/a", ""):
        return None
    try:
        return parse_duration_seconds(text)
    except ValueError:
        return None


_UNUSABLE = ("down", "drain", "fail", "maint", "reserved", "unknown", "not_responding", "future")


def parse_sinfo_state(stdout: str) -> dict[str, PartitionState]:
    """Partitions from `sinfo -N -h -O SINFO_STATE_FIELDS` (one line per node and partition)."""
    parts: dict[str, PartitionState] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) < 9:
            raise SlurmParseError(f"unexpected sinfo line: {line!r}")
        node, state, cpus, mem, alloc, part, tlimit, gres, gres_used = (c.strip() for c in cols[:9])
        part = part.rstrip("*")
        p = parts.setdefault(part, PartitionState(part))
        p.max_time = _time(tlimit)
        if any(state.lower().startswith(u) for u in _UNUSABLE) or node in p.node_names:
            continue
        p.node_names.add(node)
        a, _i, _o, t = (int(x) for x in cpus.split("/"))
        p.nodes += 1
        p.cpus_alloc += a
        p.cpus_total += t
        m = int(mem.rstrip("+") or 0)
        p.memory_total += m
        p.memory_alloc += int(alloc or 0)
        p.max_node_memory = max(p.max_node_memory, m)
        p.gpus_total += _gpus(gres)
        p.gpus_used += _gpus(gres_used)
    return parts


def count_pending(stdout: str) -> dict[str, int]:
    """Pending jobs per partition from `squeue -h -t PENDING -o %P` (multi-partition jobs count in each)."""
    counts: dict[str, int] = {}
    for line in stdout.split():
        for part in line.split(","):
            counts[part] = counts.get(part, 0) + 1
    return counts


# user|job id|state|reason|nodes|comment|job name (the two free texts last; see parse_hub_jobs)
HUB_JOBS_FORMAT = "%u|%i|%T|%r|%N|%k|%j"


@dataclass(frozen=True)
class HubJob:
    """One active job of a hub, as `squeue --format=HUB_JOBS_FORMAT` shows it."""

    user: str
    job_id: str
    state: str
    reason: str
    nodes: str
    name: str


def hub_comment(hub_name: str) -> str:
    """The Slurm comment every job of hub ``hub_name`` carries (set by the job script)."""
    return f"hpchub:{hub_name}"


def parse_hub_jobs(stdout: str, hub_name: str) -> list[HubJob]:
    """The jobs of hub ``hub_name`` only: found by their comment, never by their name.

    A job's name and comment are free text that may hold '|': the comment must equal this
    hub's exactly, and the name is whatever follows it.
    """
    want = hub_comment(hub_name) + "|"
    jobs = []
    for line in stdout.splitlines():
        fields = line.strip().split("|", 5)
        if len(fields) != 6 or not fields[5].startswith(want):
            continue
        user, job_id, state, reason, nodes, rest = fields
        if not job_id.isdigit():
            continue
        jobs.append(HubJob(user, job_id, state, reason, nodes, rest[len(want) :]))
    return jobs
