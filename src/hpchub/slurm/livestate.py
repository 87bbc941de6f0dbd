"""The cluster's current state for the spawn form: one cache for the whole hub.

However many users open the form, Slurm sees at most one `sinfo`, one `squeue` and one
`scontrol show reservation` per ``max_age`` seconds (both through the Slurm gateway), and, per user, one reading of their
accounts from accounting. If Slurm does not answer, the form still works and says so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..core import clock
from .client import SlurmClient, SlurmError
from .parsers import PartitionState, Reservation, UserAccounts

log = logging.getLogger("hpchub.livestate")


@dataclass(frozen=True)
class LiveLimits:
    """What Slurm itself allows in a partition (from the live-state cache), where known."""

    max_time: int | None = None
    max_node_memory: int | None = None
    gpus: int | None = None
    """The most GPUs (of any types) on one usable node; None: not known."""
    gpu_types: dict[str, int] | None = None
    """The most GPUs of each type ('' untyped) on one usable node; None: not known."""


@dataclass(frozen=True)
class Snapshot:
    """One reading of the cluster, or the reason there is none."""

    taken_at: float
    partitions: dict[str, PartitionState]
    error: str | None = None
    reservations: tuple[Reservation, ...] = ()

    @property
    def available(self) -> bool:
        return self.error is None

    def limits(self) -> dict[str, LiveLimits]:
        return {
            n: LiveLimits(p.max_time, p.max_node_memory or None, p.node_gpus_any, dict(p.node_gpus))
            for n, p in self.partitions.items()
        }


class LiveState:
    """The hub-wide cache; ``get()`` returns a snapshot at most ``max_age`` seconds old."""

    _shared: dict[tuple, LiveState] = {}

    def __init__(self, client: SlurmClient, max_age: float = 30.0):
        self.client = client
        self.max_age = max_age
        self._snapshot: Snapshot | None = None
        self._task: asyncio.Task | None = None
        self.queries = 0
        self._accounts: dict[str, tuple[float, UserAccounts | None]] = {}

    @classmethod
    def shared(cls, client: SlurmClient, max_age: float = 30.0) -> LiveState:
        """The hub-wide cache for this Slurm installation (created on first use)."""
        key = (client.settings.bin_dir, client.runner, max_age)
        if key not in cls._shared:
            cls._shared[key] = cls(client, max_age)
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
            parts = await self.client.partitions()
            try:
                reservations = tuple(await self.client.reservations())
            except (SlurmError, TimeoutError, ValueError) as err:  # the form stands without them
                log.warning("reservations unavailable: %s", err)
                reservations = ()
            snap = Snapshot(now, parts, reservations=reservations)
        except (SlurmError, TimeoutError, OSError, ValueError) as err:
            log.warning("live cluster state unavailable: %s", err)
            snap = Snapshot(now, {}, error=str(err) or type(err).__name__)
        self._snapshot = snap
        return snap

    async def accounts(self, user: str) -> UserAccounts | None:
        """The user's Slurm accounts (cached ``max_age`` seconds); None without accounting or
        while accounting does not answer (the form then offers no choice of account)."""
        cached = self._accounts.get(user)
        if cached is not None and clock.now() - cached[0] < self.max_age:
            return cached[1]
        try:
            found = await self.client.user_accounts(user)
        except (SlurmError, TimeoutError, OSError, ValueError) as err:
            log.warning("accounts of %s unavailable: %s", user, err)
            found = None
        self._accounts[user] = (clock.now(), found)
        return found
