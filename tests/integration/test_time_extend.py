"""Time users can see and extend, on the testbed: the hub raises the job's limit through the
generated helper (run as SlurmUser through sudo), refusals name the rule, and nobody extends
another user's server. One running server serves every assert."""

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)


def squeue_limit_min(job_id: str) -> int:
    """The job's TimeLimit as slurmctld has it, in minutes (squeue %l: [D-]HH:MM:SS)."""
    out = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%l"], capture_output=True, text=True, check=True
    ).stdout.strip()
    days, _, hms = out.rpartition("-")
    h, m, s = (["0"] * 3 + hms.split(":"))[-3:]
    return int(days or 0) * 1440 + int(h) * 60 + int(m) + (1 if int(s) else 0)


def session_api(client, method, path, **kw):
    """The browser session (cookie and XSRF token), not the user's API token."""
    return client.s.request(
        method,
        client.base + "/hub/api" + path,
        headers={"X-XSRFToken": client._xsrf()},
        timeout=120,
        **kw,
    )


def test_extend_as_the_hub_refusals_and_bob_cannot_extend_alice(alice, bob):
    alice.start().raise_for_status()
    alice.wait_ready()
    # The time left, as JupyterLab's status bar reads it (the server asks the hub with its token).
    lab = alice.s.get(alice.server_url() + "hpchub/time", headers=alice._auth(), timeout=60)
    assert lab.status_code == 200, lab.text
    info = lab.json()
    assert info["running"] and 0 < info["left_s"] <= info["limit_s"]
    job = info["job_id"]
    before = squeue_limit_min(job)
    assert before * 60 == info["limit_s"]
    assert info["warn_before_s"] == [1800, 300]

    # Bob cannot read or extend alice's server, neither by session nor by his token.
    for r in (
        session_api(bob, "GET", f"/hpchub/time/{alice.user}/"),
        session_api(bob, "POST", f"/hpchub/time/{alice.user}/", json={"minutes": 60}),
        bob.api("POST", f"/hpchub/time/{alice.user}/", json={"minutes": 60}),
    ):
        assert r.status_code in (403, 404), r.text
    # alice's own API token is not her server's token: refused, with what to use instead.
    r = alice.api("POST", f"/hpchub/time/{alice.user}/", json={"minutes": 60})
    assert r.status_code == 403 and "server's own token" in r.json()["message"]
    assert squeue_limit_min(job) == before

    # Refusals name the rule.
    r = session_api(alice, "POST", f"/hpchub/time/{alice.user}/", json={"minutes": 360})
    assert r.status_code == 400
    assert "at most 4h per extension; you asked 6h" in r.json()["message"]
    assert squeue_limit_min(job) == before

    # The hub extends through the helper: slurmctld's TimeLimit grows.
    r = session_api(alice, "POST", f"/hpchub/time/{alice.user}/", json={"minutes": 60})
    assert r.status_code == 200, r.text
    assert squeue_limit_min(job) == before + 60
    assert r.json()["limit_s"] == (before + 60) * 60 and r.json()["extended_s"] == 3600

    # From JupyterLab: the server passes it on with its own token.
    r = alice.s.post(
        alice.server_url() + "hpchub/time", json={"minutes": 30}, headers=alice._auth(), timeout=60
    )
    assert r.status_code == 200, r.text
    assert squeue_limit_min(job) == before + 90

    # The home page shows the time left and the Extend button.
    home = alice.home()
    assert "hpchub-time" in home and "Extend by 1h" in home


def test_the_helper_refuses_what_the_hub_user_was_not_meant_to_do(alice, testbed):
    """The sudo rule lets the hub user run the helper as SlurmUser; the helper itself refuses
    another user's job, a foreign job and too much."""
    alice.start().raise_for_status()
    alice.wait_ready()
    info = alice.s.get(alice.server_url() + "hpchub/time", headers=alice._auth(), timeout=60).json()
    job, limit = info["job_id"], info["limit_s"] // 60
    helper = str(Path(testbed["site_file"]).parent / "hpchub-extend-job")
    hub_user = testbed["hub_user"]
    for args, words in [
        (["bob", job, str(limit + 10)], "does not belong to bob"),
        ([alice.user, job, str(limit + 10_000)], "per extension"),
        ([alice.user, job, str(limit - 1)], "must be above"),
    ]:
        r = subprocess.run(
            ["sudo", "-n", "-u", hub_user, "sudo", "-n", "-u", "slurm", helper, *args],
            capture_output=True,
            text=True,
        )
        assert r.returncode != 0 and words in r.stderr, (args, r.stderr)
    assert squeue_limit_min(job) == limit
