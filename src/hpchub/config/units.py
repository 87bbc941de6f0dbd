"""Memory sizes and durations as Slurm understands them, parsed strictly.

Both are stored as integers (MiB and seconds) so that comparisons against limits are exact,
and rendered back into the one spelling Slurm accepts.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$", re.IGNORECASE)
_MEM_FACTOR = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}

MEMORY_HELP = "a size such as 512M, 4G or 1.5T (a bare number means MiB, as in Slurm)"
DURATION_HELP = "a duration such as 30m, 8h, 2d, or Slurm's MM, HH:MM:SS, D-HH, D-HH:MM:SS"


def parse_memory_mib(value: object) -> int:
    """Parse '4G', '512M', '1.5T' or a number of MiB into whole MiB (at least 1)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {MEMORY_HELP}, got {value!r}")
    if isinstance(value, int):
        mib = value
    elif isinstance(value, float):
        mib = int(value)
    elif isinstance(value, str):
        m = _MEM_RE.match(value.strip())
        if not m:
            raise ValueError(f"expected {MEMORY_HELP}, got {value!r}")
        mib = int(float(m.group(1)) * _MEM_FACTOR[m.group(2).upper()])
    else:
        raise ValueError(f"expected {MEMORY_HELP}, got {value!r}")
    if mib < 1:
        raise ValueError(f"memory must be at least 1M, got {value!r}")
    if mib > 1024**3:
        raise ValueError(f"memory {value!r} is larger than any node")
    return mib


def format_memory(mib: int) -> str:
    """Render MiB the way a person reads it: 4G, 1536M."""
    if mib % (1024 * 1024) == 0:
        return f"{mib // (1024 * 1024)}T"
    if mib % 1024 == 0:
        return f"{mib // 1024}G"
    return f"{mib}M"


_HUMAN_RE = re.compile(r"^(?:\d+\s*[smhdw]\s*)+$", re.IGNORECASE)
_HUMAN_PART = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_HUMAN_FACTOR = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SLURM_RE = re.compile(
    r"^(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
    r"|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$"
)


def parse_duration_seconds(value: object, minimum: int = 60) -> int:
    """Parse a duration ('8h', '1-12:00:00', '90', '01:30:00') into whole seconds.

    Bare numbers and 'MM' follow Slurm: they are minutes. Job time limits are whole minutes
    (``minimum`` 60); idle timeouts may be as short as 10 s.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if isinstance(value, int):
        seconds = value * 60
    elif isinstance(value, str):
        text = value.strip()
        human = _HUMAN_RE.match(text)
        slurm = _SLURM_RE.match(text)
        if human:
            seconds = sum(int(n) * _HUMAN_FACTOR[u.lower()] for n, u in _HUMAN_PART.findall(text))
        elif slurm:
            g = slurm.groupdict()
            if g["days"] is not None:
                seconds = (
                    int(g["days"]) * 86400
                    + int(g["dh"]) * 3600
                    + int(g["dm"] or 0) * 60
                    + int(g["ds"] or 0)
                )
            elif g["c"] is not None:  # HH:MM:SS
                seconds = int(g["a"]) * 3600 + int(g["b"]) * 60 + int(g["c"])
            elif g["b"] is not None:  # MM:SS
                seconds = int(g["a"]) * 60 + int(g["b"])
            else:  # MM
                seconds = int(g["a"]) * 60
        else:
            raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    else:
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if seconds < minimum:
        floor = "one minute" if minimum == 60 else f"{minimum} second" + ("s" if minimum > 1 else "")
        raise ValueError(f"a duration must be at least {floor}, got {value!r}")
    if seconds > 365 * 86400:
        raise ValueError(f"a duration must be at most 365 days, got {value!r}")
    return seconds


def format_slurm_time(seconds: int) -> str:
    """Render seconds as Slurm's D-HH:MM:SS (whole minutes are rounded up)."""
    minutes = -(-seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{mins:02d}:00"
    return f"{hours:02d}:{mins:02d}:00"


def format_duration(seconds: int) -> str:
    """Render seconds exactly and briefly: 2d, 8h, 1h30m, 45m, 2m30s."""
    if seconds <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out += f"{n}{unit}"
    return out


MemoryMiB = Annotated[
    int,
    BeforeValidator(parse_memory_mib),
    PlainSerializer(format_memory, return_type=str),
    WithJsonSchema({"type": ["string", "integer"], "description": MEMORY_HELP}),
]
"""Memory in MiB; accepts '4G' and friends, serialises back to '4G'."""

DurationSeconds = Annotated[
    int,
    BeforeValidator(parse_duration_seconds),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": ["string", "integer"], "description": DURATION_HELP}),
]
"""A duration in seconds; accepts '8h', '1-00:00:00' and friends, serialises back to '8h'."""


IdleSeconds = Annotated[
    int,
    BeforeValidator(lambda v: parse_duration_seconds(v, minimum=10)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": ["string", "integer"], "description": DURATION_HELP + "; at least 10s"}
    ),
]
"""An idle timeout in seconds (like DurationSeconds, but '30s' is allowed)."""

IntervalSeconds = Annotated[
    int,
    BeforeValidator(lambda v: parse_duration_seconds(v, minimum=1)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": ["string", "integer"], "description": DURATION_HELP + "; at least 1s"}),
]
"""A polling interval in seconds ('5s', '5m')."""
