"""Issue 4 on the testbed: progress users understand, failures explained, resilience."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hpchub_testbed.cluster import pidof
from hpchub_testbed.procs import alive

from .conftest import allowed_ram_percent, squeue_ids


def _sbatch_as(user: str, *args: str) -> str:
    out = subprocess.run(
        ["sudo", "-u", user, "sbatch", "--parsable", "-o", "/dev/null", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd="/tmp",
    )
    return out.stdout.strip()


def _state(job_id: str) -> str:
    r = subprocess.run(
        ["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"], capture_output=True, text=True
    )
    return r.stdout.strip()


def _wait(pred, timeout: float, what: str, interval: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def _hub_pid(testbed) -> int:
    return int((Path(testbed["logs"]).parent / "run" / "hub.pid").read_text())


def restart_hub(testbed) -> None:
    """Stop the hub process (not the proxy), then bring it back with `testbed up`."""
    pid = _hub_pid(testbed)
    os.killpg(pid, signal.SIGTERM)
    _wait(
        lambda: (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        ),
        30,
        "hub stop",
    )
    testbed_cmd = Path(sys.executable).with_name("hpchub-testbed")
    subprocess.run([str(testbed_cmd), "up"], check=True, capture_output=True)


CUSTOM_SHORT = {"profile": "custom", "partition": "jupyter-short", "memory": "512M", "time": "1h"}


def test_pending_progress_explains_the_queue(alice, jupyter_node_reserved):
    assert alice.start(options=CUSTOM_SHORT).status_code == 202
    events = alice.progress_events(until=lambda e: "Position" in e.get("message", ""))
    msg = events[-1]["message"]
    assert (
        "is waiting in jupyter-short: the nodes it needs are not available (down, drained or reserved)"
        in msg
    )
    assert re.search(r"Position \d+ of \d+ in the queue\.", msg)
    # Room appears: the job runs, Jupyter starts, the server is ready.
    jupyter_node_reserved()
    events = alice.progress_events()
    texts = [e.get("message", "") for e in events]
    assert any(
        "is running on vm, starting Jupyter" in t or "Jupyter is up on vm" in t for t in texts
    ), texts
    assert events[-1].get("ready")


def test_hub_restart_while_pending_resumes_the_start(alice, testbed, jupyter_node_reserved):
    assert alice.start(options=CUSTOM_SHORT).status_code == 202
    _wait(lambda: squeue_ids("alice"), 20, "the submitted job")
    job = squeue_ids("alice")[0]
    assert _state(job) == "PENDING"
    restart_hub(testbed)
    assert squeue_ids("alice") == [job]  # kept, not orphaned, not resubmitted
    jupyter_node_reserved()
    alice.login(testbed["users"][0]["name"], testbed["users"][0]["password"])
    _wait(
        lambda: (
            alice.s.get(alice.server_url() + "api/status", headers=alice._auth()).status_code == 200
        ),
        120,
        "the resumed server through the proxy",
    )
    assert squeue_ids("alice") == [job]


def test_hub_restart_keeps_running_servers(alice, testbed):
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    job = squeue_ids("alice")
    pid = _hub_pid(testbed)
    os.killpg(pid, signal.SIGTERM)
    time.sleep(1)
    # The proxy runs apart from the hub: the server answers while the hub is down.
    assert alice.s.get(alice.server_url() + "api/status", headers=alice._auth()).status_code == 200
    restart_hub(testbed)
    assert squeue_ids("alice") == job
    alice.wait_ready()
    assert alice.s.get(alice.server_url() + "api/status", headers=alice._auth()).status_code == 200


def test_job_cancelled_outside_the_hub(alice):
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    job = squeue_ids("alice")[0]
    subprocess.run(["scancel", job], check=True)  # an admin cancels it
    alice.wait_stopped(timeout=30)  # within a poll interval or two
    r = alice.s.get(alice.server_url() + "api/status", headers=alice._auth(), allow_redirects=False)
    assert r.status_code != 200
    page = html.unescape(alice.home())
    assert f"Job {job}: CANCELLED" in page


def test_job_killed_for_memory_at_start_is_explained(alice, testbed):
    # Jobs may use AllowedRAMSpace (the site's memory factor) times their request: keep even
    # that below what a server needs (~100M).
    memory = max(1, int(40 * 100 / allowed_ram_percent()))
    r = alice.start(options={"profile": "custom", "memory": f"{memory}M", "time": "10m"})
    if r.status_code == 202:
        events = alice.progress_events()
        assert events[-1].get("failed"), events
        message = events[-1]["message"]
    else:
        message = r.json()["message"]
    assert "The server did not start" in message
    assert "OUT_OF_MEMORY" in message and "choose more memory" in message
    if testbed.get("accounting"):  # the request, from sacct; without it, scontrol's state
        assert f"you asked for {memory}M" in message
    assert "Last lines of its log" in message


@pytest.mark.timeout(300)
def test_time_limit_reached_is_shown_on_home_page(alice):
    assert alice.start(
        options={"profile": "custom", "memory": "512M", "time": "1m"}
    ).status_code in (201, 202)
    alice.wait_ready()
    page = alice.home()
    assert "Its time limit ends at" in page
    job = squeue_ids("alice")[0]
    alice.wait_stopped(timeout=200)
    page = html.unescape(alice.home())
    assert f"Job {job}: TIMEOUT: the job reached its time limit" in page


@pytest.mark.timeout(400)
def test_controller_outage(alice, bob, testbed):
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    assert bob.start(options={"profile": "small-long"}).status_code in (201, 202)
    bob.wait_ready()
    bob_job = squeue_ids("bob")[0]
    # The live one of this machine: pgrep also lists dead, unreaped ones, and another PID
    # namespace's cluster (hpchub-testbed generation) may run beside it.
    pid = pidof("slurmctld")
    assert pid, "slurmctld is not running"
    os.kill(pid, signal.SIGTERM)
    try:
        _wait(lambda: not alive(pid), 30, "slurmctld stop")
        # squeue itself retries for a while before it gives up; then the hub says "unknown".
        _wait(
            lambda: "Slurm is not answering right now" in html.unescape(alice.home()),
            60,
            "the home page to say Slurm is not answering",
            interval=2,
        )
        # Running servers stay up; their state is unknown, not dead.
        assert (
            alice.s.get(alice.server_url() + "api/status", headers=alice._auth()).status_code == 200
        )
        assert alice.server("")["ready"]
        # A new spawn fails with a clear message.
        r = alice.start("other", {"profile": "small-long"})
        message = (
            r.json()["message"]
            if r.status_code != 202
            else alice.progress_events("other")[-1]["message"]
        )
        assert "Slurm is not answering right now" in message
        # Stopping while Slurm is away is remembered and retried.
        assert bob.stop().status_code in (202, 204)
        bob.wait_stopped()
        time.sleep(20)  # a minute of outage in all
        assert (
            alice.s.get(alice.server_url() + "api/status", headers=alice._auth()).status_code == 200
        )
    finally:
        subprocess.run(
            [str(Path(sys.executable).with_name("hpchub-testbed")), "up"],
            check=True,
            capture_output=True,
        )
    # Slurm is back: bob's job is cancelled by the retry, alice's server is as before.
    _wait(lambda: _state(bob_job) not in ("RUNNING", "PENDING"), 60, "the retried cancel")
    assert alice.server("")["ready"]
    assert alice.s.get(alice.server_url() + "api/status", headers=alice._auth()).status_code == 200
    r = alice.start("other", {"profile": "small-long"})
    assert r.status_code in (201, 202), r.text
    alice.wait_ready("other")


def test_callback_refuses_other_servers_token(alice, bob, testbed):
    """bob's server token cannot report a port for alice's server (or anything else)."""
    assert bob.start(options={"profile": "small-long"}).status_code in (201, 202)
    bob.wait_ready()
    from .test_spawn_e2e import _server_token

    token = _server_token("bob")
    s = requests.Session()
    s.trust_env = False
    r = s.post(
        testbed["hub_api_url"] + "/hub/api/hpchub/port",
        headers={"Authorization": f"token {token}"},
        data=json.dumps({"port": 40123}),
    )
    assert r.status_code == 409  # bob's own, already reported; alice's is not reachable with it
