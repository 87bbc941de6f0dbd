"""The hub's log on the testbed: one line per event with user, server and job; no secret."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import squeue_ids


def test_each_event_is_one_line_with_user_server_and_job(alice, testbed):
    log = Path(testbed["logs"]) / "hub.log"
    offset = log.stat().st_size
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    job = squeue_ids("alice")[0]
    alice.stop()
    alice.wait_stopped()
    with log.open(errors="replace") as f:
        f.seek(offset)
        text = f.read()
    who = rf'user=alice server="" job={job}\b'
    for event in ("job submitted", "port reported", "server up"):
        assert re.search(rf"{event} {who}", text), f"no '{event}' line for job {job}:\n{text}"
    # Neither the scraper's token nor alice's own reaches the log.
    for secret in (testbed["metrics_token"], alice.token):
        assert secret and secret not in text
