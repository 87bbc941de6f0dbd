"""The job as the user's: its typed description, and hpchub's fixed helper run as the user.

Mixed into SlurmSpawner; everything here runs as the user through ``sudo -n -u USER`` or is
pure (the job description that the job script is rendered from).
"""

from __future__ import annotations

import os

from ..core.accounts import home_of
from ..resources.request import ResourceRequest
from ..slurm.jobscript import JobRequest
from ..slurm.runner import CommandTimeout
from .errors import spawn_error
from .eventlog import WARNING, log_event


def sbatch_lines(req: ResourceRequest, site_args) -> tuple[str, ...]:
    """The optional #SBATCH options of a request (GPUs, account, QOS...), then the site's."""
    lines = []
    if req.gpus:
        lines.append(f"--gres=gpu:{req.gpu_type + ':' if req.gpu_type else ''}{req.gpus}")
    for name in ("account", "qos", "reservation", "constraint"):
        value = getattr(req, name)
        if value:
            lines.append(f"--{name}={value}")
    return (*lines, *req.extra_sbatch_args, *site_args)


def _pinned(link: str, real: str):
    """A function that rewrites paths below ``link`` (the `current` link) to below ``real``."""

    def pin(text: str) -> str:
        if text == link:
            return real
        return text.replace(link + "/", real + "/")

    return pin


class JobMixin:
    """Building the job and reading its logs, as the user."""

    def _home(self) -> str:
        home = home_of(self.user.name)
        if home:
            return home
        raise spawn_error(
            f"User {self.user.name} has no account on this cluster (no passwd entry).",
            reason="no-such-user",
        )

    def log_folder(self, home: str) -> str:
        """The log folder with '~' expanded to ``home``."""
        base = self.log_dir.replace("~", home, 1) if self.log_dir.startswith("~") else self.log_dir
        return base.rstrip("/") or "/"

    def build_job(self, req: ResourceRequest) -> JobRequest:
        """The typed job description for this spawner and request."""
        home = self._home()
        lo, hi = self.port_range
        # The release `current` names now: a later upgrade or rollback switches the link, and
        # this job keeps running (and starting kernels and tools) from the files it started with.
        link = self.prefix_bin.removesuffix("/bin")
        pin = _pinned(link, os.path.realpath(link))
        return JobRequest(
            user=self.user.name,
            server_name=self.name or "",
            partitions=req.partitions,
            memory_mib=req.memory_mib,
            cpus=req.cpus,
            time_seconds=req.time_seconds,
            log_dir=self.log_folder(home),
            workdir=home,
            prefix_bin=pin(self.prefix_bin),
            port_low=lo,
            port_high=hi,
            extra_sbatch_lines=sbatch_lines(req, self.site.slurm.extra_sbatch_args),
            environment=tuple(sorted((k, pin(v)) for k, v in self.job_environment.items())),
            server_args=(*self.get_args(), *self.site.files.server_args(home)),
            hub_name=self.hub_name,
            server_cmd=tuple(pin(a) for a in self.cmd),
        )

    async def _as_user(self, *args: str) -> str | None:
        """Run hpchub's fixed helper as the user (through sudo); its stdout, or None on failure."""
        helper = self.prefix_bin + "/hpchub-user"
        argv = [str(self.site.slurm.sudo), "-n", "-u", self.user.name, helper, *args]
        try:
            res = await self.runner(
                argv, timeout=30, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
            )
        except CommandTimeout:
            log_event(self, WARNING, "hpchub-user timed out", command=args[0])
            return None
        if not res.ok:
            log_event(self, WARNING, "hpchub-user failed", command=args[0], error=res.message())
            return None
        return res.stdout

    async def _prepare_log_dir(self) -> None:
        """Create the user's log folder (mode 700) and drop old logs, as the user."""
        await self._as_user(
            "prepare-logs",
            "--dir",
            self.log_dir,
            "--max-age-days",
            str(self.site.singleuser.log_max_age_days),
        )

    async def log_tail(self, lines: int = 20) -> str:
        """The last lines of this job's log, read as the user ('' if unavailable)."""
        if not self.job_id:
            return ""
        out = await self._as_user(
            "log-tail", "--dir", self.log_dir, "--job", self.job_id, "--lines", str(lines)
        )
        return (out or "").strip()
