"""The site file's typed models: the one source of truth for defaults, validation and docs.

Every model forbids unknown keys, so a typo in the site file is an error that names the key
instead of a setting that silently does nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .base import HTTP_URL_PATTERN, HttpUrl, Strict, check_sbatch_option
from .courses import Course, check_course_profiles, check_course_sources, check_unique_courses
from .culling import CullingSettings
from .deploy import DeploySettings
from .kernels import ExtensionSettings, KernelSettings
from .names import SlurmName, UnixName
from .profiles import CustomResources, Profile, ServerSettings, default_profiles
from .units import DurationSeconds, MemoryMiB


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
    hub_connect_url: str | None = Field(
        None,
        pattern=HTTP_URL_PATTERN,
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

    @model_validator(mode="after")
    def _someone_may_log_in(self) -> HubSettings:
        if self.authenticator == "pam" and not (self.allowed_users or self.allowed_groups):
            raise ValueError(
                "nobody could log in: set hub.allowed_users or hub.allowed_groups "
                "(for example allowed_groups: [jupyter])"
            )
        return self


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
    submit_timeout: int = Field(
        60, ge=5, le=600, description="Seconds to wait for sbatch before giving up."
    )
    poll_interval: int = Field(
        30, ge=1, le=600, description="Seconds between the monitor's batched squeue queries."
    )
    extra_sbatch_args: list[str] = Field(
        default_factory=list,
        description="Site-wide sbatch options added to every job, e.g. ['--account=jupyter'].",
    )

    @model_validator(mode="after")
    def _default_is_listed(self) -> SlurmSettings:
        names = [p.name for p in self.partitions]
        if len(set(names)) != len(names):
            raise ValueError(f"partition names must be unique, got {names}")
        if self.default_partition not in names:
            raise ValueError(
                f"default_partition {self.default_partition!r} is not among the partitions {names}"
            )
        for arg in self.extra_sbatch_args:
            check_sbatch_option(arg)
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
        Path("/opt/hpchub/env"),
        description="Python environment with jupyterlab and hpchub; root-owned, world-readable.",
    )
    default_url: str = Field("/lab", pattern=r"^/[A-Za-z0-9_/.-]*$")
    port_range: tuple[int, int] = Field(
        (40000, 49999),
        description="Ports the server may listen on, on the compute node (firewalls).",
    )
    log_dir: str = Field(
        "~/.hpchub/logs",
        description="Where job logs go; '~' is the user's home. Created mode 700 by the user.",
        pattern=r"^(~|/)[A-Za-z0-9_./-]*$",
    )
    log_max_age_days: int = Field(7, ge=1, le=3650, description="Job logs older than this go.")
    start_timeout: int = Field(
        300, ge=30, le=7200, description="Seconds a running job may take to report its port."
    )
    pending_timeout: int = Field(
        1800, ge=30, le=86400, description="Seconds a job may wait in the queue before giving up."
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
        lo, hi = self.port_range
        if not (1024 <= lo <= hi <= 65535):
            raise ValueError(f"port_range must satisfy 1024 <= low <= high <= 65535, got {lo}-{hi}")
        import re

        for key, value in self.environment.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"environment name {key!r} is not a valid variable name")
            if "\n" in value or "\0" in value:
                raise ValueError(f"environment value of {key} must be a single line")
        return self


class SiteConfig(Strict):
    """The whole site file (/etc/hpchub/hpchub.yaml)."""

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
    kernels: KernelSettings = Field(
        default_factory=KernelSettings, description="Kernels made from the site's Lmod modules."
    )
    extensions: ExtensionSettings = Field(
        default_factory=ExtensionSettings, description="JupyterLab extensions for everyone."
    )
    culling: CullingSettings = Field(
        default_factory=CullingSettings, description="Stopping idle servers, per their own timeout."
    )
    courses: list[Course] = Field(
        default_factory=list,
        description="Courses and workshops: materials staged into members' folders at spawn.",
    )
    deploy: DeploySettings = Field(
        default_factory=DeploySettings,
        description="System integration that `hpchub install` puts in place (root).",
    )

    @model_validator(mode="after")
    def _choices_fit_partitions(self) -> SiteConfig:
        offered = {p.name: p for p in self.slurm.partitions}
        keys = [p.key for p in self.profiles]
        if len(set(keys)) != len(keys):
            raise ValueError(f"profile keys must be unique, got {keys}")
        for i, prof in enumerate(self.profiles):
            where = f"profiles[{i}] ({prof.key})"
            for name in prof.partitions:
                if name not in offered:
                    raise ValueError(
                        f"{where}: partition {name!r} is not in slurm.partitions {sorted(offered)}"
                    )
                part = offered[name]
                if part.max_time is not None and prof.time > part.max_time:
                    raise ValueError(f"{where}: time is longer than max_time of partition {name!r}")
                if part.max_memory is not None and prof.memory > part.max_memory:
                    raise ValueError(
                        f"{where}: memory is more than max_memory of partition {name!r}"
                    )
                if part.max_cpus is not None and prof.cpus > part.max_cpus:
                    raise ValueError(f"{where}: cpus is more than max_cpus of partition {name!r}")
        for name in self.custom.partitions:
            if name not in offered:
                raise ValueError(
                    f"custom.partitions: {name!r} is not in slurm.partitions {sorted(offered)}"
                )
        if not self.profiles and not self.custom.enabled:
            raise ValueError("no way to start a server: define profiles or enable custom resources")
        self.deploy.check_site(self)
        return self

    @model_validator(mode="after")
    def _courses_are_consistent(self) -> SiteConfig:
        check_unique_courses(self.courses)
        check_course_profiles(self)
        check_course_sources(self)
        return self
