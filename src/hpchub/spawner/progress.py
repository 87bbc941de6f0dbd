"""What the spawn progress page and the home page say about a job, in plain words (pure)."""

from __future__ import annotations

import datetime as dt

from ..config.units import format_duration, parse_duration_seconds
from ..slurm.explain import explain_end, explain_pending
from ..slurm.parsers import QueuePlace
from .monitor import HIDDEN, NOT_QUERIED, UNKNOWN, JobStatus


def progress_event(st: JobStatus, place: QueuePlace | None, port_known: bool) -> tuple[int, str]:
    """(percent, message) for the progress page."""
    jid = st.job_id
    info = st.info
    if st.state == NOT_QUERIED:
        return 10, f"Job {jid} submitted; asking Slurm for its state."
    if st.state == UNKNOWN:
        return 15, f"Slurm is not answering right now; still waiting for job {jid}. ({st.error})"
    if st.state == HIDDEN:
        return (
            15,
            f"The hub cannot see job {jid}; still waiting for Jupyter to call back. ({st.error})",
        )
    if st.state == "PENDING":
        part = info.partition if info else "the queue"
        text = f"Job {jid} is waiting in {part}: {explain_pending(info.reason if info else '')}."
        if place is not None:
            text += f" Position {place.position} of {place.total} in the queue."
            if place.expected_start:
                text += f" Expected start: {place.expected_start.replace('T', ' ')}."
        return 20, text
    if st.state == "CONFIGURING":
        return 40, f"Job {jid} got node {info.host if info else '?'}; preparing it."
    if st.state == "RUNNING":
        node = info.host if info and info.host else "a node"
        if port_known:
            return 80, f"Jupyter is up on {node}; connecting."
        return 60, f"Job {jid} is running on {node}, starting Jupyter."
    if st.ended:
        return 100, explain_end(st.state)
    return 30, f"Job {jid} is {st.state.lower()}."


def ends_at(start_time: str, time_limit: str) -> dt.datetime | None:
    """When a running job's time limit ends (start + limit), if Slurm gave both."""
    try:
        start = dt.datetime.fromisoformat(start_time)
        limit = parse_duration_seconds(time_limit)
    except (ValueError, TypeError):
        return None
    return start + dt.timedelta(seconds=limit)


def running_note(
    node: str,
    job_id: str,
    idle_timeout: int | None,
    end: dt.datetime | None,
    now: dt.datetime,
    gpus: int = 0,
    gpu_type: str | None = None,
) -> str:
    """The home page's line about a running server (with its GPUs, which Slurm gave it)."""
    held = ""
    if gpus:
        held = f" with {gpus} {gpu_type + ' ' if gpu_type else ''}GPU{'s' if gpus > 1 else ''}"
    parts = [f"Running on {node}{held} as Slurm job {job_id}."]
    if idle_timeout:
        parts.append(f"It is stopped after {format_duration(idle_timeout)} without activity.")
    if end is not None:
        left = int((end - now).total_seconds())
        when = end.strftime("%Y-%m-%d %H:%M")
        if left > 0:
            parts.append(
                f"Its time limit ends at {when} (in {format_duration(max(60, left - left % 60))}); save your work before then."
            )
        else:
            parts.append(f"Its time limit ended at {when}.")
    return " ".join(parts)
