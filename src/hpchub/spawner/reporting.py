"""What the user reads about their job: progress events, why it ended, home-page notes."""

from __future__ import annotations

import asyncio
import datetime as dt

from ..core import clock
from ..slurm.explain import END_STATES, explain_end
from .monitor import GONE, HIDDEN, UNKNOWN, JobStatus
from .progress import ends_at, progress_event, running_note
from .timepolicy import time_info

# How often, and how far apart, to ask accounting for the record of a job that just ended.
RECORD_TRIES, RECORD_WAIT_S = 3, 1.0


class ReportingMixin:
    """Mixed into SlurmSpawner; reads its job id, monitor, client and state."""

    async def progress(self):
        """Events for the spawn progress page: queue state and reason, node, Jupyter start."""
        yield {"progress": 5, "message": "Submitting the job to Slurm."}
        for _ in range(self.site.slurm.submit_timeout * 10):
            if self.job_id:
                break
            await asyncio.sleep(0.1)
        else:
            return
        last = None
        while True:
            st = self.monitor.status(self.job_id)
            fut = getattr(self, "_port_future", None)
            pct, msg = progress_event(st, self.monitor.place(self.job_id), bool(fut and fut.done()))
            if msg != last:
                yield {"progress": pct, "message": msg}
                last = msg
            if st.ended:
                return
            await self.monitor.wait_for_change(self.poll_interval_s)

    def home_notes(self) -> dict:
        """What the hub home page says about this server (running details or why it stopped)."""
        notes: dict = {"label": f"Server '{self.name}'" if self.name else "Your server"}
        if not self.name and self.catalog.courses:
            notes["courses"] = sorted(
                set(self.catalog.course_labels(self.user.name, self.user_groups()).values())
            )
        if self.last_exit and not self.job_id:
            notes["last_exit"] = self.last_exit.get("message", "")
            notes["at"] = self.last_exit.get("at", "")
        if self.job_id:
            st = self.monitor.status(self.job_id)
            info = st.info
            if st.state == "RUNNING" and info:
                notes["time"] = time_info(self)
                end = ends_at(info.start_time, info.time_limit)
                now = dt.datetime.fromtimestamp(clock.now(), end.tzinfo if end else None)
                notes["running"] = running_note(
                    info.host or "?",
                    self.job_id,
                    self.resources.get("idle_timeout"),
                    end,
                    now,
                    self.resources.get("gpus") or 0,
                    self.resources.get("gpu_type"),
                )
            elif st.state == UNKNOWN:
                notes["running"] = (
                    f"Slurm is not answering right now; job {self.job_id} is probably still running."
                )
            elif st.state == HIDDEN:
                notes["running"] = (
                    f"The hub cannot see job {self.job_id} (Slurm keeps other users' jobs private "
                    "from it); it is probably still running. The admins can fix this: "
                    "`hpchub doctor` says how."
                )
        return notes

    async def describe_exit(self, st: JobStatus) -> str:
        """Why a job ended, in plain words: from accounting where the cluster has it (state,
        exit code, peak memory, also after the job left the queue), else from scontrol while
        Slurm still has the job."""
        history = await self.client.history(self.job_id)
        for _ in range(RECORD_TRIES - 1):
            # slurmdbd learns of an end a moment after slurmctld: wait a little for the record.
            if self.client.accounting is not True or (history and history.state in END_STATES):
                break
            await asyncio.sleep(RECORD_WAIT_S)
            history = await self.client.history(self.job_id)
        exit_code = None
        if history is None and st.state != GONE:
            details = await self.client.job_details(self.job_id)
            exit_code = details.get("ExitCode")
        asked = self.resources.get("memory_mib")
        return f"Job {self.job_id}: {explain_end(st.state, exit_code, history, asked)}."

    async def describe_end(self, st: JobStatus) -> str:
        """Why the job ended before the server was up, with the last lines of its log."""
        text = f"The server did not start. {await self.describe_exit(st)}"
        tail = await self.log_tail()
        if tail:
            text += f"\nLast lines of its log ({self.log_dir}/jupyter-{self.job_id}.log):\n{tail}"
        return text
