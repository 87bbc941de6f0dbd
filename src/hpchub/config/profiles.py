"""Resource profiles, custom resources and server limits: what users may ask for."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from .base import ProblemList, Strict, check_sbatch_option, described
from .names import SlurmName, UnixName
from .units import (
    DurationSeconds,
    IdleSeconds,
    MemoryMiB,
    format_duration,
    format_memory,
)

ProfileKey = Annotated[
    str,
    StringConstraints(
        pattern=described(
            r"^[a-z0-9][a-z0-9-]{0,31}$",
            "lower-case letters, digits and '-', starting with a letter or digit, at most 32 characters",
        )
    ),
]
OneLine = Annotated[
    str,
    StringConstraints(
        pattern=described(r"^[^\r\n\x00]*$", "a single line of text"), max_length=300
    ),
]
CUSTOM_KEY = "custom"


class Audience(Strict):
    """Who sees a choice: members of any listed group, or listed users; nobody listed = everyone."""

    groups: list[UnixName] = Field(default_factory=list, description="Unix groups who may use it.")
    users: list[UnixName] = Field(default_factory=list, description="Users who may use it.")

    def admits(self, user: str, groups: set[str]) -> bool:
        """Whether ``user`` (member of ``groups``) may see and use this choice."""
        if not self.groups and not self.users:
            return True
        return user in self.users or bool(groups & set(self.groups))


class Profile(Audience):
    """A named set of resources a user picks on the form."""

    key: ProfileKey = Field(description="Short id used in URLs and the API (`profile=KEY`).")
    display_name: OneLine = Field(min_length=1, max_length=80)
    description: OneLine = ""
    partitions: list[SlurmName] = Field(
        min_length=1,
        description="Partitions in order of preference; later ones (overflow) are used only "
        "when earlier ones are full. Submitted as one multi-partition job.",
    )
    memory: MemoryMiB = Field(description="The server's memory (at least custom.min_memory).")
    cpus: int = Field(1, ge=1, le=4096)
    time: DurationSeconds = Field(description="The job's time limit (Slurm enforces it).")
    gpus: int = Field(0, ge=0, le=64, description="GPUs requested as gres gpu[:type]:N.")
    gpu_type: SlurmName | None = Field(None, description="gres type, e.g. a100 (optional).")
    idle_timeout: IdleSeconds = Field(
        "4h",
        validate_default=True,
        description="Idle servers of this profile are stopped after this.",
    )
    account: SlurmName | None = Field(None, description="Slurm account (admin-set only).")
    qos: SlurmName | None = Field(None, description="Slurm QOS (admin-set only).")
    reservation: SlurmName | None = Field(None, description="Slurm reservation (admin-set only).")
    constraint: str | None = Field(
        None,
        pattern=described(
            r"^[A-Za-z0-9_&|,()\[\]*-]+$",
            "node features joined by '&', '|' or ',' (letters, digits, '_', '-', brackets, '*')",
        ),
        description="Node features (sbatch --constraint), admin-set only.",
    )
    extra_sbatch_args: list[str] = Field(
        default_factory=list,
        description="More sbatch options of the form --name=value (admin-set).",
    )

    @field_validator("key")
    @classmethod
    def _not_custom(cls, v: str) -> str:
        if v == CUSTOM_KEY:
            raise ValueError("'custom' is reserved for custom resources")
        return v

    @field_validator("extra_sbatch_args")
    @classmethod
    def _args(cls, v: list[str]) -> list[str]:
        for arg in v:
            check_sbatch_option(arg)
        return v


class IdleRule(Strict):
    """One row of the memory-to-idle-timeout table used for custom resources."""

    max_memory: MemoryMiB | None = Field(
        None, description="Applies to requests up to this much memory; none = any larger request."
    )
    idle_timeout: IdleSeconds


class CustomResources(Audience):
    """Letting users set resources themselves, within the admin's limits."""

    enabled: bool = True
    partitions: list[SlurmName] = Field(
        default_factory=lambda: ["jupyter-short", "jupyter-long"],
        description="Partitions a user may pick for a custom server.",
    )
    max_memory: MemoryMiB = Field("16G", validate_default=True)
    min_memory: MemoryMiB = Field(
        "256M",
        validate_default=True,
        description="The least memory of any server: every profile and every custom request. "
        "Below 256M a Jupyter server does not start; lower it only to show users that failure "
        "or for stand-in jobs (as the test bed and the benchmark do).",
    )
    max_cpus: int = Field(8, ge=1, le=4096)
    max_time: DurationSeconds = Field("7d", validate_default=True)
    max_gpus: int = Field(
        0,
        ge=0,
        le=64,
        description="The most GPUs of a custom server (0: custom servers get no GPUs); a "
        "partition's max_gpus and the GPUs one of its nodes has also apply.",
    )
    default_memory: MemoryMiB = Field("2G", validate_default=True)
    default_cpus: int = Field(1, ge=1, le=4096)
    default_time: DurationSeconds = Field("8h", validate_default=True)
    idle_timeouts: list[IdleRule] = Field(
        default_factory=lambda: [
            IdleRule(max_memory="4G", idle_timeout="24h"),
            IdleRule(max_memory="16G", idle_timeout="4h"),
            IdleRule(idle_timeout="1h"),
        ],
        min_length=1,
        description="Idle timeout by requested memory: the first row that fits applies.",
    )

    @model_validator(mode="after")
    def _table(self) -> CustomResources:
        problems = ProblemList()
        last = len(self.idle_timeouts) - 1
        if self.idle_timeouts[-1].max_memory is not None:
            problems.add(
                ("idle_timeouts", last, "max_memory"),
                "the last row must have no max_memory (it catches the rest)",
            )
        bounds = [r.max_memory for r in self.idle_timeouts[:-1]]
        if any(b is None for b in bounds) or bounds != sorted(bounds):  # type: ignore[type-var]
            problems.add(("idle_timeouts",), "rows must have increasing max_memory")
        # Defaults stand on their own: each lies within its own cap.
        for key, low, value, high, fmt in (
            (
                "default_memory",
                self.min_memory,
                self.default_memory,
                self.max_memory,
                format_memory,
            ),
            ("default_cpus", 1, self.default_cpus, self.max_cpus, str),
            ("default_time", 60, self.default_time, self.max_time, format_duration),
        ):
            if not low <= value <= high:
                cap = key.replace("default_", "max_")
                problems.add((key,), f"{fmt(value)} is outside {fmt(low)} to {cap} {fmt(high)}")
        problems.raise_if_any()
        return self

    def idle_timeout_for(self, memory_mib: int) -> int:
        """The idle timeout (seconds) for a custom request of ``memory_mib``."""
        for rule in self.idle_timeouts:
            if rule.max_memory is None or memory_mib <= rule.max_memory:
                return rule.idle_timeout
        return self.idle_timeouts[-1].idle_timeout


class ServerSettings(Strict):
    """How many servers a user may run at once."""

    named_servers: bool = Field(
        True,
        description="Users may run several servers at once (e.g. a small long one and a big short one).",
    )
    named_server_limit: int = Field(
        3, ge=0, le=100, description="At most this many named servers per user (0 = no limit)."
    )


def default_profiles() -> list[Profile]:
    """The shipped trade-off: small memory may run long, big memory runs short."""
    return [
        Profile(
            key="small-long",
            display_name="Small, long-running",
            description="For notebooks you keep open for days: editing, light analysis, plotting.",
            partitions=["jupyter-long"],
            memory="2G",
            cpus=1,
            time="3d",
            idle_timeout="24h",
        ),
        Profile(
            key="medium",
            display_name="Medium",
            description="A working day of interactive analysis.",
            partitions=["jupyter-short", "jupyter-overflow"],
            memory="8G",
            cpus=2,
            time="12h",
            idle_timeout="4h",
        ),
        Profile(
            key="large-short",
            display_name="Large memory, short",
            description="Big data in memory for a few hours; stopped soon when idle.",
            partitions=["jupyter-short", "jupyter-overflow"],
            memory="32G",
            cpus=4,
            time="4h",
            idle_timeout="1h",
        ),
    ]
