"""Memory sizes and durations as Slurm understands them, parsed strictly.

Both are stored as integers (MiB and seconds) so that comparisons against limits are exact,
and rendered back into the one spelling Slurm accepts.

What admins and users write (the site file, the form, the REST API) must carry its unit: a bare
number is refused, because it meant minutes in one key, hours in another and MiB in a third.
The pydantic types below apply that rule to input; code that already holds whole MiB or seconds
(Slurm's own output, values read back from a model) uses ``parse_*`` and ``format_*`` directly.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$", re.IGNORECASE)
_MEM_FACTOR = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}

MEMORY_HELP = "a size with its unit, such as 512M, 4G or 1.5T"
DURATION_HELP = "a duration with its unit, such as 30s, 90m, 8h, 2d, or Slurm's 'D-HH:MM:SS'"
SERVER_MEMORY_FLOOR = 256
"""MiB below which a Jupyter server does not start (the interpreter, the server and a kernel)."""


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


def parse_duration_seconds(value: object, minimum: int = 60, maximum: int = 365 * 86400) -> int:
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
        floor = "one minute" if minimum == 60 else format_duration(minimum)
        raise ValueError(f"a duration must be at least {floor}, got {value!r}")
    if seconds > maximum:
        raise ValueError(f"a duration must be at most {format_duration(maximum)}, got {value!r}")
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


_BARE_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


def _bare(value: object) -> str | None:
    """The number as written if ``value`` is a number without a unit, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, str) and _BARE_NUMBER.match(value):
        return value.strip()
    return None


def memory_input(value: object, floor: int = 1, what: str = "memory") -> int:
    """A size written by a person ('4G'); a bare number is refused with how to write it."""
    n = _bare(value)
    if n is not None:
        raise ValueError(
            f"{n} has no unit: write the size with one, e.g. {n}M for MiB or {n}G for GiB"
        )
    if isinstance(value, str) and not re.search(r"[KMGT]", value, re.IGNORECASE):
        raise ValueError(f"{value!r} has no unit: write the size as e.g. 512M or 4G")
    mib = parse_memory_mib(value)
    if mib < floor:
        raise ValueError(
            f"{format_memory(mib)} is too little {what}: a Jupyter server needs at least "
            f"{format_memory(floor)} to start"
        )
    return mib


def duration_input(value: object, minimum: int = 60, maximum: int = 365 * 86400) -> int:
    """A duration written by a person ('8h', '1-00:00:00'); a bare number is refused."""
    n = _bare(value)
    if n is not None:
        raise ValueError(
            f"{n} has no unit: write the duration with one, e.g. {n}s, {n}m or {n}h, "
            "or quote Slurm's form as a string, e.g. '12:00:00'"
        )
    return parse_duration_seconds(value, minimum=minimum, maximum=maximum)


def duration(minimum: int = 60, maximum: int = 365 * 86400) -> object:
    """A pydantic type for a duration input between ``minimum`` and ``maximum`` seconds."""
    return Annotated[
        int,
        BeforeValidator(partial(duration_input, minimum=minimum, maximum=maximum)),
        PlainSerializer(format_duration, return_type=str),
        WithJsonSchema(
            {
                "type": "string",
                "description": f"{DURATION_HELP}; from {format_duration(minimum)} "
                f"to {format_duration(maximum)}",
            }
        ),
    ]


MemoryMiB = Annotated[
    int,
    BeforeValidator(memory_input),
    PlainSerializer(format_memory, return_type=str),
    WithJsonSchema({"type": "string", "description": MEMORY_HELP}),
]
"""Memory in MiB, written with its unit ('4G'); serialises back to '4G'."""

DurationSeconds = duration(60)
"""A job time limit in seconds (whole minutes); '8h', '1-00:00:00'; serialises back to '8h'."""

IdleSeconds = duration(10)
"""An idle timeout in seconds (like DurationSeconds, but '30s' is allowed)."""

IntervalSeconds = duration(1)
"""A polling interval in seconds ('5s', '5m')."""
