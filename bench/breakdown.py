"""Where an hpchub spawn's time goes, read from the logs a run leaves behind (pure parsers).

Four steps per job: Slurm schedules it (submit -> allocation, slurmctld.log), the node starts
the job and Jupyter (allocation -> "Jupyter Server ... is running", the job's log), the
launcher sees its server listen and reports the port (-> "listens on port", hub log), and the
hub checks the job once more and adds the route (-> "took N seconds to start", hub log).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from .stats import summary

_HUB = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")
_CTLD = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\] (.*)$")


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace(" ", "T")).timestamp()


# The hub's lines, in its key=value form and in the older sentence form (older runs' logs).
_SUBMITTED = (
    re.compile(r'job submitted user=(?P<user>\S+) server="[^"]*" job=(?P<job>\d+)'),
    re.compile(r"Submitted job (?P<job>\d+) for (?P<user>\S+)$"),
)


def _submitted(line: str) -> tuple[str, str] | None:
    """(job id, user) of a hub log line saying that a job was submitted."""
    for rx in _SUBMITTED:
        if (m := rx.search(line)) is not None:
            return m.group("job"), m.group("user")
    return None


def _reported(line: str, job: str, user: str) -> bool:
    """Whether a hub log line says the launcher of ``job`` reported its port."""
    return (
        f"Job {job} of {user} listens on port" in line
        or re.search(rf"port reported user={re.escape(user)} server=\"[^\"]*\" job={job} ", line)
        is not None
    )


def hub_spawns(
    text: str, user: str, since: float = 0.0, until: float | None = None
) -> dict[str, dict[str, float]]:
    """hpchub's spawns of ``user`` in a hub log: job id -> submitted, reported, ready times."""
    jobs: dict[str, dict[str, float]] = {}
    current = None
    others: list[float] = []
    for line in text.splitlines():
        m = _HUB.match(line)
        if not m:
            continue
        t = _ts(m.group(1))
        if t < since or (until is not None and t > until):
            continue
        if (s := _submitted(line)) is not None:
            if s[1] == user:
                current = s[0]
                jobs[current] = {"submitted": t}
            else:
                others.append(t)
        elif current and _reported(line, current, user):
            jobs[current]["reported"] = t
        elif current and re.search(rf"User {re.escape(user)} took [\d.]+ seconds to start", line):
            jobs[current]["ready"] = t
            current = None
    # Only spawns alone on the machine: none of another user submitted within 2 s.
    return {
        j: v
        for j, v in jobs.items()
        if {"reported", "ready"} <= v.keys() and all(abs(o - v["submitted"]) > 2 for o in others)
    }


def allocations(text: str, job_ids) -> dict[str, float]:
    """When slurmctld allocated each of ``job_ids`` (main scheduler or backfill)."""
    wanted = set(job_ids)
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _CTLD.match(line)
        if not m:
            continue
        a = re.search(
            r"(?:sched: Allocate|backfill: _start_job: Started|backfill: Started) JobId=(\d+)",
            m.group(2),
        )
        if a and a.group(1) in wanted and a.group(1) not in out:
            out[a.group(1)] = _ts(m.group(1))
    return out


def jupyter_listening(text: str) -> float | None:
    """When Jupyter Server said it is running, from a job log."""
    for line in text.splitlines():
        if "Jupyter Server" in line and "is running at" in line:
            m = _HUB.match(line)
            if m:
                return _ts(m.group(1))
    return None


def breakdown(
    hub_log: Path,
    ctld_log: Path,
    job_log_dir: Path,
    user: str,
    since: float,
    until: float | None = None,
) -> dict:
    """Medians of each step over the lone spawns of ``user`` between two epoch times."""
    jobs = hub_spawns(hub_log.read_text(errors="replace"), user, since, until)
    alloc = allocations(ctld_log.read_text(errors="replace"), jobs)
    steps: dict[str, list[float]] = {
        "schedule": [],
        "launch_and_jupyter": [],
        "report": [],
        "route": [],
    }
    for job, t in jobs.items():
        log = job_log_dir / f"jupyter-{job}.log"
        up = jupyter_listening(log.read_text(errors="replace")) if log.exists() else None
        if job not in alloc or up is None:
            continue
        steps["schedule"].append(alloc[job] - t["submitted"])
        steps["launch_and_jupyter"].append(up - alloc[job])
        steps["report"].append(t["reported"] - up)
        steps["route"].append(t["ready"] - t["reported"])
    return {name: summary(values) for name, values in steps.items()}
