"""User options -> a validated resource request, or a 400 that names the field and the range."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config.loader import explain
from ..config.models import Partition, ResourceDefaults
from ..config.names import SlurmName
from ..config.units import DurationSeconds, MemoryMiB, format_duration, format_memory


class OptionsError(ValueError):
    """User options were rejected; ``problems`` names each field and what is allowed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class _Options(BaseModel):
    """The raw keys a user may send (all optional; defaults fill the rest)."""

    model_config = ConfigDict(extra="forbid")

    partition: SlurmName | None = None
    memory: MemoryMiB | None = None
    cpus: int | None = Field(None, ge=1, le=4096, strict=False)
    time: DurationSeconds | None = None


@dataclass(frozen=True)
class ResourceRequest:
    """A validated request: every value is within the site's limits."""

    partitions: tuple[str, ...]
    memory_mib: int
    cpus: int
    time_seconds: int


def _flatten(options: Mapping[str, object]) -> dict[str, object]:
    # Form posts and query strings arrive as lists of strings; take the single value.
    out: dict[str, object] = {}
    for key, value in options.items():
        if isinstance(value, list | tuple):
            if len(value) != 1:
                raise OptionsError([f"{key}: give exactly one value (got {len(value)})"])
            value = value[0]
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            if any(c in value for c in "\r\n\0"):
                raise OptionsError([f"{key}: must be a single line of text"])
            value = value.strip()
            if value == "":
                continue
        out[str(key)] = value
    return out


def resolve_request(
    options: Mapping[str, object],
    partitions: Sequence[Partition],
    default_partition: str,
    defaults: ResourceDefaults,
) -> ResourceRequest:
    """Validate ``options`` against the site's partitions and limits."""
    try:
        raw = _Options.model_validate(_flatten(options))
    except ValidationError as err:
        raise OptionsError(explain(err)) from None
    by_name = {p.name: p for p in partitions}
    name = raw.partition or default_partition
    if name not in by_name:
        raise OptionsError([f"partition: {name!r} is not offered; choose one of {sorted(by_name)}"])
    part = by_name[name]
    memory = raw.memory if raw.memory is not None else defaults.memory
    cpus = raw.cpus if raw.cpus is not None else defaults.cpus
    time = raw.time if raw.time is not None else defaults.time
    problems = []
    if part.max_memory is not None and memory > part.max_memory:
        problems.append(
            f"memory: {format_memory(memory)} is more than {name} allows "
            f"(1M to {format_memory(part.max_memory)})"
        )
    if part.max_cpus is not None and cpus > part.max_cpus:
        problems.append(f"cpus: {cpus} is more than {name} allows (1 to {part.max_cpus})")
    if part.max_time is not None and time > part.max_time:
        problems.append(
            f"time: {format_duration(time)} is longer than {name} allows "
            f"(1m to {format_duration(part.max_time)})"
        )
    if problems:
        raise OptionsError(problems)
    return ResourceRequest((name,), memory, cpus, time)
