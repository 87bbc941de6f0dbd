"""Time from one replaceable place, so tests move the clock instead of sleeping."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

_now: Callable[[], float] = time.time


def now() -> float:
    """Seconds since the epoch, from the current clock."""
    return _now()


def set_clock(fn: Callable[[], float] | None) -> None:
    """Replace the clock (tests); None restores the real one."""
    global _now
    _now = fn or time.time


def utcnow() -> dt.datetime:
    """The current clock's time as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(now(), dt.UTC)
