"""The hub's view of Slurm: submit and cancel as the user (through sudo), query without sudo."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from ..config.models import SlurmSettings
from ..core.names import is_unix_name
from .livestate import SINFO_FIELDS, PartitionState, parse_sinfo_state
from .parsers import (
    PENDING_FORMAT,
    SINFO_NODE_FORMAT,
    SQUEUE_FORMAT,
    JobInfo,
    NodeInfo,
    QueuePlace,
    parse_queue_places,
    parse_sbatch_parsable,
    parse_sinfo_nodes,
    parse_squeue,
)
from .runner import Result, run

Runner = Callable[..., Awaitable[Result]]

_JOB_ID_RE = re.compile(r"^\d+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# squeue's words when the controller cannot be reached: the jobs' fate is unknown, not ended.
_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Zero Bytes were transmitted",
    "Communication connection failure",
)


class SlurmError(Exception):
    """A Slurm command failed; the message is Slurm's own."""


class SlurmUnavailable(SlurmError):
    """The controller did not answer; nothing is known about the jobs."""


def failure(result: Result, harmless: tuple[str, ...] = ()) -> SlurmError | None:
    """The error a failed command stands for (None if it failed in a way that is fine)."""
    msg = result.message()
    if any(h in msg for h in harmless):
        return None
    if any(s in msg for s in _UNREACHABLE):
        return SlurmUnavailable(msg)
    return SlurmError(msg)


def _check_user(user: str) -> str:
    if not is_unix_name(user):
        raise ValueError(f"not a valid user name: {user!r}")
    return user


def _check_job_id(job_id: str) -> str:
    if not _JOB_ID_RE.match(str(job_id)):
        raise ValueError(f"not a Slurm job id: {job_id!r}")
    return str(job_id)


class SlurmClient:
    """Builds argument lists for the Slurm commands and runs them."""

    def __init__(self, settings: SlurmSettings, runner: Runner = run):
        self.settings = settings
        self.runner = runner

    def _bin(self, name: str) -> str:
        return str(Path(self.settings.bin_dir) / name)

    def _sudo(self, user: str, env_names: Sequence[str] = ()) -> list[str]:
        argv = [str(self.settings.sudo), "-n", "-u", _check_user(user)]
        names = sorted(set(env_names))
        for n in names:
            if not _ENV_NAME_RE.match(n):
                raise ValueError(f"not an environment variable name: {n!r}")
        if names:
            # Values travel in the environment, never on a command line others can read.
            argv.append("--preserve-env=" + ",".join(names))
        return argv

    def submit_argv(self, user: str, env_names: Sequence[str] = ()) -> list[str]:
        """sudo -n -u USER [--preserve-env=...] sbatch --parsable (the script comes on stdin)."""
        return [*self._sudo(user, env_names), self._bin("sbatch"), "--parsable"]

    async def submit(self, user: str, script: str, env: Mapping[str, str]) -> str:
        """Submit ``script`` as ``user``; return the job id or raise SlurmError with sbatch's words."""
        argv = self.submit_argv(user, list(env))
        full_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env}
        result = await self.runner(
            argv, stdin=script, env=full_env, timeout=self.settings.submit_timeout
        )
        if not result.ok:
            raise failure(result)
        return parse_sbatch_parsable(result.stdout)

    def cancel_argv(self, user: str, job_id: str) -> list[str]:
        """sudo -n -u USER scancel JOBID."""
        return [*self._sudo(user), self._bin("scancel"), _check_job_id(job_id)]

    async def cancel(self, user: str, job_id: str) -> None:
        """Cancel the job as its owner. A job that is already gone is not an error."""
        result = await self.runner(self.cancel_argv(user, job_id), timeout=30)
        if not result.ok:
            err = failure(result, ("Invalid job id", "already completing or completed"))
            if err is not None:
                raise err

    def squeue_argv(self, job_ids: Sequence[str]) -> list[str]:
        """One squeue for many jobs, with every state, no sudo."""
        ids = ",".join(_check_job_id(j) for j in job_ids)
        return [
            self._bin("squeue"),
            "--noheader",
            "--states=all",
            f"--jobs={ids}",
            f"--format={SQUEUE_FORMAT}",
        ]

    async def query(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """The state of every job in ``job_ids`` that Slurm still knows (absent ones have ended)."""
        if not job_ids:
            return {}
        result = await self.runner(self.squeue_argv(job_ids), timeout=30)
        if not result.ok:
            # "Invalid job id": every listed job has been purged, so all of them have ended.
            err = failure(result, ("Invalid job id",))
            if err is not None:
                raise err
            return {}
        return parse_squeue(result.stdout)

    async def queue_places(self) -> dict[str, QueuePlace]:
        """Position and expected start of every pending job (one `squeue --start`, no sudo)."""
        argv = [self._bin("squeue"), "--start", "-h", "-t", "PENDING", f"--format={PENDING_FORMAT}"]
        result = await self.runner(argv, timeout=30)
        if not result.ok:
            raise failure(result)
        return parse_queue_places(result.stdout)

    async def nodes(self) -> dict[str, NodeInfo]:
        """Every node with its address and free resources (one sinfo call)."""
        argv = [self._bin("sinfo"), "-N", "--noheader", f"--format={SINFO_NODE_FORMAT}"]
        result = await self.runner(argv, timeout=30)
        if not result.ok:
            raise failure(result)
        return parse_sinfo_nodes(result.stdout)

    async def partitions(self) -> dict[str, PartitionState]:
        """Every partition with its time limit, usable nodes and memory (one sinfo call)."""
        argv = [self._bin("sinfo"), "-N", "-h", "-O", SINFO_FIELDS]
        result = await self.runner(argv, timeout=30)
        if not result.ok:
            raise failure(result)
        return parse_sinfo_state(result.stdout)

    async def job_details(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o ID` as a dict (exit code, reasons of failure)."""
        from .parsers import parse_scontrol_record

        argv = [self._bin("scontrol"), "show", "job", "-o", _check_job_id(job_id)]
        result = await self.runner(argv, timeout=30)
        if not result.ok:
            return {}
        return parse_scontrol_record(result.stdout)
