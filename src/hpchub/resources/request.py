"""User options -> a validated resource request, or errors that name the field and the range.

This is the one validation path: the spawn form, the /hub/spawn query string and the REST API's
user_options all come here before anything is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config.apps import APP_TITLES, AppName
from ..config.loader import explain
from ..config.names import SlurmName
from ..config.profiles import CUSTOM_KEY, ProfileKey
from ..config.units import DurationSeconds, MemoryMiB, format_duration, format_memory
from ..slurm.livestate import LiveLimits
from ..slurm.parsers import UserAccounts
from .catalog import Catalog

CUSTOM_FIELDS = ("partition", "memory", "cpus", "time", "gpus", "gpu_type")


class OptionsError(ValueError):
    """User options were rejected; ``problems`` names each field and what is allowed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class _Options(BaseModel):
    """The keys a user may send; everything else is refused."""

    model_config = ConfigDict(extra="forbid")

    profile: ProfileKey | None = None
    partition: SlurmName | None = None
    memory: MemoryMiB | None = None
    cpus: int | None = Field(None, ge=1, le=4096)
    time: DurationSeconds | None = None
    gpus: int | None = Field(None, ge=0, le=64)
    gpu_type: SlurmName | None = None
    account: SlurmName | None = None
    reservation: SlurmName | None = None
    app: AppName | None = None


@dataclass(frozen=True)
class ResourceRequest:
    """A validated request: every value is within the site's (and Slurm's known) limits."""

    profile: str
    display_name: str
    partitions: tuple[str, ...]
    memory_mib: int
    cpus: int
    time_seconds: int
    idle_timeout: int
    gpus: int = 0
    gpu_type: str | None = None
    account: str | None = None
    qos: str | None = None
    reservation: str | None = None
    constraint: str | None = None
    extra_sbatch_args: tuple[str, ...] = field(default_factory=tuple)
    app: str = "jupyterlab"

    def to_options(self) -> dict[str, object]:
        """The canonical user_options to store (and to prefill the form with next time)."""
        chosen = {
            k: v for k, v in (("account", self.account), ("reservation", self.reservation)) if v
        }
        if self.app != "jupyterlab":
            chosen["app"] = self.app
        if self.profile != CUSTOM_KEY:
            return {"profile": self.profile, **chosen}
        return {
            **chosen,
            "profile": CUSTOM_KEY,
            "partition": self.partitions[0],
            "memory": format_memory(self.memory_mib),
            "cpus": self.cpus,
            "time": format_duration(self.time_seconds),
            "gpus": self.gpus,
            **({"gpu_type": self.gpu_type} if self.gpu_type else {}),
        }

    def summary(self) -> dict[str, object]:
        return asdict(self)


def flatten(options: Mapping[str, object]) -> dict[str, object]:
    """Form posts and query strings arrive as lists of strings: take single values, drop blanks."""
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


def _within(
    problems: list[str], name: str, value: int, high: int | None, fmt, part: str, unit_low: str
) -> None:
    if high is not None and value > high:
        problems.append(
            f"{name}: {fmt(value)} is more than {part} allows ({unit_low} to {fmt(high)})"
        )


def resolve_request(
    options: Mapping[str, object],
    catalog: Catalog,
    user: str,
    groups: set[str],
    live: Mapping[str, LiveLimits] | None = None,
    accounts: UserAccounts | None = None,
    reservations: Mapping[str, int] | None = None,
) -> ResourceRequest:
    """Validate ``options`` for ``user``; raise OptionsError naming every problem.
    ``accounts`` are the user's Slurm accounts (None: the cluster has no accounting);
    ``reservations`` the ones open to them now, with the seconds each has left
    (resources/reservations.py)."""
    try:
        raw = _Options.model_validate(flatten(options))
    except ValidationError as err:
        allowed = ", ".join(["profile", *CUSTOM_FIELDS, "account", "reservation", "app"])
        raise OptionsError(explain(err, f"allowed: {allowed}")) from None
    visible = catalog.visible(user, groups)
    key = raw.profile or (visible[0].key if visible else CUSTOM_KEY)
    if key != CUSTOM_KEY:
        req = _from_profile(raw, key, catalog, visible)
        _profile_gpus_fit(req, live or {})
    else:
        req = _custom(raw, catalog, user, groups, live or {})
    if raw.account is not None:
        if accounts is None and req.account is None:
            raise OptionsError(
                [
                    "account: this cluster offers no choice of account (no Slurm accounting); "
                    "leave it out"
                ]
            )
        mine = accounts.accounts if accounts else ()
        which = f"one of your Slurm accounts ({_list(mine)})"
        req = replace(req, account=_chosen("account", raw.account, req.account, mine, which))
    left = dict(reservations or {})
    if raw.reservation is not None:
        which = f"open to you now ({_list(tuple(left))})"
        chosen = _chosen("reservation", raw.reservation, req.reservation, tuple(left), which)
        req = replace(req, reservation=chosen)
    if req.reservation in left:  # chosen, or the profile's own (a course lab) while it is on
        req = _ends_with_reservation(req, left[req.reservation], key == CUSTOM_KEY)
    if raw.app is not None and raw.app != req.app:
        if raw.app not in catalog.apps:
            offered = ", ".join(f"{a} ({APP_TITLES[a]})" for a in catalog.apps)
            raise OptionsError([f"app: {raw.app!r} is not offered on this hub; choose {offered}"])
        req = replace(req, app=raw.app)
    return req


def _ends_with_reservation(req: ResourceRequest, left: int, typed: bool) -> ResourceRequest:
    """A server in a reservation ends with it. A profile's time is a ceiling the user did not
    type: it is cut to what is left, in whole minutes (Slurm's limits are minutes, rounded up);
    a typed (custom) time longer than that is refused."""
    fits = left // 60 * 60
    if req.time_seconds <= left:
        return req
    if not typed and fits:
        return replace(req, time_seconds=fits)
    raise OptionsError(
        [
            f"time: {format_duration(req.time_seconds)} is longer than reservation "
            f"{req.reservation!r} has left ({format_duration(left)}); a server in it must "
            "end with it: choose a shorter time (custom) or no reservation"
        ]
    )


def _list(names: tuple[str, ...]) -> str:
    return ", ".join(names) or "none"


def _chosen(what: str, asked: str, pinned: str | None, allowed: tuple[str, ...], which: str) -> str:
    """The user's choice of an account or a reservation: one of ``allowed``, unless the
    profile names its own (a course's), which then stays."""
    if pinned is not None:
        if asked != pinned:
            raise OptionsError([f"{what}: this profile always uses {what} {pinned!r}"])
        return pinned
    if asked not in allowed:
        raise OptionsError([f"{what}: {asked!r} is not {which}"])
    return asked


def _from_profile(raw: _Options, key: str, catalog: Catalog, visible) -> ResourceRequest:
    stray = [f for f in CUSTOM_FIELDS if getattr(raw, f) is not None]
    if stray:
        raise OptionsError([f"{f}: can only be set with profile 'custom'" for f in stray])
    prof = next((p for p in visible if p.key == key), None)
    if prof is None:
        names = [p.key for p in visible] + ([CUSTOM_KEY] if catalog.custom.enabled else [])
        known = catalog.profile(key) is not None
        why = "is not available to you" if known else "does not exist"
        raise OptionsError([f"profile: {key!r} {why}; choose one of {names}"])
    return ResourceRequest(
        profile=prof.key,
        display_name=prof.display_name,
        partitions=tuple(prof.partitions),
        memory_mib=prof.memory,
        cpus=prof.cpus,
        time_seconds=prof.time,
        idle_timeout=prof.idle_timeout,
        gpus=prof.gpus,
        gpu_type=prof.gpu_type,
        account=prof.account,
        qos=prof.qos,
        reservation=prof.reservation,
        constraint=prof.constraint,
        extra_sbatch_args=tuple(prof.extra_sbatch_args),
    )


def _custom(raw: _Options, catalog: Catalog, user: str, groups: set[str], live) -> ResourceRequest:
    c = catalog.custom
    if not catalog.custom_allowed(user, groups):
        raise OptionsError(["profile: custom resources are not available to you; choose a profile"])
    name = raw.partition or c.partitions[0]
    if name not in c.partitions:
        raise OptionsError(
            [f"partition: {name!r} is not offered for custom servers; choose one of {c.partitions}"]
        )
    part = catalog.partitions[name]
    lim = live.get(name, LiveLimits())
    memory = raw.memory if raw.memory is not None else c.default_memory
    cpus = raw.cpus if raw.cpus is not None else c.default_cpus
    time = raw.time if raw.time is not None else c.default_time
    gpus = raw.gpus if raw.gpus is not None else 0
    gpu_type = raw.gpu_type if gpus else None  # a type without a count asks for nothing
    problems: list[str] = []
    mem_cap = min(x for x in (c.max_memory, part.max_memory, lim.max_node_memory) if x is not None)
    time_cap = min(x for x in (c.max_time, part.max_time, lim.max_time) if x is not None)
    cpu_cap = min(x for x in (c.max_cpus, part.max_cpus) if x is not None)
    if memory < c.min_memory:
        problems.append(
            f"memory: {format_memory(memory)} is too little for a Jupyter server to start "
            f"(at least {format_memory(c.min_memory)})"
        )
    _within(problems, "memory", memory, mem_cap, format_memory, name, format_memory(c.min_memory))
    _within(problems, "cpus", cpus, cpu_cap, str, name, "1")
    _within(problems, "time", time, time_cap, format_duration, name, "1m")
    if gpus:
        problems += _gpu_problems(name, gpus, gpu_type, catalog, live)
    if problems:
        raise OptionsError(problems)
    return ResourceRequest(
        profile=CUSTOM_KEY,
        display_name="Custom",
        partitions=(name,),
        memory_mib=memory,
        cpus=cpus,
        time_seconds=time,
        idle_timeout=c.idle_timeout_for(memory),
        gpus=gpus,
        gpu_type=gpu_type,
    )


def _gpus_text(n: int, kind: str | None) -> str:
    return f"{n} {kind + ' ' if kind else ''}GPU{'s' if n != 1 else ''}"


def _gpu_problems(
    name: str, gpus: int, kind: str | None, catalog: Catalog, live: Mapping[str, LiveLimits]
) -> list[str]:
    """Why a custom server cannot have ``gpus`` GPUs (of type ``kind``, or of any) in
    partition ``name``: the site's caps, then what one node of the partition has (Slurm's
    GRES, where the live state knows it). Empty when it can."""
    custom_cap = catalog.custom.max_gpus
    if custom_cap == 0:
        return ["gpus: custom servers get no GPUs on this site; ask for 0"]
    site_cap = catalog.partitions[name].max_gpus
    with_gpus = tuple(
        p
        for p in catalog.custom.partitions
        if catalog.partitions[p].max_gpus != 0 and (live.get(p) or LiveLimits()).gpus
    )
    elsewhere = f"; partitions with GPUs: {_list(with_gpus)}"
    if site_cap == 0:
        return [f"gpus: partition {name} offers no GPUs on this site{elsewhere}"]
    lim = live.get(name) or LiveLimits()
    if lim.gpu_types is not None:
        if not lim.gpu_types:
            return [f"gpus: partition {name} has no GPUs{elsewhere}"]
        if kind is not None and kind not in lim.gpu_types:
            have = _list(tuple(k or "untyped" for k in lim.gpu_types))
            return [f"gpu_type: partition {name} has no {kind!r} GPUs (it has {have})"]
        per_node = lim.gpu_types[kind] if kind is not None else (lim.gpus or 0)
        if gpus > per_node:
            return [
                f"gpus: partition {name} has at most {_gpus_text(per_node, kind)} per node; "
                f"you asked for {gpus}"
            ]
    cap = min(custom_cap, site_cap if site_cap is not None else custom_cap)
    if gpus > cap:
        return [
            f"gpus: a custom server in partition {name} may have at most "
            f"{_gpus_text(cap, kind)} on this site; you asked for {gpus}"
        ]
    return []


def _profile_gpus_fit(req: ResourceRequest, live: Mapping[str, LiveLimits]) -> None:
    """A profile's pinned GPUs fit on a node of one of its partitions, where the live state
    knows their GRES; else the profile cannot start now, and the user is told why."""
    if not req.gpus:
        return
    known = [live[p] for p in req.partitions if p in live and live[p].gpu_types is not None]
    if not known or len(known) < len(req.partitions):
        return
    kind = req.gpu_type
    fits = [
        (lim.gpu_types.get(kind, 0) if kind is not None else lim.gpus or 0) >= req.gpus
        for lim in known
    ]
    if not any(fits):
        raise OptionsError(
            [
                f"profile: {req.profile!r} asks for {_gpus_text(req.gpus, kind)} per server, "
                f"which no node of {_list(req.partitions)} has; choose another profile"
            ]
        )
