"""Accounting and a private queue on the testbed (slurmdbd with MariaDB, PrivateData=jobs,usage,users).

Users see only their own jobs; the hub's user sees every job as a Slurm operator; a job is
explained from sacct after it has ended; and a hub that is no operator never calls a running
job gone, while `hpchub doctor` says what is wrong and how to fix it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import squeue_ids

# Runs as the hub's user with the hub's own software: the real monitor and Slurm gateway.
_MONITOR = """
import asyncio, json, sys
from hpchub.config.models import SlurmSettings
from hpchub.slurm.client import SlurmClient
from hpchub.slurm.explain import explain_end
from hpchub.spawner.monitor import JobMonitor

async def main(job):
    client = SlurmClient(SlurmSettings())
    if sys.argv[2] == "history":
        h = await client.history(job)
        print(json.dumps({"words": explain_end("GONE", None, h), "accounting": client.accounting}))
        return
    mon = JobMonitor(client, interval=30)
    mon.watch(job)
    await mon.refresh()
    st = mon.status(job)
    print(json.dumps({"state": st.state, "active": st.active, "error": st.error}))

asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture(autouse=True)
def _needs_accounting(testbed):
    if not testbed.get("accounting"):
        pytest.skip("this testbed runs without accounting (HPCHUB_TESTBED_ACCOUNTING=none)")


def _as(user: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", user, "--", *argv], capture_output=True, text=True, cwd="/tmp", **kw
    )


def _hub_python(testbed) -> str:
    return str(Path(testbed["prefix"]) / "bin" / "python")


def _run_monitor(testbed, job: str, what: str = "monitor") -> dict:
    r = _as(testbed["hub_user"], _hub_python(testbed), "-c", _MONITOR, job, what)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _admin_level(user: str, level: str) -> None:
    subprocess.run(
        ["sacctmgr", "-i", "modify", "user", "where", f"name={user}", "set", f"AdminLevel={level}"],
        check=True,
        capture_output=True,
    )


def test_users_see_only_their_own_jobs_and_the_hub_sees_all(alice, testbed):
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    job = squeue_ids("alice")[0]
    bob = testbed["users"][1]["name"]
    for argv in (
        ["squeue", "-h", "--states=all", f"--jobs={job}"],
        ["sacct", "-n", "-P", f"--jobs={job}", "--format=JobID,State"],
        ["scontrol", "show", "job", job],
    ):
        r = _as(bob, *argv)
        assert job not in r.stdout, (argv, r.stdout)
    hub = _as(testbed["hub_user"], "squeue", "-h", f"--jobs={job}", "-o", "%i|%u|%T|%a|%q")
    assert hub.stdout.strip() == f"{job}|alice|RUNNING|research|jupyter"  # default account, QOS
    assert "jupyter" in _as("alice", "sacctmgr", "-n", "-P", "show", "assoc", "user=alice",
                            "format=account,qos").stdout  # fmt: skip


@pytest.mark.timeout(180)
def test_an_ended_job_is_explained_from_accounting(testbed):
    """sacct, as the hub's user, names the end state and the peak memory against the request."""
    job = _as(
        "alice", "sbatch", "--parsable", "-o", "/dev/null", "-p", "jupyter-short",
        "--mem=600M", "-t", "5",
        "--wrap", "python3 -c 'x = bytearray(300 << 20); import time; time.sleep(35)'",
    ).stdout.strip()  # fmt: skip
    assert job.isdigit()
    deadline = time.monotonic() + 150
    words = ""
    while time.monotonic() < deadline:
        words = _run_monitor(testbed, job, "history")["words"]
        if words.startswith("COMPLETED") and "you used" in words:
            break
        time.sleep(3)
    assert words.startswith("COMPLETED: the server exited by itself; you used "), words
    assert words.endswith("of the 600M you asked for"), words


def test_a_hub_that_cannot_see_jobs_never_calls_them_gone(alice, testbed):
    """PrivateData=jobs and a hub user that is no operator: squeue answers 'Invalid job id' for
    alice's running job, as for a purged one. The monitor says HIDDEN (still active), not GONE;
    the doctor names the problem and the fix. The hub is an operator again at the end."""
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    job = squeue_ids("alice")[0]
    hub_user = testbed["hub_user"]
    assert _run_monitor(testbed, job)["state"] == "RUNNING"
    hpchub = str(Path(testbed["prefix"]) / "bin" / "hpchub")
    try:
        _admin_level(hub_user, "None")
        st = _run_monitor(testbed, job)
        assert st["state"] == "HIDDEN" and st["active"], st
        assert "cannot see other users' jobs" in st["error"]
        doctor = subprocess.run(
            [hpchub, "doctor", "--config", testbed["site_file"], "--json"],
            capture_output=True,
            text=True,
        )
        found = [f for f in json.loads(doctor.stdout) if f["check"] == "job visibility"]
        assert found and found[0]["severity"] == "error", found
        assert "hub-operator.sh" in found[0]["fix"]
    finally:
        _admin_level(hub_user, "Operator")
    assert _run_monitor(testbed, job)["state"] == "RUNNING"
    assert alice.server() is not None  # the hub itself kept the server
