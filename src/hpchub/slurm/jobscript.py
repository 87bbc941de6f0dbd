"""The job script: a typed request in, the text of a batch script out (a pure function)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import __version__
from ..config.units import format_slurm_time
from ..core.names import check_name, is_name
from ..core.templates import render
from .parsers import hub_comment

_SAFE_SBATCH_LINE = re.compile(r"^--[a-z][a-z-]*(=[A-Za-z0-9_.,:=@%/+-]+)?$")
# Node-feature expressions use &, |, brackets and *; they stay on an #SBATCH comment line.
_SAFE_CONSTRAINT = re.compile(r"^--constraint=[A-Za-z0-9_&|,()\[\]*-]+$")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./-]*$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class JobRequest:
    """Everything a job script needs, as validated values."""

    user: str
    server_name: str
    partitions: tuple[str, ...]
    memory_mib: int
    cpus: int
    time_seconds: int
    log_dir: str
    workdir: str
    prefix_bin: str
    port_low: int
    port_high: int
    extra_sbatch_lines: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    server_args: tuple[str, ...] = field(default_factory=tuple)
    hub_name: str = "hpchub"
    # The server command (Spawner.cmd); empty means the prefix's hpchub-jupyterhub-singleuser,
    # which serves on the socket the launcher holds.
    server_cmd: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name("unix", self.user, "user name")
        check_name("slurm", self.hub_name, "hub name")
        if not _SAFE_NAME.fullmatch(self.server_name):
            raise ValueError(f"bad server name {self.server_name!r}")
        if not self.partitions or not all(is_name("slurm", p) for p in self.partitions):
            raise ValueError(f"bad partitions {self.partitions!r}")
        for n in (self.memory_mib, self.cpus, self.time_seconds, self.port_low, self.port_high):
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"bad number {n!r}")
        for p in (self.log_dir, self.workdir, self.prefix_bin):
            if not _SAFE_PATH.fullmatch(p):
                raise ValueError(f"unsafe path {p!r}")
        for line in self.extra_sbatch_lines:
            if not (_SAFE_SBATCH_LINE.fullmatch(line) or _SAFE_CONSTRAINT.fullmatch(line)):
                raise ValueError(f"unsafe sbatch option {line!r}")
        for name, value in self.environment:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or "\n" in value or "\0" in value:
                raise ValueError(f"bad environment entry {name!r}")
        for arg in self.server_args:
            if "\n" in arg or "\0" in arg:
                raise ValueError("server arguments must be single-line")
        if self.server_cmd and not (
            _SAFE_PATH.fullmatch(self.server_cmd[0]) or _SAFE_NAME.fullmatch(self.server_cmd[0])
        ):
            raise ValueError(
                f"the server command must be an absolute path or a plain name found on the "
                f"job's PATH, got {self.server_cmd[0]!r}"
            )
        for arg in self.server_cmd:
            if "\n" in arg or "\0" in arg:
                raise ValueError("server command arguments must be single-line")

    @property
    def log_path(self) -> str:
        """Slurm's --output pattern: one file per job in the user's log folder."""
        return self.log_dir.rstrip("/") + "/jupyter-%j.log"

    @property
    def job_name(self) -> str:
        suffix = f"-{self.server_name}" if self.server_name else ""
        return f"jupyter-{self.user}{suffix}"[:64]

    @property
    def command(self) -> tuple[str, ...]:
        """The single-user server's command line, before its arguments."""
        return self.server_cmd or (self.prefix_bin + "/hpchub-jupyterhub-singleuser",)

    @property
    def comment(self) -> str:
        """The Slurm comment that marks this hub's jobs (how the hub finds them again)."""
        return hub_comment(self.hub_name)

    @property
    def time_slurm(self) -> str:
        return format_slurm_time(self.time_seconds)


def render_job_script(job: JobRequest) -> str:
    """The batch script for ``job``."""
    return render("slurm/jupyter-job.sh.j2", job=job, version=__version__)
