"""Pure parsers of Slurm command output, tested against output captured from the real tools."""

from __future__ import annotations

import datetime as dt
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


_GRES_ITEM = re.compile(r",(?![^(]*\))")  # commas between items, not inside "(S:0,1)"


def parse_gpus(gres: str) -> dict[str, int]:
    """GPUs by type from a GRES text of sinfo or scontrol: Gres 'gpu:tesla:2' (22.05),
    'gpu:tesla:2(S:0)' (24.11), GresUsed 'gpu:tesla:1(IDX:0)', untyped 'gpu:2', several
    'gpu:a100:2(S:0-1),gpu:v100:1', none '(null)'. Untyped GPUs count under ''."""
    found: dict[str, int] = {}
    for item in _GRES_ITEM.split(gres or ""):
        bits = re.sub(r"\([^)]*\)", "", item).strip().split(":")
        if bits[0] != "gpu" or len(bits) < 2 or not bits[-1].isdigit():
            continue
        kind = ":".join(bits[1:-1])
        found[kind] = found.get(kind, 0) + int(bits[-1])
    return found


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
    gpus: dict[str, int] = field(default_factory=dict)  # by type ('' untyped), usable nodes
    gpus_in_use: dict[str, int] = field(default_factory=dict)
    node_gpus: dict[str, int] = field(default_factory=dict)  # the most of a type on one node
    node_gpus_any: int = 0  # the most GPUs of any types on one node
    max_time: int | None = None
    pending: int = 0
    node_names: set[str] = field(default_factory=set)  # the usable ones
    members: set[str] = field(default_factory=set)  # every node, also reserved or down

    @property
    def cpus_free(self) -> int:
        return self.cpus_total - self.cpus_alloc

    @property
    def memory_free(self) -> int:
        return max(0, self.memory_total - self.memory_alloc)

    def gpus_free(self, kind: str) -> int:
        """GPUs of type ``kind`` not allocated now (summed over the usable nodes)."""
        return max(0, self.gpus.get(kind, 0) - self.gpus_in_use.get(kind, 0))

    def add_gpus(self, gres: str, gres_used: str) -> None:
        have = {k: n for k, n in parse_gpus(gres).items() if n}
        used = parse_gpus(gres_used)
        for kind, n in have.items():
            self.gpus[kind] = self.gpus.get(kind, 0) + n
            self.node_gpus[kind] = max(self.node_gpus.get(kind, 0), n)
        for kind, n in used.items():
            self.gpus_in_use[kind] = self.gpus_in_use.get(kind, 0) + n
        self.node_gpus_any = max(self.node_gpus_any, sum(have.values()))
        self.gpus_total += sum(have.values())
        self.gpus_used += sum(used.values())


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
        p.members.add(node)
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
        p.add_gpus(gres, gres_used)
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


# sacct --parsable2: one line for the job and one per step (ID.batch, ID.extern, ID.0...).
SACCT_FORMAT = "JobID,State,ExitCode,ReqMem,MaxRSS,Elapsed"
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)[nc]?$")
_SIZE_MIB = {"": 1 / (1024 * 1024), "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


@dataclass(frozen=True)
class JobHistory:
    """What accounting recorded of one job after it left the queue."""

    job_id: str
    state: str
    exit_code: str
    requested_mib: float | None
    peak_mib: float | None  # the largest MaxRSS of its steps; None where it was never sampled
    elapsed: str


def _size_mib(text: str, bare_unit: str = "") -> float | None:
    """sacct's sizes: '310204K', '100M', '4G', '4Gn' (older: per node), '0' or ''."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        return None
    value = float(m.group(1)) * _SIZE_MIB[m.group(2) or bare_unit]
    return value or None


def parse_sacct(stdout: str, job_id: str) -> JobHistory | None:
    """The record of ``job_id`` from `sacct --noheader --parsable2 --format=SACCT_FORMAT`."""
    job: list[str] | None = None
    peak: float | None = None
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 6:
            continue
        step_of = parts[0].split(".", 1)[0]
        if step_of != job_id:
            continue
        if parts[0] == job_id:
            job = parts
        rss = _size_mib(parts[4], bare_unit="")
        if rss is not None:
            peak = max(peak or 0.0, rss)
    if job is None:
        return None
    return JobHistory(
        job_id=job_id,
        state=job[1].split()[0] if job[1].strip() else "UNKNOWN",
        exit_code=job[2],
        requested_mib=_size_mib(job[3], bare_unit="M"),
        peak_mib=peak,
        elapsed=job[5],
    )


def parse_private_data(show_config: str) -> frozenset[str]:
    """The PrivateData flags from `scontrol show config` (empty when 'none')."""
    for line in show_config.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "PrivateData":
            flags = {f.strip().lower() for f in value.split(",") if f.strip()}
            return frozenset(flags - {"none"})
    return frozenset()


@dataclass(frozen=True)
class AccountShare:
    """An association's standing: its usage (decayed CPU-seconds) and fair share (0 to 1)."""

    raw_usage: int
    fair_share: float | None


@dataclass(frozen=True)
class UserAccounts:
    """The Slurm accounts a user may charge (their associations), from accounting."""

    accounts: tuple[str, ...]
    default: str | None
    shares: dict[str, AccountShare] = field(default_factory=dict)


def parse_user_accounts(stdout: str) -> tuple[tuple[str, ...], str | None]:
    """(accounts, default) from `sacctmgr -n -P show user NAME withassoc
    format=defaultaccount,account`, the default account first."""
    accounts: list[str] = []
    default = None
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 2 or not parts[1]:
            continue
        default = default or parts[0] or None
        if parts[1] not in accounts:
            accounts.append(parts[1])
    if default in accounts:  # the default first, then sacctmgr's (alphabetical) order
        accounts.remove(default)
        accounts.insert(0, default)
    return tuple(accounts), default


def parse_sshare(stdout: str, user: str) -> dict[str, AccountShare]:
    """The user's rows of `sshare -n -P -u USER -o Account,User,RawUsage,FairShare`."""
    out: dict[str, AccountShare] = {}
    for line in stdout.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4 or parts[1] != user:
            continue
        try:
            usage = int(float(parts[2] or 0))
            fair = float(parts[3]) if parts[3] else None
        except ValueError:
            continue
        out[parts[0]] = AccountShare(usage, fair)
    return out


_HOSTRANGE = re.compile(r"([^,\[]*)\[([^\]]+)\]([^,]*)|([^,\[\]]+)")


def expand_hostlist(text: str) -> frozenset[str]:
    """Slurm's host lists ('vm', 'node[01-03,07],gpu1') as names; '(null)' is empty."""
    names: set[str] = set()
    if text in ("", "(null)"):
        return frozenset()
    for m in _HOSTRANGE.finditer(text):
        if m.group(4):
            names.add(m.group(4).strip())
            continue
        head, ranges, tail = m.group(1), m.group(2), m.group(3)
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            if not high:
                names.add(f"{head}{low}{tail}")
                continue
            for i in range(int(low), int(high) + 1):
                names.add(f"{head}{i:0{len(low)}d}{tail}")
    return frozenset(names)


def _names(text: str) -> frozenset[str]:
    return frozenset() if text in ("", "(null)") else frozenset(text.split(","))


@dataclass(frozen=True)
class Reservation:
    """One reservation from `scontrol show reservation -o`."""

    name: str
    start: dt.datetime
    end: dt.datetime
    nodes: frozenset[str]
    partition: str | None
    flags: frozenset[str]
    users: frozenset[str]
    groups: frozenset[str]
    accounts: frozenset[str]
    active: bool

    @property
    def maintenance(self) -> bool:
        return "MAINT" in self.flags

    def open_to(self, user: str, groups: set[str], accounts: tuple[str, ...]) -> bool:
        """Whether ``user`` may run jobs in it, by name, group or account (a list of only
        negated names, 'Users=-bob', means everyone but them)."""
        return any(
            _listed(names, mine)
            for names, mine in (
                (self.users, {user}),
                (self.groups, set(groups)),
                (self.accounts, set(accounts)),
            )
        )


def _listed(names: frozenset[str], mine: set[str]) -> bool:
    if not names:
        return False
    if all(n.startswith("-") for n in names):
        return not ({n[1:] for n in names} & mine)
    return bool(names & mine)


def parse_reservations(stdout: str) -> list[Reservation]:
    """Every reservation from `scontrol show reservation -o` (none: 'No reservations...')."""
    out = []
    for line in stdout.splitlines():
        rec = parse_scontrol_record(line)
        if "ReservationName" not in rec:
            continue
        try:
            start = dt.datetime.fromisoformat(rec["StartTime"])
            end = dt.datetime.fromisoformat(rec["EndTime"])
        except (KeyError, ValueError) as err:
            raise SlurmParseError(f"unexpected reservation: {line!r}") from err
        partition = rec.get("PartitionName", "(null)")
        out.append(
            Reservation(
                name=rec["ReservationName"],
                start=start,
                end=end,
                nodes=expand_hostlist(rec.get("Nodes", "")),
                partition=None if partition == "(null)" else partition,
                flags=_names(rec.get("Flags", "")),
                users=_names(rec.get("Users", "")),
                groups=_names(rec.get("Groups", "")),
                accounts=_names(rec.get("Accounts", "")),
                active=rec.get("State") == "ACTIVE",
            )
        )
    return out
