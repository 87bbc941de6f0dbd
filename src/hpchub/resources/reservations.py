"""Which reservations the form offers a user, and which maintenance windows cut a server short.

Pure: it reads a live-state snapshot (partitions with their nodes, and the reservations) and
the user's identity, and says what to offer and what to warn about.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..slurm.livestate import Snapshot
from ..slurm.parsers import Reservation


@dataclass(frozen=True)
class Maintenance:
    """A maintenance window on the Jupyter nodes, and how long a server started now may run
    before it begins, in whole minutes (0 while it is on: new servers wait until it is over)."""

    reservation: Reservation
    fits_seconds: int


@dataclass(frozen=True)
class ReservationOffer:
    usable: tuple[Reservation, ...] = ()
    maintenance: tuple[Maintenance, ...] = ()
    left_seconds: dict[str, int] = field(default_factory=dict)  # per usable one, whole minutes

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.usable)

    def fits_seconds(self) -> int | None:
        """The longest time limit that ends before the next maintenance (None: none comes)."""
        return min((m.fits_seconds for m in self.maintenance), default=None)


def offer(
    snap: Snapshot,
    partitions: Iterable[str],
    user: str,
    groups: set[str],
    accounts: tuple[str, ...],
    now: dt.datetime,
    horizon_seconds: int,
) -> ReservationOffer:
    """Active reservations on the Jupyter partitions that ``user`` may use (never maintenance
    ones), and maintenance windows on them that begin within ``horizon_seconds``."""
    names = set(partitions)
    nodes: set[str] = set()
    for name in names:
        part = snap.partitions.get(name)
        if part is not None:
            nodes |= part.members

    def on_jupyter(r: Reservation) -> bool:
        return bool(r.nodes & nodes) or r.partition in names

    usable = tuple(
        r
        for r in snap.reservations
        if r.active
        and not r.maintenance
        and r.end > now
        and on_jupyter(r)
        and r.open_to(user, groups, accounts)
    )
    horizon = now + dt.timedelta(seconds=horizon_seconds)
    maintenance = tuple(
        Maintenance(r, max(0, int((r.start - now).total_seconds())) // 60 * 60)
        for r in sorted(snap.reservations, key=lambda r: r.start)
        if r.maintenance and r.end > now and r.start < horizon and on_jupyter(r)
    )
    left = {r.name: int((r.end - now).total_seconds()) // 60 * 60 for r in usable}
    return ReservationOffer(usable, maintenance, left)
