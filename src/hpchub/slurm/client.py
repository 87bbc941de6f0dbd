"""The Slurm gateway: every Slurm command the product runs is built, run, timed out and parsed here.

Submit and cancel run as the user (through sudo); queries run without sudo. The runner is
injected, so tests put a fake Slurm behind the same code that talks to the real one. A command
that outlives its timeout raises CommandTimeout, a TimeoutError.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config.models import SlurmSettings
from ..core.names import check_name, is_unix_name
from .parsers import (
    HUB_JOBS_FORMAT,
    PENDING_FORMAT,
    SACCT_FORMAT,
    SINFO_NODE_FORMAT,
    SINFO_STATE_FIELDS,
    SQUEUE_FORMAT,
    STATE_ONLY_FORMAT,
    HubJob,
    JobHistory,
    JobInfo,
    NodeInfo,
    PartitionState,
    QueuePlace,
    Reservation,
    UserAccounts,
    count_pending,
    parse_hub_jobs,
    parse_job_states,
    parse_private_data,
    parse_queue_places,
    parse_reservations,
    parse_sacct,
    parse_sbatch_parsable,
    parse_scontrol_record,
    parse_sinfo_nodes,
    parse_sinfo_state,
    parse_squeue,
    parse_sshare,
    parse_user_accounts,
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


# sacct's and sacctmgr's words on a cluster without slurmdbd.
_NO_ACCOUNTING = ("accounting storage is disabled", "not running a supported accounting_storage")


@dataclass(frozen=True)
class Visibility:
    """Whether the hub's user sees every job, and why (PrivateData and its Slurm admin level)."""

    sees_all: bool
    private_data: frozenset[str]
    admin_level: str | None  # None: not known (no accounting, or sacctmgr did not answer)

    def explain(self, user: str) -> str:
        """What is wrong and how to fix it, for the log, the doctor and the user."""
        if self.sees_all:
            return f"{user} sees every job"
        level = self.admin_level or "unknown (not in Slurm's accounting)"
        return (
            "the hub cannot see other users' jobs: slurm.conf sets "
            f"PrivateData={','.join(sorted(self.private_data))} and the hub's user {user} has "
            f"Slurm admin level {level}. Make it a Slurm operator (run the rendered "
            "slurm/hub-operator.sh as a Slurm admin), or take 'jobs' out of PrivateData"
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


# What a Slurm older than 24.05 says to `squeue --only-job-state`.
_NO_STATE_ONLY = ("unrecognized option", "unknown option", "invalid option")

# Seconds a query may take before it is killed (the spawn form's reading is shorter).
QUERY_TIMEOUT = 30
FORM_TIMEOUT = 15


class SlurmClient:
    """Builds argument lists for the Slurm commands, runs them and parses what they print."""

    def __init__(self, settings: SlurmSettings, runner: Runner = run):
        self.settings = settings
        self.runner = runner
        self.state_only: bool | None = None
        """Whether squeue takes --only-job-state (Slurm 24.05+); None until first tried."""
        self.accounting: bool | None = None  # learnt from the first sacct

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

    def sudo_commands(self) -> list[str]:
        """What submit and cancel run through sudo, as the hub user's sudo rule names them."""
        return [f"{self._bin('sbatch')} --parsable", f"{self._bin('scancel')} [0-9]*"]

    def srun_argv(
        self,
        partition: str,
        minutes: int,
        job_name: str,
        node: str | None = None,
        immediate: int | None = None,
    ) -> list[str]:
        """A one-task srun (one CPU, 1 GiB) in the caller's environment; its command follows.

        ``node`` picks the node; ``immediate`` gives up after that many seconds without one.
        """
        where = [f"--nodelist={check_name('slurm', node, 'node name')}"] if node else []
        if immediate is not None:
            where.append(f"--immediate={int(immediate)}")
        return [
            self._bin("srun"),
            f"--partition={check_name('slurm', partition, 'partition name')}",
            *where,
            "--nodes=1",
            "--ntasks=1",
            "--cpus-per-task=1",
            "--mem=1024M",
            f"--time={int(minutes)}",
            f"--job-name={check_name('slurm', job_name, 'job name')}",
            "--export=ALL",
            "--quiet",
            *self.settings.extra_sbatch_args,
            "--",
        ]

    async def run_on_node(
        self, node: str, partition: str, command: Sequence[str], timeout: float = 60
    ) -> Result:
        """Run ``command`` as the caller in a one-task job on ``node`` (a short srun that waits
        at most half of ``timeout`` for the node); the finished command, failed or not."""
        argv = self.srun_argv(
            partition, 1 + int(timeout) // 60, "hpchub-node-check", node, max(1, int(timeout) // 2)
        )
        return await self.runner([*argv, *command], timeout=timeout)

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
        result = await self.runner(self.cancel_argv(user, job_id), timeout=QUERY_TIMEOUT)
        if not result.ok:
            err = failure(result, ("Invalid job id", "already completing or completed"))
            if err is not None:
                raise err

    def extend_argv(
        self, helper: Path, run_as: str, user: str, job_id: str, minutes: int
    ) -> list[str]:
        """sudo -n -u SLURMUSER HELPER USER JOBID MINUTES: the generated helper that raises a
        job's time limit to ``minutes`` (it checks owner, hub, partition and caps itself)."""
        if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1:
            raise ValueError(f"not a time limit in minutes: {minutes!r}")
        return [
            *self._sudo(run_as),
            str(helper),
            _check_user(user),
            _check_job_id(job_id),
            str(minutes),
        ]

    async def extend(self, helper: Path, run_as: str, user: str, job_id: str, minutes: int) -> None:
        """Raise the time limit of ``user``'s job to ``minutes`` through the helper."""
        argv = self.extend_argv(helper, run_as, user, job_id, minutes)
        result = await self.runner(argv, timeout=QUERY_TIMEOUT)
        if not result.ok:
            raise failure(result)

    def squeue_argv(self, job_ids: Sequence[str], state_only: bool = False) -> list[str]:
        """One squeue for many jobs, with every state, no sudo. ``state_only``: job ids and
        states only (--only-job-state, Slurm 24.05+), a lighter request to slurmctld."""
        ids = ",".join(_check_job_id(j) for j in job_ids)
        return [
            self._bin("squeue"),
            *(["--only-job-state"] if state_only else []),
            "--noheader",
            "--states=all",
            f"--jobs={ids}",
            f"--format={STATE_ONLY_FORMAT if state_only else SQUEUE_FORMAT}",
        ]

    async def query(
        self, job_ids: Sequence[str], running: Mapping[str, JobInfo] | None = None
    ) -> dict[str, JobInfo]:
        """The state of every job in ``job_ids`` that Slurm still knows (absent ones have ended).

        ``running``: jobs the caller already holds full details of, last seen RUNNING. Where
        squeue offers --only-job-state (Slurm 24.05+), those are polled through it, and only
        the others (and any whose state changed) get the full query. Older Slurm: one full
        query, as ever; which one this is, is learnt from the first try.
        """
        if not job_ids:
            return {}
        found: dict[str, JobInfo] = {}
        rest = list(job_ids)
        settled = [j for j in job_ids if running and j in running]
        if settled and self.state_only is not False:
            states = await self._states(settled)
            if states is not None:
                for j in settled:
                    if states.get(j) == "RUNNING":
                        found[j] = dataclasses.replace(running[j], state="RUNNING")  # type: ignore[index]
                rest = [j for j in job_ids if j not in found]
        if rest:
            found.update(await self._full_query(rest))
        return found

    async def _states(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        """States from --only-job-state; None if this squeue does not have it."""
        result = await self.runner(
            self.squeue_argv(job_ids, state_only=True), timeout=QUERY_TIMEOUT
        )
        if not result.ok:
            if any(w in result.message() for w in _NO_STATE_ONLY):
                self.state_only = False
                return None
            err = failure(result, ("Invalid job id",))
            if err is not None:
                raise err
            return {}
        self.state_only = True
        return parse_job_states(result.stdout)

    async def _full_query(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        result = await self.runner(self.squeue_argv(job_ids), timeout=QUERY_TIMEOUT)
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
        result = await self.runner(argv, timeout=QUERY_TIMEOUT)
        if not result.ok:
            raise failure(result)
        return parse_queue_places(result.stdout)

    async def nodes(self) -> dict[str, NodeInfo]:
        """Every node with its address and free resources (one sinfo call)."""
        argv = [self._bin("sinfo"), "-N", "--noheader", f"--format={SINFO_NODE_FORMAT}"]
        result = await self.runner(argv, timeout=QUERY_TIMEOUT)
        if not result.ok:
            raise failure(result)
        return parse_sinfo_nodes(result.stdout)

    async def job_details(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o ID` as a dict (exit code, reasons of failure)."""
        argv = [self._bin("scontrol"), "show", "job", "-o", _check_job_id(job_id)]
        try:
            result = await self.runner(argv, timeout=QUERY_TIMEOUT)
        except TimeoutError:  # details only add to a message; a slow Slurm must not lose it
            return {}
        if not result.ok:
            return {}
        return parse_scontrol_record(result.stdout)

    async def partitions(self) -> dict[str, PartitionState]:
        """Free resources and pending jobs per partition (one sinfo, one squeue; for the form)."""
        argv = [self._bin("sinfo"), "-N", "-h", "-O", SINFO_STATE_FIELDS]
        info = await self.runner(argv, timeout=FORM_TIMEOUT)
        if not info.ok:
            raise failure(info)
        parts = parse_sinfo_state(info.stdout)
        queue = await self.runner(
            [self._bin("squeue"), "-h", "-t", "PENDING", "-o", "%P"], timeout=FORM_TIMEOUT
        )
        if queue.ok:  # the counts are a nicety; the free resources stand without them
            for name, n in count_pending(queue.stdout).items():
                if name in parts:
                    parts[name].pending = n
        return parts

    async def reservations(self) -> list[Reservation]:
        """Every reservation (one `scontrol show reservation -o`, for the form)."""
        argv = [self._bin("scontrol"), "show", "reservation", "-o"]
        result = await self.runner(argv, timeout=FORM_TIMEOUT)
        if not result.ok:
            raise failure(result)
        return parse_reservations(result.stdout)

    def _show_user_argv(self, user: str, *what: str) -> list[str]:
        """sacctmgr's record of one user: `sacctmgr -n -P show user NAME WHAT...`."""
        return [
            self._bin("sacctmgr"),
            "--noheader",
            "--parsable2",
            "show",
            "user",
            _check_user(user),
            *what,
        ]

    def _accounting_off(self, result: Result) -> bool:
        """Whether a failed accounting command says the cluster has none (then remembered:
        a cluster does not grow slurmdbd while the hub runs)."""
        if any(w in result.message() for w in _NO_ACCOUNTING):
            self.accounting = False
        return self.accounting is False

    async def history(self, job_id: str) -> JobHistory | None:
        """What accounting recorded of a job (None without accounting, or with no record yet)."""
        return (await self.histories([job_id])).get(str(job_id))

    async def histories(self, job_ids: Sequence[str]) -> dict[str, JobHistory]:
        """Accounting's records of many jobs in one sacct (only those it has; none without
        accounting, or when sacct is slow: a record only adds to what squeue said)."""
        if self.accounting is False or not job_ids:
            return {}
        ids = [_check_job_id(j) for j in job_ids]
        argv = [
            self._bin("sacct"),
            "--noheader",
            "--parsable2",
            f"--jobs={','.join(ids)}",
            f"--format={SACCT_FORMAT}",
        ]
        try:
            result = await self.runner(argv, timeout=QUERY_TIMEOUT)
        except TimeoutError:
            return {}
        if not result.ok:
            self._accounting_off(result)
            return {}
        self.accounting = True
        found = {j: parse_sacct(result.stdout, j) for j in ids}
        return {j: h for j, h in found.items() if h is not None}

    async def user_accounts(self, user: str) -> UserAccounts | None:
        """The accounts ``user`` may charge, the default one, and each one's usage and fair
        share where Slurm reports them (one sacctmgr, one sshare). None without accounting."""
        if self.accounting is False:
            return None
        name = _check_user(user)
        argv = self._show_user_argv(name, "withassoc", "format=defaultaccount,account")
        result = await self.runner(argv, timeout=FORM_TIMEOUT)
        if not result.ok:
            if self._accounting_off(result):
                return None
            raise failure(result)
        self.accounting = True
        accounts, default = parse_user_accounts(result.stdout)
        share = [
            self._bin("sshare"),
            "-n",
            "-P",
            "-u",
            name,
            "-o",
            "Account,User,RawUsage,FairShare",
        ]
        shares = await self.runner(share, timeout=FORM_TIMEOUT)
        # Usage is a nicety: the accounts stand without it.
        found = parse_sshare(shares.stdout, name) if shares.ok else {}
        return UserAccounts(accounts, default, found)

    async def visibility(self, user: str) -> Visibility:
        """Whether ``user`` (the hub's, running this) sees every job under slurm.conf's PrivateData."""
        conf = await self.runner([self._bin("scontrol"), "show", "config"], timeout=QUERY_TIMEOUT)
        if not conf.ok:
            raise failure(conf)
        private = parse_private_data(conf.stdout)
        if "jobs" not in private:
            return Visibility(True, private, None)
        result = await self.runner(
            self._show_user_argv(user, "format=adminlevel"), timeout=QUERY_TIMEOUT
        )
        level = (
            result.stdout.strip().splitlines()[0].strip()
            if result.ok and result.stdout.strip()
            else None
        )
        return Visibility(level in ("Operator", "Administrator"), private, level)

    def hub_jobs_argv(self, users: Sequence[str]) -> list[str]:
        """One squeue (no sudo) for the active jobs of ``users``."""
        names = ",".join(_check_user(u) for u in users)
        return [
            self._bin("squeue"),
            "--noheader",
            f"--users={names}",
            f"--format={HUB_JOBS_FORMAT}",
        ]

    async def hub_jobs(self, users: Sequence[str], hub_name: str) -> list[HubJob]:
        """The active jobs of ``users`` that hub ``hub_name`` started (found by its comment)."""
        if not users:
            return []
        result = await self.runner(self.hub_jobs_argv(users), timeout=QUERY_TIMEOUT)
        if not result.ok:
            raise failure(result)
        return parse_hub_jobs(result.stdout, hub_name)
