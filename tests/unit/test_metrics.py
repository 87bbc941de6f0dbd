"""hpchub's metrics: what each recording call adds, the monitor's view, the scrapers' piece."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from hpchub.config.models import SiteConfig, SlurmSettings
from hpchub.config.monitoring import MonitoringSettings
from hpchub.core import clock
from hpchub.metrics import registry as metrics
from hpchub.metrics.hubconfig import METRICS_ROLE, TokenFileError, metrics_piece, read_token_file
from hpchub.slurm.client import SlurmClient
from hpchub.slurm.parsers import JobInfo
from hpchub.spawner.errors import spawn_error
from hpchub.spawner.monitor import JobMonitor

from .fakes import FakeClock, FakeSlurm

TOKEN = "a" * 64


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def info(start: str, partition: str = "jupyter-short") -> JobInfo:
    return JobInfo("7", "RUNNING", "None", "node1", start, partition, "1:00:00", "node1")


def test_queue_wait_is_slurms_start_minus_the_submission():
    submitted = dt.datetime(2026, 1, 2, 10, 0, 0).timestamp()
    labels = {"partition": "jupyter-short", "profile": "medium"}
    before = value("hpchub_queue_wait_seconds_count", **labels)
    total = value("hpchub_queue_wait_seconds_sum", **labels)
    metrics.queue_left(info("2026-01-02T10:00:42"), "medium", submitted)
    assert value("hpchub_queue_wait_seconds_count", **labels) == before + 1
    assert value("hpchub_queue_wait_seconds_sum", **labels) == pytest.approx(total + 42)


def test_queue_wait_is_not_guessed():
    submitted = dt.datetime(2026, 1, 2, 10, 0, 0).timestamp()
    labels = {"partition": "jupyter-long", "profile": "p"}
    before = value("hpchub_queue_wait_seconds_count", **labels)
    # A start resumed after a restart: Slurm started the job before this hub waited for it.
    metrics.queue_left(info("2026-01-02T09:00:00", "jupyter-long"), "p", submitted)
    metrics.queue_left(info("Unknown", "jupyter-long"), "p", submitted)
    metrics.queue_left(None, "p", submitted)
    assert value("hpchub_queue_wait_seconds_count", **labels) == before


def test_every_spawn_error_counts_its_reason():
    before = value("hpchub_spawn_failures_total", reason="pending-timeout")
    spawn_error("waited too long", reason="pending-timeout")
    assert value("hpchub_spawn_failures_total", reason="pending-timeout") == before + 1


async def test_monitor_query_time_is_observed_even_when_slurm_fails():
    fc = FakeClock()
    clock.set_clock(fc)
    try:
        before = value("hpchub_monitor_query_seconds_count")

        async def slow_failure():
            fc.t += 3
            raise TimeoutError("squeue timed out")

        with pytest.raises(TimeoutError):
            await metrics.timed_query(slow_failure())
        assert value("hpchub_monitor_query_seconds_count") == before + 1
        assert value("hpchub_monitor_query_seconds_bucket", le="2.5") < value(
            "hpchub_monitor_query_seconds_bucket", le="5.0"
        )
    finally:
        clock.set_clock(None)


async def test_servers_and_slurm_up_come_from_the_monitors_view():
    fake = FakeSlurm()
    mon = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)
    fake.jobs.update({"1": "RUNNING", "2": "RUNNING", "3": "PENDING"})
    for j in ("1", "2", "3"):
        mon.watch(j)
    collector = metrics.MonitorCollector([mon])
    families = {f.name: f for f in collector.collect()}
    assert families["hpchub_slurm_up"].samples == []  # not asked yet: no claim
    await mon.refresh()
    families = {f.name: f for f in collector.collect()}
    counts = {s.labels["state"]: s.value for s in families["hpchub_servers"].samples}
    assert counts == {"RUNNING": 2, "PENDING": 1}
    assert families["hpchub_slurm_up"].samples[0].value == 1
    fake.down = True
    await mon.refresh()
    families = {f.name: f for f in collector.collect()}
    assert families["hpchub_slurm_up"].samples[0].value == 0
    assert {s.labels["state"] for s in families["hpchub_servers"].samples} == {"UNKNOWN"}
    for task in (mon._loop_task, mon._refresh_task):
        if task:
            task.cancel()


def test_metric_names_are_the_sample_names():
    names = metrics.metric_names()
    assert {
        "hpchub_queue_wait_seconds_bucket",
        "hpchub_spawn_failures_total",
        "hpchub_servers",
        "hpchub_slurm_up",
        "hpchub_course_staging_total",
        "hpchub_monitor_query_seconds_count",
    } <= names
    assert all(n.startswith("hpchub_") for n in names)


# -- the scrapers' service and token --------------------------------------------------------
def _token_file(tmp_path: Path, text: str = TOKEN, mode: int = 0o640) -> Path:
    p = tmp_path / "scraper.token"
    p.write_text(text + "\n")
    os.chmod(p, mode)
    return p


def test_token_file_is_read(tmp_path):
    assert read_token_file(_token_file(tmp_path)) == TOKEN


@pytest.mark.parametrize(
    ("text", "mode", "words"),
    [
        (TOKEN, 0o644, "readable or writable by others"),
        ("short", 0o600, "32 to 4096 printable characters"),
        (TOKEN + " " + TOKEN, 0o600, "single token"),
    ],
)
def test_unsafe_or_bad_token_files_are_refused(tmp_path, text, mode, words):
    with pytest.raises(TokenFileError, match=words) as err:
        read_token_file(_token_file(tmp_path, text, mode))
    assert TOKEN not in str(err.value)  # the error names the file, never the token


def test_token_file_link_and_missing_file_are_refused(tmp_path):
    target = _token_file(tmp_path)
    link = tmp_path / "link.token"
    link.symlink_to(target)
    with pytest.raises(TokenFileError, match="symbolic link"):
        read_token_file(link)
    with pytest.raises(TokenFileError, match="cannot read"):
        read_token_file(tmp_path / "missing.token")


def test_metrics_stay_authenticated_without_scrapers():
    c = metrics_piece(SiteConfig(hub={"allowed_groups": ["jupyter"]}))
    assert c.JupyterHub.authenticate_prometheus is True
    assert "services" not in c.JupyterHub


def test_each_scraper_is_a_service_with_only_read_metrics(tmp_path):
    site = SiteConfig(
        hub={"allowed_groups": ["jupyter"]},
        monitoring={"scrapers": [{"name": "prometheus", "token_file": "/etc/hpchub/p.token"}]},
    )
    c = metrics_piece(site, read_token=lambda path: f"token-of-{path.name}")
    assert c.JupyterHub.services == [{"name": "prometheus", "api_token": "token-of-p.token"}]
    assert c.JupyterHub.load_roles == [
        {"name": METRICS_ROLE, "scopes": ["read:metrics"], "services": ["prometheus"]}
    ]


@pytest.mark.parametrize(
    ("scrapers", "words"),
    [
        ([{"name": "idle-culler", "token_file": "/etc/t"}], "hpchub's own service"),
        ([{"name": "p", "token_file": "/etc/a"}, {"name": "p", "token_file": "/etc/b"}], "unique"),
        ([{"name": "p", "token": TOKEN}], "token"),
    ],
)
def test_bad_scrapers_are_named(scrapers, words):
    with pytest.raises(ValueError, match=words):
        MonitoringSettings(scrapers=scrapers)


class _Who:
    def __init__(self, kind: str, name: str):
        self.kind, self.name = kind, name


class _Handler:
    def __init__(self, method: str, path: str, status: int, who):
        from types import SimpleNamespace

        self.request = SimpleNamespace(method=method, path=path)
        self._status = status
        self._jupyterhub_user = who

    def get_status(self) -> int:
        return self._status


@pytest.mark.parametrize(
    ("method", "path", "status", "who", "counted"),
    [
        ("DELETE", "/hub/api/users/alice/server", 204, _Who("service", "idle-culler"), 1),
        ("DELETE", "/hub/api/users/alice/servers/big", 202, _Who("service", "idle-culler"), 1),
        ("DELETE", "/prefix/hub/api/users/a/server", 204, _Who("service", "idle-culler"), 1),
        # The user's own stop, an admin's, another service's, a refused one, a token delete.
        ("DELETE", "/hub/api/users/alice/server", 204, _Who("user", "idle-culler"), 0),
        ("DELETE", "/hub/api/users/alice/server", 204, _Who("service", "prometheus"), 0),
        ("DELETE", "/hub/api/users/alice/server", 403, _Who("service", "idle-culler"), 0),
        ("DELETE", "/hub/api/users/alice/tokens/a1", 204, _Who("service", "idle-culler"), 0),
        ("POST", "/hub/api/users/alice/server", 202, _Who("service", "idle-culler"), 0),
        ("DELETE", "/hub/api/users/alice/server", 204, None, 0),
    ],
)
def test_only_the_cullers_accepted_stops_count_as_culls(method, path, status, who, counted):
    before = value("hpchub_culls_total", reason="idle")
    metrics.request_finished(_Handler(method, path, status, who))
    assert value("hpchub_culls_total", reason="idle") == before + counted


# -- the Grafana dashboard shipped in docs/ -----------------------------------------------------
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "monitoring" / "grafana-dashboard.json"
_METRIC = re.compile(r"\b((?:hpchub|jupyterhub)_[a-z_]+)\b")


def _registry_sample_names() -> set[str]:
    """Every sample name in the registry JupyterHub serves (its metrics and ours)."""
    import jupyterhub.metrics  # noqa: F401 - registers JupyterHub's own

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names | metrics.metric_names()


def test_the_dashboard_parses_and_queries_only_metrics_that_exist():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    used = {m for e in exprs for m in _METRIC.findall(e)}
    assert {m for m in used if m.startswith("hpchub_")} <= metrics.metric_names()
    assert used <= _registry_sample_names(), used - _registry_sample_names()
    # Every hpchub metric has a panel.
    families = {n.removesuffix(s) for n in metrics.metric_names() for s in ("_bucket", "_total")}
    shown = {n.removesuffix(s) for n in used for s in ("_bucket", "_total")}
    assert {f for f in families if not f.endswith(("_count", "_sum"))} <= shown
