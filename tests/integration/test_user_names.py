"""User names as sites have them (issue 15, item 7): anna.lee, a name with a dot, end to end."""

from __future__ import annotations

import pwd
import subprocess
from pathlib import Path

import pytest

from .conftest import squeue_ids
from .hubclient import HubClient
from .test_spawn_form import batch_script, form_post

DOTTED = "anna.lee"


def _user(testbed, name: str) -> dict:
    return next(u for u in testbed["users"] if u["name"] == name)


def _stop(c: HubClient) -> None:
    for name in list(c.model().get("servers", {})):
        c.stop(name)
        c.wait_stopped(name)


@pytest.fixture
def anna(testbed, monkeypatch):
    """anna.lee's browser-like session through Apache (HTTPS), with a token of hers."""
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", testbed["tls_cert"])
    u = _user(testbed, DOTTED)
    c = HubClient(testbed["https_url"])
    c.s.verify = testbed["tls_cert"]
    r = c.login(u["name"], u["password"])
    assert r.status_code == 302, r.text
    c.make_token()
    _stop(c)
    yield c
    _stop(c)


def _job(user: str) -> dict:
    """The one job of ``user`` from this test bed's hub, as squeue shows it."""
    (job_id,) = squeue_ids(user)
    out = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%u|%j|%k|%T"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    owner, name, comment, state = out.split("|")
    return {"id": job_id, "user": owner, "name": name, "comment": comment, "state": state}


def test_a_dotted_name_spawns_end_to_end_through_apache(anna, testbed):
    account = pwd.getpwnam(DOTTED)
    # The form, as a browser posts it.
    r = form_post(anna, {"profile": "small-long"})
    assert r.status_code == 302, r.text[:500]
    anna.wait_ready()
    job = _job(DOTTED)
    assert job["user"] == DOTTED
    assert job["name"] == f"jupyter-{DOTTED}"
    assert job["comment"] == testbed["hub_name"].join(("hpchub:", ""))
    script = batch_script(job["id"])
    assert f"#SBATCH --output={account.pw_dir}/.hpchub/logs/jupyter-%j.log" in script
    assert f"#SBATCH --chdir={account.pw_dir}" in script
    # Her server answers at /user/anna.lee/ through Apache, and its kernel runs as her uid.
    assert anna.server_url() == f"{testbed['https_url']}/user/{DOTTED}/"
    uid, job_id = anna.run_code("import os; print(os.getuid(), os.environ['SLURM_JOB_ID'])").split()
    assert (int(uid), job_id) == (account.pw_uid, job["id"])
    log = Path(account.pw_dir) / ".hpchub" / "logs" / f"jupyter-{job['id']}.log"
    assert log.stat().st_uid == account.pw_uid and (log.stat().st_mode & 0o777) == 0o600
    assert anna.stop().status_code in (202, 204)
    anna.wait_stopped()
    assert squeue_ids(DOTTED) == []
