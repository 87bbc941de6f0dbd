"""hpchub's Prometheus metrics, all in this one module, all named ``hpchub_*``.

They live in prometheus_client's default registry, the one JupyterHub serves at
``/hub/metrics`` (which requires the ``read:metrics`` scope). The code paths record them with
one call each to the functions below; the servers and Slurm's health are read from the job
monitor at scrape time, so they are never stale. Label values are bounded: partitions and
profiles come from the site file, reasons and results from hpchub's own short lists.
"""

from __future__ import annotations

import datetime as dt
import re
import weakref
from collections import Counter as Tally
from collections.abc import Awaitable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from ..config.culling import CULLER_SERVICE
from ..core import clock

if TYPE_CHECKING:
    from ..slurm.parsers import JobInfo

INF = float("inf")

QUEUE_WAIT = Histogram(
    "hpchub_queue_wait_seconds",
    "Time a server's job waited in Slurm's queue, from submission to its start.",
    ["partition", "profile"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, INF),
)
JOBS_SUBMITTED = Counter(
    "hpchub_jobs_submitted",
    "Server jobs that Slurm accepted, by the profile chosen.",
    ["profile"],
)
SPAWN_FAILURES = Counter(
    "hpchub_spawn_failures",
    "Starts that failed or were refused, by reason (invalid-options, sbatch-refused, "
    "slurm-unavailable, sbatch-timeout, job-ended, pending-timeout, ended).",
    ["reason"],
)
MONITOR_QUERY = Histogram(
    "hpchub_monitor_query_seconds",
    "Duration of the job monitor's squeue for all tracked jobs (answered or not).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, INF),
)
CULLS = Counter(
    "hpchub_culls",
    "Servers stopped by the idle culler service, by reason (idle: the only one it has here).",
    ["reason"],
)
COURSE_STAGING = Counter(
    "hpchub_course_staging",
    "Course materials staged into a student's folder at spawn, by result.",
    ["course", "result"],
)

# Defined by the collector below (read from the monitors at scrape time).
SERVERS = "hpchub_servers"
SLURM_UP = "hpchub_slurm_up"


def submitted(profile: str) -> None:
    """A job was accepted by Slurm."""
    JOBS_SUBMITTED.labels(profile=profile or "unknown").inc()


def spawn_failed(reason: str) -> None:
    """A start failed or was refused, for ``reason`` (one of hpchub's reason words)."""
    SPAWN_FAILURES.labels(reason=reason).inc()


def queue_wait(info: JobInfo | None, submitted_at: float) -> float | None:
    """How long Slurm queued a job submitted at ``submitted_at``, from Slurm's start time.

    None when the start time cannot be read or precedes ``submitted_at`` (a start resumed
    after a hub restart, whose submission time the hub no longer knows).
    """
    if info is None:
        return None
    try:
        started = dt.datetime.fromisoformat(info.start_time).timestamp()
    except (TypeError, ValueError):
        return None
    if started + 1 < submitted_at:
        return None
    return max(0.0, started - submitted_at)


def queue_left(info: JobInfo | None, profile: str, submitted_at: float) -> None:
    """A job's server is up: observe how long Slurm queued it (queue_wait; skipped if unknown)."""
    waited = queue_wait(info, submitted_at)
    if info is None or waited is None:
        return
    QUEUE_WAIT.labels(partition=info.partition or "unknown", profile=profile or "unknown").observe(
        waited
    )


async def timed_query(query: Awaitable[Any]) -> Any:
    """Await the monitor's squeue, observing how long it took whatever its outcome."""
    start = clock.now()
    try:
        return await query
    finally:
        MONITOR_QUERY.observe(max(0.0, clock.now() - start))


_STOP_PATH = re.compile(r"/(?:[^/]+/)*api/users/[^/]+/(?:server|servers/[^/]+)/?")
STOP_ACCEPTED = (202, 204)


def request_finished(handler: Any) -> None:
    """From the hub's request log: count a server stop that the idle culler asked for.

    The culler is a separate process; the hub sees its stops as DELETEs of a server made with
    its service token. It stops servers only for being idle (hpchub sets no maximum age).
    """
    request = handler.request
    if getattr(request, "method", None) != "DELETE" or handler.get_status() not in STOP_ACCEPTED:
        return
    if not _STOP_PATH.fullmatch(request.path):
        return
    who = getattr(handler, "_jupyterhub_user", None)  # set by JupyterHub's auth; never re-run
    if getattr(who, "kind", None) == "service" and getattr(who, "name", None) == CULLER_SERVICE:
        CULLS.labels(reason="idle").inc()


def course_staged(course: str, result: str) -> None:
    """A course's staging for one student ended with ``result`` (ok, conflicts, failed...)."""
    COURSE_STAGING.labels(course=course, result=result).inc()


# -- read from the job monitors at scrape time ---------------------------------------------
_monitors: weakref.WeakSet = weakref.WeakSet()


def follow_monitor(monitor: Any) -> None:
    """Report ``monitor``'s view (its ``tracked()`` jobs' ``status()``, ``reachable``)."""
    _monitors.add(monitor)


class MonitorCollector:
    """Servers by state and partition, and whether Slurm answered the last squeue."""

    def __init__(self, monitors: Iterable[Any] = _monitors):
        self.monitors = monitors

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        servers, up = self._families()
        tally: Tally = Tally()
        asked = []
        for mon in list(self.monitors):
            for job_id in mon.tracked():
                st = mon.status(job_id)
                partition = st.info.partition if st.info and st.info.partition else "unknown"
                tally[(st.state, partition)] += 1
            if mon.queries:
                asked.append(bool(mon.reachable))
        for (state, partition), n in sorted(tally.items()):
            servers.add_metric([state, partition], n)
        yield servers
        if asked:
            up.add_metric([], 1.0 if all(asked) else 0.0)
        yield up

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                SERVERS,
                "Servers' jobs by Slurm state and partition, as the job monitor last saw them.",
                labels=["state", "partition"],
            ),
            GaugeMetricFamily(
                SLURM_UP,
                "1 if Slurm answered the job monitor's last squeue, 0 if not "
                "(absent until the first query).",
            ),
        )


REGISTRY.register(MonitorCollector())


def metric_names() -> set[str]:
    """Every sample name hpchub exports, e.g. hpchub_queue_wait_seconds_bucket (for dashboards)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    families = [
        *MonitorCollector._families(),
        *(
            f
            for m in (QUEUE_WAIT, JOBS_SUBMITTED, SPAWN_FAILURES, MONITOR_QUERY)
            for f in m.describe()
        ),
        *(f for m in (CULLS, COURSE_STAGING) for f in m.describe()),
    ]
    return {f.name + s for f in families for s in suffixes[f.type]}
