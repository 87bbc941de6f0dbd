"""/hub/metrics on the testbed: who may read it, and what hpchub's counters say after use."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .conftest import allowed_ram_percent


def _get(testbed, token: str | None) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(testbed["metrics_url"], headers=headers, timeout=30)


def scrape(testbed) -> dict[tuple[str, frozenset], float]:
    """Every sample: (name, labels) -> value, read with the scraper service's token."""
    r = _get(testbed, testbed["metrics_token"])
    assert r.status_code == 200, r.text
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


def test_metrics_need_the_read_metrics_scope(testbed, bob):
    assert testbed["metrics_token"], "hpchub-testbed info --json gives the scraper's token"
    assert _get(testbed, None).status_code == 403
    # A logged-in user's own API token has no read:metrics: the queue and who runs what stay
    # private to the admins' scraper.
    assert _get(testbed, bob.token).status_code == 403
    text = _get(testbed, testbed["metrics_token"]).text
    assert "jupyterhub_running_servers" in text and "hpchub_spawn_failures_total" in text


@pytest.mark.timeout(600)
def test_counters_count_a_spawn_a_refusal_and_a_failure(testbed, alice):
    before = scrape(testbed)

    # One spawn that works (alice takes the demo courses: her materials are staged too).
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    running = scrape(testbed)
    assert total(running, "hpchub_servers", state="RUNNING") >= 1
    assert total(running, "hpchub_slurm_up") == 1
    alice.stop()
    alice.wait_stopped()

    # One refused spawn: no such profile.
    assert alice.start(options={"profile": "no-such-profile"}).status_code == 400

    # One failure: a job killed for memory before its server is up.
    memory = max(1, int(40 * 100 / allowed_ram_percent()))
    r = alice.start(options={"profile": "custom", "memory": f"{memory}M", "time": "10m"})
    if r.status_code == 202:
        assert alice.progress_events()[-1].get("failed")
    else:
        assert r.status_code >= 400
    alice.wait_stopped()

    after = scrape(testbed)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("hpchub_jobs_submitted_total", profile="medium") == 1
    assert delta("hpchub_jobs_submitted_total", profile="custom") == 1
    assert delta("hpchub_queue_wait_seconds_count", profile="medium") == 1
    assert delta("hpchub_spawn_failures_total", reason="invalid-options") == 1
    assert delta("hpchub_spawn_failures_total", reason="job-ended") == 1
    assert delta("hpchub_spawn_failures_total") == 2  # nothing else failed
    assert delta("hpchub_monitor_query_seconds_count") >= 1
    # The successful start and the failed one both staged the courses (two courses each).
    assert delta("hpchub_course_staging_total", course="workshop") >= 1
    # JupyterHub's own view agrees: one success.
    assert delta("jupyterhub_server_spawn_duration_seconds_count", status="success") == 1


@pytest.mark.timeout(400)
def test_a_cull_is_counted_and_a_users_own_stop_is_not(testbed, carol):
    before = scrape(testbed)
    # carol's own stop of a server: not a cull.
    assert carol.start("mine", {"profile": "cull-test-small"}).status_code in (201, 202)
    carol.wait_ready("mine")
    carol.stop("mine")
    carol.wait_stopped("mine")
    # An idle server (30 s timeout) that the culler stops.
    assert carol.start("idle", {"profile": "cull-test-big"}).status_code in (201, 202)
    carol.wait_ready("idle")
    start = time.monotonic()
    while (carol.server("idle") or {}).get("ready"):
        assert time.monotonic() - start < 150, "the idle server was not culled"
        time.sleep(2)
    # The route goes first; the culler's DELETE is answered once the job has stopped.
    carol.wait_stopped("idle")

    def culls() -> float:
        now = scrape(testbed)
        return total(now, "hpchub_culls_total") - total(before, "hpchub_culls_total")

    deadline = time.monotonic() + 30
    while culls() < 1 and time.monotonic() < deadline:
        time.sleep(1)
    assert culls() == 1
    assert total(scrape(testbed), "hpchub_culls_total", reason="idle") >= 1
