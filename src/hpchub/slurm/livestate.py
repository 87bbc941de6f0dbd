"""The cluster's current state for the spawn form: one cache for the whole hub.

However many users open the form, Slurm sees at most one `sinfo` and one `squeue` per
``max_age`` seconds. If Slurm does not answer, the form still works and says so.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..config.units import parse_duration_seconds
from ..core import clock
from ..resources.request import LiveLimits
from .parsers import SlurmParseError
from .runner import CommandTimeout, Result, run

log = logging.getLogger("hpchub.livestate")

SINFO_FIELDS = "NodeList:0|,StateLong:0|,CPUsState:0|,Memory:0|,AllocMem:0|,Partition:0|,Time:0|,Gres:0|,GresUsed:0"
_GPU = re.compile(r"gpu(?::[\w.-]+)?:(\d+)")


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


@dataclass(frozen=True)
class Snapshot:
    """One reading of the cluster, or the reason there is none."""

    taken_at: float
    partitions: dict[str, PartitionState]
    error: str | None = None

    @property
    def available(self) -> bool:
        return self.error is None

    def limits(self) -> dict[str, LiveLimits]:
        return {
            n: LiveLimits(p.max_time, p.max_node_memory or None, p.gpus_total)
            for n, p in self.partitions.items()
        }


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
    """Partitions from `sinfo -N -h -O SINFO_FIELDS` (one line per node and partition)."""
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


Runner = Callable[..., Awaitable[Result]]


class LiveState:
    """The hub-wide cache; ``get()`` returns a snapshot at most ``max_age`` seconds old."""

    _shared: dict[str, LiveState] = {}

    def __init__(self, bin_dir: str = "/usr/bin", max_age: float = 30.0, runner: Runner = run):
        self.bin_dir = bin_dir.rstrip("/")
        self.max_age = max_age
        self.runner = runner
        self._snapshot: Snapshot | None = None
        self._task: asyncio.Task | None = None
        self.queries = 0

    @classmethod
    def shared(cls, bin_dir: str, max_age: float = 30.0) -> LiveState:
        key = f"{bin_dir}|{max_age}"
        if key not in cls._shared:
            cls._shared[key] = cls(bin_dir, max_age)
        return cls._shared[key]

    async def get(self) -> Snapshot:
        snap = self._snapshot
        if snap is not None and clock.now() - snap.taken_at < self.max_age:
            return snap
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._read())
        return await asyncio.shield(self._task)

    async def _read(self) -> Snapshot:
        now = clock.now()
        self.queries += 1
        try:
            info = await self.runner(
                [f"{self.bin_dir}/sinfo", "-N", "-h", "-O", SINFO_FIELDS], timeout=15
            )
            queue = await self.runner(
                [f"{self.bin_dir}/squeue", "-h", "-t", "PENDING", "-o", "%P"], timeout=15
            )
            if not info.ok:
                raise SlurmParseError(info.message())
            parts = parse_sinfo_state(info.stdout)
            if queue.ok:
                for name, n in count_pending(queue.stdout).items():
                    if name in parts:
                        parts[name].pending = n
            snap = Snapshot(now, parts)
        except (SlurmParseError, CommandTimeout, OSError, ValueError) as err:
            log.warning("live cluster state unavailable: %s", err)
            snap = Snapshot(now, {}, error=str(err) or type(err).__name__)
        self._snapshot = snap
        return snap
