"""What `hpchub course status` shows: each member, their server, their latest staging.

Servers are this hub's Slurm jobs, found through the Slurm gateway by the comment the job
script sets (``hpchub:HUBNAME``), never by job name: other hubs' servers and jobs a student
names ``jupyter-USER`` are not listed. One ``squeue`` (no sudo) covers every member.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.models import SlurmSettings
from ..core.text import printable
from ..slurm.client import Runner, SlurmClient, SlurmError
from ..slurm.parsers import HubJob
from ..slurm.runner import run
from . import report as rep

if TYPE_CHECKING:
    from ..config.courses import Course


def describe(job: HubJob) -> str:
    """A member's Jupyter job in a few words."""
    server = job.name.removeprefix(f"jupyter-{job.user}").lstrip("-")
    label = f"'{server}' " if server else ""
    if job.state == "RUNNING":
        return f"{label}running (job {job.job_id} on {job.nodes})"
    if job.state == "PENDING":
        return f"{label}queued (job {job.job_id}: {job.reason})"
    return f"{label}{job.state.lower()} (job {job.job_id})"


def query_jobs(
    users: list[str], slurm: SlurmSettings, hub_name: str, runner: Runner = run
) -> tuple[dict[str, list[HubJob]], str | None]:
    """The members' servers on hub ``hub_name``, and a problem text when Slurm did not answer."""
    try:
        found = asyncio.run(SlurmClient(slurm, runner).hub_jobs(users, hub_name))
    except TimeoutError as err:
        return {}, f"squeue did not answer: {err}"
    except (SlurmError, OSError) as err:
        return {}, f"squeue failed: {err}"
    out: dict[str, list[HubJob]] = {}
    for j in found:
        out.setdefault(j.user, []).append(j)
    return out, None


@dataclass
class MemberRow:
    """One line of the status table."""

    user: str
    member: bool
    server: str
    last_staged: float | None
    state: str
    result: str
    report: rep.Report | None = field(default=None, repr=False)


def build_rows(
    members: list[str], reports: dict[str, rep.Report], jobs: dict[str, list[HubJob]]
) -> list[MemberRow]:
    """One row per member, plus anyone with a stored report who is no longer a member."""
    rows = []
    for user in sorted(set(members) | set(reports)):
        r = reports.get(user)
        servers = jobs.get(user, [])
        rows.append(
            MemberRow(
                user=user,
                member=user in members,
                server="; ".join(describe(j) for j in servers) if servers else "no server",
                last_staged=(r.finished_at or r.started_at) if r else None,
                state=r.state if r else "never",
                result=r.summary() if r else "has not started a server yet",
                report=r,
            )
        )
    return rows


def render(
    course: Course,
    rows: list[MemberRow],
    today: dt.date,
    fetched: dict[str, Any] | None,
    slurm_problem: str | None,
) -> str:
    """The status as text for a terminal."""
    dates = f"{course.start or '...'} to {course.end or '...'}"
    active = "active" if course.active(today) else "not active today"
    lines = [
        f"course {course.name}" + (f": {course.title}" if course.title else ""),
        f"  dates:    {dates} ({active})",
        f"  source:   {course.source.describe()}",
        f"  target:   {course.target_template}",
    ]
    if course.profiles:
        lines.append(f"  profiles: {', '.join(course.profiles)}")
    if fetched:
        lines.append(
            f"  fetched:  revision {str(fetched.get('revision'))[:12]} "
            f"at {rep.when(fetched.get('fetched_at'))}"
        )
    started = sum(1 for r in rows if r.report)
    members = sum(1 for r in rows if r.member)
    lines.append(f"  members:  {members}, of whom {started} started a server")
    if slurm_problem:
        lines.append(f"  servers:  unknown ({slurm_problem})")
    lines.append("")
    table = [("member", "server", "last staged", "result")]
    for r in rows:
        name = r.user if r.member else f"{r.user} (no longer a member)"
        # Job names, Slurm's reasons and report texts come from users: no control characters.
        cells = (name, r.server, rep.when(r.last_staged), r.result)
        table.append(tuple(printable(c) for c in cells))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        lines.append(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        )
    return "\n".join(printable(line) for line in lines) + "\n"


def as_json(course: Course, rows: list[MemberRow], fetched: dict | None, problem: str | None):
    """The status as plain data (for scripts)."""
    return {
        "course": course.name,
        "title": course.title,
        "fetched": fetched,
        "slurm_problem": problem,
        "members": [asdict(r) for r in rows],
    }
