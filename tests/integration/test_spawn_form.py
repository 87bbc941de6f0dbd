"""Issue 3 on the testbed: the form, the query string, the API, named servers and overflow."""

from __future__ import annotations

import os
import re
import subprocess
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sbatch_rules import ALLOWED_SBATCH

from .conftest import create_reservation, squeue_ids


def job_of(user: str, name_suffix: str = "") -> dict:
    out = subprocess.run(
        ["squeue", "-h", "-u", user, "-o", "%i|%j|%P|%m|%N|%T|%k"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        jid, name, part, mem, node, state, comment = line.split("|")
        if (
            name == f"jupyter-{user}{name_suffix}"
            and comment.startswith("hpchub:testbed")
            and jid in squeue_ids(user)
        ):
            return {"id": jid, "partition": part, "mem": mem, "node": node, "state": state}
    raise AssertionError(f"no job for {user}{name_suffix}: {out}")


def batch_script(job_id: str) -> str:
    r = subprocess.run(
        ["scontrol", "write", "batch_script", job_id, "-"], capture_output=True, text=True
    )
    return r.stdout


def assert_script_safe(script: str) -> None:
    lines = script.splitlines()
    sb = [ln for ln in lines if ln.startswith("#SBATCH")]
    assert {ln.split()[1].split("=")[0] for ln in sb} <= ALLOWED_SBATCH, sb
    assert sum(1 for ln in lines if ln.startswith("exec ")) == 1


def form_post(client, data: dict, server: str = ""):
    url = f"{client.base}/hub/spawn/{client.user}" + (f"/{server}" if server else "")
    client.s.get(url)
    return client.s.post(url, data={**data, "_xsrf": client._xsrf()}, allow_redirects=False)


def test_form_shows_profiles_with_live_state(alice):
    r = alice.s.get(alice.base + "/hub/spawn")
    assert r.status_code == 200
    html = r.text
    for key in ("small-long", "medium", "large-short", "custom"):
        assert f'value="{key}"' in html
    assert re.search(r"jupyter-short: \d+(\.\d+)?[MG] memory free", html)
    assert "Stopped when idle for" in html


def test_form_rejection_is_400_keeps_input_and_submits_nothing(alice):
    r = form_post(
        alice,
        {
            "profile": "custom",
            "memory": "64G",
            "cpus": "1",
            "time": "2h",
            "partition": "jupyter-short",
        },
    )
    assert r.status_code == 400
    assert "memory: 64G is more than jupyter-short allows (1M to 8G)" in r.text
    assert 'value="64G"' in r.text  # what the user typed is still there
    assert 'id="profile-custom" value="custom" checked' in r.text
    assert squeue_ids("alice") == []


def test_form_start_remember_choice_and_named_servers(alice):
    r = form_post(
        alice, {"profile": "medium", "memory": "99G"}
    )  # custom fields ignored unless custom
    assert r.status_code == 302, r.text[:500]
    alice.wait_ready()
    job = job_of("alice")
    assert job["partition"] == "jupyter-short" and job["mem"] == "1G"
    assert "#SBATCH --partition=jupyter-short,jupyter-overflow" in batch_script(job["id"])
    # The form of a new named server starts from the last choice.
    fresh = f"new{int(time.time())}"
    r = alice.s.get(f"{alice.base}/hub/spawn/alice/{fresh}")
    assert 'id="profile-medium" value="medium" checked' in r.text
    alice.remove(fresh)  # visiting its form created it; it would count against the limit
    # A second, named server at the same time.
    r = alice.start("big", {"profile": "large-short"})
    assert r.status_code in (201, 202), r.text
    alice.wait_ready("big")
    big = job_of("alice", "-big")
    assert big["mem"] == "4G"
    assert len(squeue_ids("alice")) == 2
    # The limit on named servers holds.
    for name in ("n2", "n3"):
        assert alice.start(name, {"profile": "small-long"}).status_code in (201, 202)
    r = alice.start("n4", {"profile": "small-long"})
    assert r.status_code == 400 and "already has the maximum of 3 named servers" in r.text


def test_query_string_goes_through_validation(alice):
    r = alice.s.get(alice.base + "/hub/spawn?profile=nope")
    assert r.status_code == 400
    assert (
        "profile: &#39;nope&#39; does not exist" in r.text
        or "profile: 'nope' does not exist" in r.text
    )
    r = alice.s.get(alice.base + "/hub/spawn?profile=custom&memory=4G%0A%23SBATCH%20--uid=0")
    assert r.status_code == 400 and "must be a single line" in r.text
    assert squeue_ids("alice") == []
    r = alice.s.get(alice.base + "/hub/spawn?profile=small-long", allow_redirects=False)
    assert r.status_code == 302
    alice.wait_ready()
    assert job_of("alice")["partition"] == "jupyter-long"


def test_jobs_start_in_short_while_it_has_room(alice):
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    assert job_of("alice")["partition"] == "jupyter-short"


def test_overflow_when_short_is_full(alice, jupyter_node_reserved):
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    job = job_of("alice")
    assert job["partition"] == "jupyter-overflow"
    assert job["node"] == "hpchub-batch1"
    # The server on the batch node (its own network namespace) works through the proxy.
    assert "hpchub-batch1" in alice.run_code("import os; print(os.environ['SLURMD_NODENAME'])")


fuzz_value = st.one_of(
    st.sampled_from(
        [
            "small-long",
            "medium",
            "custom",
            "nope",
            "4G",
            "512M",
            "1",
            "9",
            "2h",
            "13h",
            "jupyter-short",
            "batch",
            "x\ny",
            "$(id)",
            "--uid=0",
            "",
        ]
    ),
    st.text(max_size=12),
)
fuzz_options = st.dictionaries(
    st.sampled_from(["profile", "partition", "memory", "cpus", "time", "gpus", "exec_prefix"]),
    fuzz_value,
    max_size=4,
)


def _check_outcome(client, status: int) -> None:
    if status == 400:
        assert squeue_ids("alice") == []
        return
    assert status in (201, 202, 302), status
    for jid in squeue_ids("alice"):
        assert_script_safe(batch_script(jid))
    client.stop()
    client.wait_stopped()


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(opts=fuzz_options)
def test_fuzz_api_path(alice, opts):
    _check_outcome(alice, alice.start(options=opts).status_code)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(opts=fuzz_options)
def test_fuzz_query_path(alice, opts):
    r = alice.s.get(alice.base + "/hub/spawn", params=opts, allow_redirects=False)
    if not opts:
        assert r.status_code == 200  # no options: the form
        return
    _check_outcome(alice, r.status_code)


def test_account_choice_from_own_associations(alice, bob, testbed):
    """alice has the accounts research (default) and course101; she picks one on the form, the
    job is charged to it, and the form remembers it; an account that is not hers, through the
    REST API, is refused with the list of hers and submits nothing."""
    if not testbed.get("accounting"):
        return  # a cluster without accounting offers no choice (unit-tested)
    html = alice.s.get(alice.base + "/hub/spawn").text
    assert '<select class="form-select" id="hpchub-account" name="account">' in html
    assert "research (your default" in html  # selected unless she chose another before
    assert "course101" in html
    r = alice.start(options={"profile": "medium", "account": "hpchub"})
    assert r.status_code == 400
    assert "'hpchub' is not one of your Slurm accounts (research, course101)" in r.text
    assert squeue_ids("alice") == []
    r = form_post(alice, {"profile": "medium", "account": "course101"})
    assert r.status_code == 302, r.text[:500]
    alice.wait_ready()
    job = job_of("alice")["id"]
    account = subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%a"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert account == "course101"
    alice.stop()
    alice.wait_stopped()
    html = alice.s.get(alice.base + "/hub/spawn").text
    assert '<option value="course101" selected>' in html
    # bob has research only: alice's course account is not his.
    r = bob.start(options={"profile": "medium", "account": "course101"})
    assert r.status_code == 400 and "(research)" in r.text


def test_reservations_offered_to_their_users_and_maintenance_warned(alice, bob):
    """A lab reservation for alice (one core of the Jupyter node) is offered to her and her
    server runs in it, its profile's 8 hours cut to the lab's 30 minutes; a typed longer time is
    refused; bob, not in it, is refused it; a maintenance window in two hours is named on the
    form with the time that fits before it."""
    lab, maint = f"lab-{os.getpid()}", f"maint-{os.getpid()}"
    try:
        create_reservation(
            lab, "Users=alice", "Nodes=vm", "CoreCnt=1", "StartTime=now", "Duration=30",
            "Flags=IGNORE_JOBS",
        )  # fmt: skip
        create_reservation(
            maint, "Users=root", "Nodes=vm", "StartTime=now+2hours", "Duration=60",
            "Flags=MAINT,IGNORE_JOBS",
        )  # fmt: skip
        time.sleep(31)  # the form's live state is at most 30 s old
        html = alice.s.get(alice.base + "/hub/spawn").text
        assert f'<option value="{lab}" selected>{lab} (until ' in html
        typed = {"profile": "custom", "memory": "512M", "time": "2h", "partition": "jupyter-short"}
        r = alice.start(options={**typed, "reservation": lab})
        assert r.status_code == 400 and f"is longer than reservation '{lab}' has left" in r.text
        assert "Maintenance on the Jupyter nodes from " in html
        assert re.search(r"can run for at most 1h ?5\dm before it", html), html
        assert maint not in re.findall(r'<option value="([^"]+)"', html)
        r = bob.start(options={"profile": "medium", "reservation": lab})
        assert r.status_code == 400 and f"reservation: '{lab}' is not open to you now" in r.text
        r = form_post(alice, {"profile": "medium", "reservation": lab})
        assert r.status_code == 302, r.text[:500]
        alice.wait_ready()
        job = job_of("alice")["id"]
        assert f"#SBATCH --reservation={lab}" in batch_script(job)
        out = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%v %L"], capture_output=True, text=True, check=True
        )
        resv, limit = out.stdout.split()
        assert resv == lab
        # The server ends with the lab: what the lab had left, in whole minutes (MM:SS).
        assert re.fullmatch(r"(2\d|30):\d\d", limit), limit
    finally:
        alice.stop()
        alice.wait_stopped()
        for name in (lab, maint):
            subprocess.run(["scontrol", "delete", f"ReservationName={name}"], capture_output=True)
    # Her stored options name a reservation that no longer exists: a start that reuses them is
    # refused with the reason (a new choice on the form is needed), and a new choice starts.
    r = alice.start()
    assert r.status_code == 400, r.text
    # The form's view is up to 30 s old: either the hub or sbatch names the reservation.
    assert (
        f"reservation: '{lab}' is not open to you now" in r.text
        or "Requested reservation is invalid" in r.text
    )
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
