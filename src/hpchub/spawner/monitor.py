"""One monitor for every job of the hub: one squeue for all tracked jobs per interval.

Spawners never run squeue themselves. They read the monitor's latest view, and may ask for a
fresh one; concurrent requests are coalesced into a single query. Right after a submit the
monitor asks at once and then backs off to the normal interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..core import clock
from ..core.accounts import current_user
from ..core.files import atomic_write
from ..core.logline import event_line
from ..metrics import registry as metrics
from ..slurm.client import SlurmClient, SlurmError, SlurmUnavailable, Visibility
from ..slurm.parsers import JobHistory, JobInfo, QueuePlace

log = logging.getLogger("hpchub.monitor")

ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "RESIZING",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
    }
)

UNKNOWN = "UNKNOWN"  # Slurm did not answer: the job's fate is not known.
NOT_QUERIED = "NOT_QUERIED"  # no query has covered this job yet
GONE = "GONE"  # Slurm no longer knows the job: it ended some time ago
DETAILS_EVERY = 10
"""Every this many rounds the monitor reads full details of running jobs too."""
HIDDEN = "HIDDEN"  # PrivateData hides the job from the hub: its fate is not known

# Seconds between two looks at what the hub may see (slurm.conf's PrivateData, its admin level);
# while it sees too little, it looks more often, so that the admin's fix takes effect soon.
VISIBILITY_RECHECK = 600.0
VISIBILITY_RECHECK_BLIND = 60.0
# A job never seen in squeue is not called gone this soon after its submit (a hub's view of
# its own operator level can lag a change in accounting; Slurm keeps ended jobs MinJobAge >= 2 s).
UNSEEN_GRACE = 30.0


@dataclass(frozen=True)
class JobStatus:
    """What the monitor last learnt of one job."""

    job_id: str
    state: str
    info: JobInfo | None = None
    checked_at: float = 0.0
    error: str | None = None

    @property
    def active(self) -> bool:
        """Still queued or running, or not known to have ended."""
        return self.state in ACTIVE_STATES or self.state in (UNKNOWN, NOT_QUERIED, HIDDEN)

    @property
    def ended(self) -> bool:
        return not self.active


@dataclass
class _Pending:
    """A cancel that Slurm could not take yet; retried every interval."""

    user: str
    job_id: str


class JobMonitor:
    """Tracks jobs by id; see the module docstring."""

    _shared: dict[tuple, JobMonitor] = {}

    def __init__(
        self,
        client: SlurmClient,
        interval: float = 30.0,
        fast_start: float = 1.0,
        cancels_file: Path | None = None,
    ):
        self.client = client
        self.cancels_file = cancels_file
        self.interval = interval
        self.fast_start = fast_start
        self._status: dict[str, JobStatus] = {}
        self._next_due: dict[str, float] = {}
        self._watched_at: dict[str, float] = {}
        self._seen: set[str] = set()  # jobs squeue has listed at least once
        self._step: dict[str, float] = {}
        self._cancels: dict[str, _Pending] = self._load_cancels()
        self._places: dict[str, QueuePlace] = {}
        self._refresh_task: asyncio.Task | None = None
        self._loop_task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self.queries = 0
        self.reachable = True
        self.last_error: str | None = None
        self.visibility: Visibility | None = None
        self._visibility_at = float("-inf")
        metrics.follow_monitor(self)

    @classmethod
    def shared(
        cls, client: SlurmClient, interval: float, cancels_file: Path | None = None
    ) -> JobMonitor:
        """The hub-wide monitor for these Slurm settings (created on first use)."""
        key = (client.settings.model_dump_json(), client.runner, interval)
        mon = cls._shared.get(key)
        if mon is None:
            mon = cls._shared[key] = cls(client, interval, cancels_file=cancels_file)
        return mon

    def _load_cancels(self) -> dict[str, _Pending]:
        if self.cancels_file is None or not self.cancels_file.exists():
            return {}
        try:
            data = json.loads(self.cancels_file.read_text())
            return {j: _Pending(u, j) for j, u in data.items()}
        except (OSError, ValueError):
            log.exception("could not read %s", self.cancels_file)
            return {}

    def _save_cancels(self) -> None:
        """Pending cancels survive a hub restart: a job the user stopped must not be orphaned."""
        if self.cancels_file is None:
            return
        try:
            # The one atomic write: a unique temporary file, never through a planted link.
            text = json.dumps({j: p.user for j, p in self._cancels.items()})
            atomic_write(self.cancels_file, text, 0o600)
        except OSError:
            log.exception("could not save %s", self.cancels_file)

    @property
    def blind(self) -> bool:
        """The hub cannot see other users' jobs: a job missing from squeue may still run."""
        return self.visibility is not None and not self.visibility.sees_all

    async def _check_visibility(self, now: float) -> None:
        """Learn, every VISIBILITY_RECHECK seconds, whether the hub sees every job."""
        every = VISIBILITY_RECHECK_BLIND if self.blind else VISIBILITY_RECHECK
        if now - self._visibility_at < every:
            return
        self._visibility_at = now
        user = current_user()
        try:
            seen = await self.client.visibility(user)
        except Exception as err:  # noqa: BLE001 - a failed look keeps the last answer
            log.warning(event_line("could not learn what the hub may see", error=err))
            return
        if not seen.sees_all and not self.blind:
            log.error(event_line("jobs hidden from the hub", problem=seen.explain(user)))
        self.visibility = seen

    async def _records(self, missing: list[str]) -> dict[str, JobHistory]:
        """Accounting's records of the jobs squeue no longer lists (one sacct for all)."""
        if self.blind or not missing:
            return {}
        try:
            return await self.client.histories(missing)
        except Exception as err:  # noqa: BLE001 - the records only confirm what squeue said
            log.warning(event_line("sacct failed", jobs=",".join(missing), error=err))
            return {}

    def _hidden(self, job_id: str, record: JobHistory | None) -> str | None:
        """Why a job missing from squeue may still run (None: it has ended). The hub may be
        blind (PrivateData), or its view of its own admin level may be out of date: where
        accounting keeps the job's record, a record that says it still runs decides."""
        if self.blind:
            return self.visibility.explain(current_user())
        if record is None and job_id not in self._seen:
            if clock.now() - self._watched_at.get(job_id, 0.0) < UNSEEN_GRACE:
                return f"job {job_id} is not in squeue yet"
            return None
        if record is None or record.state not in ACTIVE_STATES:
            return None
        self._visibility_at = float("-inf")  # look again next round
        return (
            f"squeue does not show job {job_id}, but accounting says it is {record.state}: "
            "the hub may not see other users' jobs (PrivateData)"
        )

    def place(self, job_id: str) -> QueuePlace | None:
        """Queue position and expected start of a pending job, if known."""
        return self._places.get(str(job_id))

    # -- tracking -------------------------------------------------------------------
    def watch(self, job_id: str, fast: bool = False) -> None:
        """Track ``job_id``; ``fast`` asks at once and backs off (use right after a submit)."""
        job_id = str(job_id)
        self._status.setdefault(job_id, JobStatus(job_id, NOT_QUERIED))
        now = clock.now()
        self._watched_at.setdefault(job_id, now)
        if fast:
            self._next_due[job_id] = now
            self._step[job_id] = self.fast_start
        else:
            self._next_due.setdefault(job_id, now + self.interval)
            self._step.setdefault(job_id, self.interval)
        self._ensure_loop()
        self._wake.set()

    def unwatch(self, job_id: str) -> None:
        """Stop tracking ``job_id``."""
        job_id = str(job_id)
        self._next_due.pop(job_id, None)
        self._step.pop(job_id, None)
        self._status.pop(job_id, None)
        self._watched_at.pop(job_id, None)
        self._seen.discard(job_id)

    def status(self, job_id: str) -> JobStatus:
        """The latest view of ``job_id`` (NOT_QUERIED if none yet)."""
        return self._status.get(str(job_id), JobStatus(str(job_id), NOT_QUERIED))

    def tracked(self) -> list[str]:
        return sorted(self._next_due, key=int)

    async def current(self, job_id: str) -> JobStatus:
        """The status of ``job_id``, querying first if no query has covered it yet."""
        job_id = str(job_id)
        if job_id not in self._next_due:
            self.watch(job_id)
        if self.status(job_id).state == NOT_QUERIED:
            await self.refresh()
        return self.status(job_id)

    async def wait_for_change(self, timeout: float) -> None:
        """Sleep until the next query completes, or ``timeout`` seconds."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def cancel_later(self, user: str, job_id: str) -> None:
        """Remember a cancel that failed because Slurm was unreachable; retry it each round."""
        self._cancels[str(job_id)] = _Pending(user, str(job_id))
        self._save_cancels()
        self.watch(job_id)

    def pending_cancels(self) -> list[str]:
        return sorted(self._cancels)

    # -- querying -------------------------------------------------------------------
    async def refresh(self) -> None:
        """Query every tracked job now; concurrent callers share one query."""
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.ensure_future(self._query_all())
        await asyncio.shield(self._refresh_task)

    async def _query_all(self) -> None:
        if self._cancels:
            try:
                await self._retry_cancels()
            except Exception:  # a cancel's surprise must not stop the queries of every job
                log.exception("retrying pending cancels failed")
        ids = self.tracked()
        if not ids:
            return
        now = clock.now()
        await self._check_visibility(now)
        self.queries += 1
        try:
            found = await metrics.timed_query(self.client.query(ids, self._settled(ids)))
        except (TimeoutError, SlurmUnavailable, SlurmError, OSError) as err:
            self.reachable = False
            self.last_error = str(err)
            log.warning(event_line("squeue unanswered", jobs=",".join(ids), error=err))
            for j in ids:
                prev = self._status.get(j)
                if prev is None or prev.active:
                    self._status[j] = JobStatus(
                        j, UNKNOWN, prev.info if prev else None, now, str(err)
                    )
        except Exception as err:  # a parser surprise must not stop the monitor
            self.reachable = False
            self.last_error = f"unexpected squeue output: {err}"
            log.exception("squeue output could not be read")
        else:
            self.reachable = True
            self.last_error = None
            missing = [
                j
                for j in ids
                if j not in found and (j not in self._status or self._status[j].active)
            ]
            records = await self._records(missing)
            if not self.blind and any(j in self._seen and j not in records for j in missing):
                # A job seen running is gone from squeue, and accounting has no record of it
                # either: the hub may have lost its operator level since its last look
                # (PrivateData then hides both). Look again now, before calling it GONE.
                self._visibility_at = float("-inf")
                await self._check_visibility(now)
            for j in ids:
                info = found.get(j)
                if info is not None:
                    self._status[j] = JobStatus(j, info.state, info, now)
                    self._seen.add(j)
                elif j in missing:
                    # Absent means ended, unless PrivateData hides the job from the hub.
                    prev = self._status.get(j)
                    hidden = self._hidden(j, records.get(j))
                    self._status[j] = JobStatus(
                        j, HIDDEN if hidden else GONE, prev.info if prev else None, now, hidden
                    )
            await self._query_places(ids)
        for j in ids:
            if j not in self._next_due:
                continue
            step = self._step.get(j, self.interval)
            self._next_due[j] = now + step
            self._step[j] = min(step * 2, self.interval)
        async with self._changed:
            self._changed.notify_all()

    def _settled(self, ids: list[str]) -> dict[str, JobInfo]:
        """Running jobs whose details are known: a state-only poll covers them, except every
        DETAILS_EVERY-th round, which reads everything again (an admin may extend a limit)."""
        if self.queries % DETAILS_EVERY == 0:
            return {}
        settled = {}
        for j in ids:
            st = self._status.get(j)
            if st is not None and st.state == "RUNNING" and st.info is not None:
                settled[j] = st.info
        return settled

    async def _query_places(self, ids: list[str]) -> None:
        """Queue places, only while some tracked job waits (one more squeue, then none)."""
        if not any(self._status[j].state == "PENDING" for j in ids if j in self._status):
            self._places = {}
            return
        try:
            self._places = await self.client.queue_places()
        except (TimeoutError, SlurmError, OSError, ValueError) as err:
            # Places are a nicety: a slow `squeue --start` must never fail a round (or a start).
            log.warning(event_line("squeue --start failed", error=err))

    async def _retry_cancels(self) -> None:
        for job_id, p in list(self._cancels.items()):
            try:
                await self.client.cancel(p.user, job_id)
            except (SlurmUnavailable, TimeoutError) as err:
                # Slow or away: keep the cancel for the next round, and let this round go on.
                log.warning(
                    event_line("cancel waits for Slurm", user=p.user, job=job_id, error=err)
                )
                continue
            except SlurmError as err:
                log.error(event_line("cancel failed", user=p.user, job=job_id, error=err))
            self._cancels.pop(job_id, None)
            self._save_cancels()
            log.info(event_line("cancelled after Slurm came back", user=p.user, job=job_id))

    def _ensure_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while self._next_due:
            wait = min(self._next_due.values()) - clock.now()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(wait, self.interval))
                continue
            try:
                await self.refresh()
            except Exception:
                log.exception("job monitor round failed")
                await asyncio.sleep(1)
