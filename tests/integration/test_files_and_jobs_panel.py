"""Issue 16, items 7 and 8, on the testbed: in alice's own server,

- the file browser reaches /scratch (files.root is / on the testbed) and starts in her home,
  the site's favourite is there, and the uid's rights still decide (bob's scratch folder is
  neither listed nor opened, /etc/shadow is not read);
- the jobs panel (jupyterlab-slurm) runs Slurm as alice: her queue holds her server's job and
  not bob's, her history does not show bob's jobs even when she asks for them, and she cannot
  cancel bob's job through it.
One server serves every check.
"""

from __future__ import annotations

import subprocess

import pytest

from .hubclient import HubClient, home_api_path, lab_page_config

START = {"profile": "small-long"}


@pytest.fixture
def bobs_job():
    """A plain batch job of bob's, cancelled afterwards."""
    r = subprocess.run(
        ["sudo", "-u", "bob", "-i", "--", "sbatch", "--parsable", "--partition=batch"]
        + ["--time=10", "--mem=50M", "--job-name=bobs-private-job", "--wrap=sleep 600"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    job = r.stdout.strip().split(";")[0]
    try:
        yield job
    finally:
        subprocess.run(["scancel", job], check=False)


def test_file_browser_and_jobs_panel_as_alice(alice: HubClient, testbed, bobs_job):
    assert alice.start(options=START).status_code in (201, 202)
    alice.wait_ready()
    base, auth = alice.server_url(), alice._auth()
    home = home_api_path(testbed["site_file"], "alice")
    assert home == "home/alice", home  # the testbed's files.root is /

    # Files beyond home: the root lists /scratch, and /scratch lists the users' folders.
    r = alice.s.get(base + "api/contents/", headers=auth, params={"content": 1}, timeout=30)
    assert r.status_code == 200, r.text
    assert {"scratch", "home"} <= {e["name"] for e in r.json()["content"]}
    r = alice.s.get(base + "api/contents/scratch", headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    listed = {e["name"] for e in r.json()["content"]}
    assert "alice" in listed, listed
    assert alice.s.get(base + "api/contents/scratch/alice", headers=auth).status_code == 200
    # ... but the server is alice's uid: what she cannot read stays closed. Jupyter counts a
    # folder the uid cannot open as hidden, so bob's (700) is not even listed.
    assert "bob" not in listed, listed
    r = alice.s.get(base + "api/contents/scratch/bob", headers=auth)
    assert r.status_code in (403, 404), r.text
    r = alice.s.get(base + "api/contents/etc/shadow", headers=auth)
    assert r.status_code in (403, 404), r.text

    # Home stays the starting folder, and the site's favourite is offered.
    page = lab_page_config(alice)
    assert page["preferredPath"].strip("/") == home, page["preferredPath"]
    assert page["serverRoot"] in ("/", ""), page.get("serverRoot")
    r = alice.s.get(
        base + "lab/api/settings/@jlab-enhanced/favorites:favorites", headers=auth, timeout=30
    )
    assert r.status_code == 200, r.text
    # The site's favourites are the extension's defaults; alice has no settings of her own.
    favs = r.json()["schema"]["properties"]["favorites"]["default"]
    assert {"path": "scratch", "name": "Scratch"}.items() <= favs[0].items(), favs

    # The jobs panel's server API, as alice.
    api = base + "jupyterlab_slurm/"
    r = alice.s.get(api + "user", headers=auth, timeout=30)
    assert r.json()["data"]["user"] == "alice", r.text
    r = alice.s.get(api + "squeue", headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    rows = r.json()["data"]["rows"]
    own = subprocess.run(
        ["squeue", "-h", "-u", "alice", "-o", "%i"], capture_output=True, text=True
    ).stdout.split()
    assert own and set(own) <= {row[0] for row in rows}, (own, rows)  # her server's job
    assert {row[3] for row in rows} == {"alice"}, rows  # PrivateData=jobs: nobody else's
    assert bobs_job not in {row[0] for row in rows}
    # History: asking for bob's jobs shows none of them.
    for params in ({}, {"user": "bob"}):
        r = alice.s.get(api + "sacct", headers=auth, params=params, timeout=60)
        assert r.status_code == 200 and r.json()["success"], r.text
        hist = r.json()["data"]
        assert hist["rows"] or params, "alice's own history is empty"
        users = hist["columns"].index("User")
        assert all(row[users] == "alice" for row in hist["rows"]), hist["rows"]
        assert not any(str(row[0]).startswith(bobs_job) for row in hist["rows"])
    # Cancelling bob's job through the panel: Slurm refuses alice, the job stays.
    r = alice.s.delete(api + "scancel", headers=auth, json={"job_ids": [bobs_job]}, timeout=60)
    assert not r.json()["success"], r.text
    assert "permission denied" in r.json()["errorMessage"].lower(), r.text
    state = subprocess.run(
        ["squeue", "-h", "-j", bobs_job, "-o", "%T"], capture_output=True, text=True
    ).stdout.strip()
    assert state in ("PENDING", "RUNNING"), state
