"""The site file's typed models: the one source of truth for defaults, validation and docs.

Every model forbids unknown keys, so a typo in the site file is an error that names the key
instead of a setting that silently does nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ..core.names import check_name, is_unix_name, local_account
from .apps import AppSettings
from .base import HttpUrl, ProblemList, Strict, check_sbatch_option, described
from .courses import Course, check_course_profiles, check_course_sources, check_unique_courses
from .culling import CullingSettings
from .database import DatabaseSettings
from .deploy import DeploySettings
from .files import FileBrowserSettings
from .kernels import ExtensionSettings, KernelSettings
from .monitoring import MonitoringSettings
from .names import Identity, Realm, SlurmName, UnixName
from .profiles import CustomResources, Profile, ServerSettings, default_profiles
from .timelimit import TimeSettings
from .units import (
    SERVER_MEMORY_FLOOR,
    DurationSeconds,
    MemoryMiB,
    duration,
    format_duration,
    format_memory,
)


class HubSettings(Strict):
    """Where the hub listens, who may log in and where it keeps its state."""

    name: SlurmName = Field(
        "hpchub",
        description="This hub's name; every job it submits carries the Slurm comment hpchub:NAME.",
    )
    public_url: HttpUrl = Field(
        "http://127.0.0.1:8000/",
        description="URL the proxy listens on for users (behind Apache in production).",
    )
    hub_bind_url: HttpUrl = Field(
        "http://127.0.0.1:8081/",
        description="Where the hub's own API listens (the proxy and services reach it here).",
    )
    hub_connect_url: HttpUrl | None = Field(
        None,
        description=(
            "URL that compute nodes use to reach the hub API, when it differs from "
            "hub_bind_url (for example the login node's cluster-network address)."
        ),
    )
    authenticator: Literal["pam", "remote_user"] = Field(
        "pam",
        description=(
            "pam: users log in with their cluster password. remote_user: trust the "
            "REMOTE_USER header set by the web server in front (only behind Apache)."
        ),
    )
    realms: list[Realm] = Field(
        default_factory=list,
        description=(
            "Realms (Kerberos, SSO scopes) whose names are local accounts: with [example.org], "
            "anna.lee@EXAMPLE.ORG logs in as anna.lee. Names of any other realm are refused. "
            "Compared in lower case. Empty: names carry no realm."
        ),
    )
    username_map: dict[Identity, UnixName] = Field(
        default_factory=dict,
        description=(
            "Names mapped to a local account as they are, before realms are cut off "
            "(JupyterHub's Authenticator.username_map), e.g. {a.lee@partner.org: anna.lee}. "
            "Compared in lower case; a target is never mapped again."
        ),
    )
    allowed_users: list[UnixName] = Field(
        default_factory=list, description="Users who may log in, besides allowed_groups."
    )
    allowed_groups: list[UnixName] = Field(
        default_factory=list, description="Unix groups whose members may log in."
    )
    admin_users: list[UnixName] = Field(
        default_factory=list, description="Users with admin rights in the hub."
    )
    admin_groups: list[UnixName] = Field(
        default_factory=list, description="Unix groups whose members are hub admins."
    )
    data_dir: Path = Field(
        Path("/var/lib/hpchub"),
        description="The hub's state: database, cookie secret. Owned by the hub user, mode 700.",
    )
    config_d: Path = Field(
        Path("/etc/hpchub/jupyterhub_config.d"),
        description="Admin escape hatch: *.py files here are loaded after the site file.",
    )
    proxy_api_url: HttpUrl = Field(
        "http://127.0.0.1:8001/",
        description="configurable-http-proxy's API, which the hub drives.",
    )
    external_proxy: bool = Field(
        True,
        description=(
            "The proxy runs as its own service, so users' servers stay reachable "
            "while the hub restarts."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    database: DatabaseSettings | None = Field(
        None, description="PostgreSQL instead of SQLite in data_dir (password by reference)."
    )

    @model_validator(mode="after")
    def _one_step_of_mapping(self) -> HubSettings:
        chained = sorted(set(self.username_map) & set(self.username_map.values()))
        if chained:
            raise ValueError(
                f"username_map: {', '.join(chained)} is both mapped and a target; a name is "
                "mapped once, never again: map each name straight to its account"
            )
        return self

    @model_validator(mode="after")
    def _someone_may_log_in(self) -> HubSettings:
        if self.authenticator == "pam" and not (self.allowed_users or self.allowed_groups):
            raise ValueError(
                "nobody could log in: set hub.allowed_users or hub.allowed_groups "
                "(for example allowed_groups: [jupyter])"
            )
        return self

    def account_of(self, name: str) -> str:
        """The local account that ``name`` (anna.lee, anna.lee@EXAMPLE.ORG) stands for, mapped as
        the hub maps a login (``core.names.local_account``); ValueError in words for none."""
        account = local_account(name, self.realms, self.username_map)
        if is_unix_name(account):
            return account
        check_name("unix", name, "user name")  # the words name what was typed
        raise ValueError(f"{name!r} stands for {account!r}, which is not a user name")


class Partition(Strict):
    """A Slurm partition that Jupyter servers may use, with the site's own limits."""

    name: SlurmName
    description: str = Field("", max_length=200)
    max_time: DurationSeconds | None = Field(
        None, description="Longest time limit offered here (Slurm's MaxTime also applies)."
    )
    max_memory: MemoryMiB | None = Field(
        None, description="Largest memory request offered here (node memory also applies)."
    )
    max_cpus: int | None = Field(None, ge=1, le=4096)
    max_gpus: int | None = Field(
        None,
        ge=0,
        le=64,
        description="The most GPUs one server may ask for here (custom.max_gpus and the GPUs "
        "one node has, from Slurm's GRES, also apply); 0: this partition offers no GPUs.",
    )


class SlurmSettings(Strict):
    """How the hub talks to Slurm."""

    bin_dir: Path = Field(Path("/usr/bin"), description="Folder of sbatch, squeue, scancel, sinfo.")
    sudo: Path = Field(Path("/usr/bin/sudo"), description="sudo, used to submit as the user.")
    partitions: list[Partition] = Field(
        default_factory=lambda: [
            Partition(name="jupyter-short", max_time="12h"),
            Partition(name="jupyter-long", max_time="7d"),
            Partition(name="jupyter-overflow", max_time="12h"),
        ],
        min_length=1,
    )
    default_partition: SlurmName = "jupyter-short"
    submit_timeout: duration(5, 600) = Field(  # type: ignore[valid-type]
        "1m", validate_default=True, description="How long to wait for sbatch before giving up."
    )
    poll_interval: duration(1, 600) = Field(  # type: ignore[valid-type]
        "30s",
        validate_default=True,
        description="Time between the monitor's batched squeue queries.",
    )
    extra_sbatch_args: list[str] = Field(
        default_factory=list,
        description="Site-wide sbatch options added to every job, e.g. ['--account=jupyter'].",
    )

    @model_validator(mode="after")
    def _default_is_listed(self) -> SlurmSettings:
        problems = ProblemList()
        names = [p.name for p in self.partitions]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.add(("partitions", i, "name"), f"{name!r} is listed twice")
        if "default_partition" not in self.model_fields_set and names:
            # The shipped default names a partition of its own: use the admin's first one.
            self.__dict__["default_partition"] = (
                self.default_partition if self.default_partition in names else names[0]
            )
        if self.default_partition not in names:
            problems.add(
                ("default_partition",),
                f"{self.default_partition!r} is not among the partitions {names}",
            )
        for i, arg in enumerate(self.extra_sbatch_args):
            try:
                check_sbatch_option(arg)
            except ValueError as err:
                problems.add(("extra_sbatch_args", i), str(err))
        problems.raise_if_any()
        return self

    def partition(self, name: str) -> Partition:
        """The partition called ``name``; KeyError if the site does not offer it."""
        for p in self.partitions:
            if p.name == name:
                return p
        raise KeyError(name)


class SingleUserSettings(Strict):
    """The environment that runs users' Jupyter servers inside their jobs."""

    prefix: Path = Field(
        Path("/opt/hpchub/current"),
        description=(
            "The hub's software: ROOT/current, the link to the release `hpchub install "
            "--software --prefix ROOT` made current (jobs use the release it resolves to)."
        ),
    )
    default_url: str = Field(
        "/lab",
        pattern=described(
            r"^/[A-Za-z0-9_/.-]*$",
            "a URL path starting with '/', of letters, digits, '_', '/', '.' and '-'",
        ),
    )
    port_range: tuple[int, int] = Field(
        (40000, 49999),
        description="Ports the server may listen on, on the compute node (firewalls).",
    )
    log_dir: str = Field(
        "~/.hpchub/logs",
        description="Where job logs go; '~' is the user's home. Created mode 700 by the user.",
        pattern=described(
            r"^(~|/)[A-Za-z0-9_./-]*$",
            "a path starting with '~' or '/', of letters, digits, '_', '.', '/' and '-'",
        ),
    )
    log_max_age_days: int = Field(7, ge=1, le=3650, description="Job logs older than this go.")
    start_timeout: duration(30, 7200) = Field(  # type: ignore[valid-type]
        "5m",
        validate_default=True,
        description="How long a running job may take to report its port.",
    )
    pending_timeout: duration(30, 86400) = Field(  # type: ignore[valid-type]
        "30m",
        validate_default=True,
        description="How long a job may wait in the queue before giving up.",
    )
    disable_user_config: bool = Field(
        True, description="Ignore ~/.jupyter config in users' servers (security)."
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment variables for the single-user server.",
    )

    @model_validator(mode="after")
    def _check(self) -> SingleUserSettings:
        problems = ProblemList()
        lo, hi = self.port_range
        if not (1024 <= lo <= hi <= 65535):
            problems.add(("port_range",), f"{lo}-{hi} is not within 1024 <= low <= high <= 65535")
        for key, value in self.environment.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                problems.add(
                    ("environment", key),
                    f"{key!r} is not a variable name: use letters, digits and '_', "
                    "not starting with a digit",
                )
            if "\n" in value or "\0" in value:
                problems.add(("environment", key), "the value must be a single line")
        problems.raise_if_any()
        return self


class SiteConfig(Strict):
    """The whole site file (/etc/hpchub/hpchub.yaml)."""

    def __deepcopy__(self, memo):
        # The hub loads the site once and every spawner shares it; traitlets deep-copies
        # config values into each instance, which must not make thousands of copies.
        return self

    def __copy__(self):
        return self

    hub: HubSettings = Field(
        default_factory=lambda: HubSettings(allowed_groups=["jupyter"]),
        description="The hub: addresses, login policy, state.",
    )
    slurm: SlurmSettings = Field(
        default_factory=SlurmSettings, description="Slurm: binaries, partitions, polling."
    )
    singleuser: SingleUserSettings = Field(
        default_factory=SingleUserSettings,
        description="What runs in the job: environment, ports, logs.",
    )
    profiles: list[Profile] = Field(
        default_factory=default_profiles,
        description="The choices on the spawn form, in order; the first one a user may use is their default.",
    )
    custom: CustomResources = Field(
        default_factory=CustomResources,
        description="Resources users set themselves, within limits.",
    )
    servers: ServerSettings = Field(
        default_factory=ServerSettings, description="Named servers per user."
    )
    apps: AppSettings = Field(
        default_factory=AppSettings,
        description="Apps a server can open in besides JupyterLab: a desktop, VS Code, RStudio.",
    )
    kernels: KernelSettings = Field(
        default_factory=KernelSettings, description="Kernels made from the site's Lmod modules."
    )
    extensions: ExtensionSettings = Field(
        default_factory=ExtensionSettings, description="JupyterLab extensions for everyone."
    )
    files: FileBrowserSettings = Field(
        default_factory=FileBrowserSettings,
        description="The file browser: its root folder (beyond the home) and favourite folders.",
    )
    culling: CullingSettings = Field(
        default_factory=CullingSettings, description="Stopping idle servers, per their own timeout."
    )
    courses: list[Course] = Field(
        default_factory=list,
        description="Courses and workshops: materials staged into members' folders at spawn.",
    )
    monitoring: MonitoringSettings = Field(
        default_factory=MonitoringSettings, description="Who may read the hub's metrics."
    )
    time: TimeSettings = Field(
        default_factory=TimeSettings,
        description="Time left, warnings before the limit, the Extend button, start notices.",
    )
    deploy: DeploySettings = Field(
        default_factory=DeploySettings,
        description="System integration that `hpchub install` puts in place (root).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SiteConfig:
        problems = ProblemList()
        offered = {p.name: p for p in self.slurm.partitions}
        if "profiles" not in self.model_fields_set:
            # The shipped profiles name partitions of their own: keep those that fit this site.
            fitting = [p for p in self.profiles if not profile_problems(p, offered, 1)]
            self.__dict__["profiles"] = fitting
        if "partitions" not in self.custom.model_fields_set:
            chosen = [n for n in self.custom.partitions if n in offered]
            self.custom.__dict__["partitions"] = chosen or [self.slurm.default_partition]
        keys = [p.key for p in self.profiles]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                problems.add(("profiles", i, "key"), f"{key!r} is used by an earlier profile too")
        for i, prof in enumerate(self.profiles):
            for rel, msg in profile_problems(prof, offered, self.custom.min_memory):
                problems.add(("profiles", i, *rel), msg)
        for i, name in enumerate(self.custom.partitions):
            if name not in offered:
                problems.add(
                    ("custom", "partitions", i),
                    f"{name!r} is not in slurm.partitions {sorted(offered)}",
                )
        for i, name in enumerate(self.time.extend.partitions or []):
            if name not in offered:
                problems.add(
                    ("time", "extend", "partitions", i),
                    f"{name!r} is not in slurm.partitions {sorted(offered)}",
                )
        gate = self.deploy.web.gate
        if gate.enabled and not gate.directives:
            problems.add(
                ("deploy", "web", "gate", "directives"),
                "the gate is enabled but has no directives, so nothing sets REMOTE_USER and "
                "every outside request is refused: add directives (e.g. ['AuthType "
                "shibboleth', 'ShibRequestSetting requireSession 1']) or set enabled: false",
            )
        if not self.profiles and not self.custom.enabled:
            problems.add(
                ("profiles",),
                "no way to start a server: define profiles or enable custom resources",
            )
        for path, check in (
            ((), lambda: self.deploy.check_site(self)),
            ((), lambda: check_unique_courses(self.courses)),
            ((), lambda: check_course_profiles(self)),
            ((), lambda: check_course_sources(self)),
        ):
            try:
                check()
            except ValueError as err:
                problems.absorb(path, err)
        problems.raise_if_any()
        return self


def profile_problems(
    prof: Profile, offered: dict[str, Partition], floor: int = SERVER_MEMORY_FLOOR
) -> list[tuple[tuple, str]]:
    """What in ``prof`` does not fit the partitions the site offers (empty if it fits)."""
    out: list[tuple[tuple, str]] = []
    if prof.memory < floor:
        out.append(
            (
                ("memory",),
                f"{format_memory(prof.memory)} is too little for a Jupyter server to start "
                f"(at least {format_memory(floor)}, custom.min_memory)",
            )
        )
    for j, name in enumerate(prof.partitions):
        part = offered.get(name)
        if part is None:
            out.append(
                (("partitions", j), f"{name!r} is not in slurm.partitions {sorted(offered)}")
            )
            continue
        for key, value, cap, fmt in (
            ("time", prof.time, part.max_time, format_duration),
            ("memory", prof.memory, part.max_memory, format_memory),
            ("cpus", prof.cpus, part.max_cpus, str),
            ("gpus", prof.gpus, part.max_gpus, str),
        ):
            if cap is not None and value > cap:
                out.append(
                    ((key,), f"{fmt(value)} is more than partition {name!r} allows ({fmt(cap)})")
                )
    return out
