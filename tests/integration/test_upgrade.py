"""Upgrades with rollback on the live testbed, with a server running throughout (issue 14, 6).

A new release is built beside the running one, checked, made current; the hub is stopped, its
database upgraded and started again. alice's server keeps answering through the proxy all the
while, and keeps running from the release it started with (its job script names that release,
not the `current` link). A rollback returns `current` to the old release; the server still
answers. The hub node has no systemd here, so the testbed's own stop/start stands in for
`systemctl` (hpchub upgrade passes systemd_control instead).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from hpchub.config.loader import load_site
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.releases import ReleaseRoot
from hpchub.deploy.upgrade import roll_back, upgrade
from hpchub_testbed.hub import hub_control
from hpchub_testbed.layout import from_environ

from .conftest import squeue_ids


def batch_script(job_id: str) -> str:
    r = subprocess.run(
        ["scontrol", "write", "batch_script", job_id, "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout


def job_cmdlines(job_id: str) -> list[str]:
    r = subprocess.run(["scontrol", "listpids", job_id], capture_output=True, text=True)
    out = []
    for line in r.stdout.splitlines()[1:]:
        pid = line.split()[0]
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return out


class Poller(threading.Thread):
    """Asks alice's server for its status every half second; records every answer."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.c = client
        self.answers: list[object] = []
        self.halt = threading.Event()

    def run(self):
        s = requests.Session()
        s.trust_env = False
        s.verify = self.c.s.verify  # through Apache, with the testbed's certificate
        while not self.halt.is_set():
            try:
                r = s.get(self.c.server_url() + "api/status", headers=self.c._auth(), timeout=10)
                self.answers.append(r.status_code)
            except requests.RequestException as err:
                self.answers.append(type(err).__name__)
            time.sleep(0.5)


# The testbed starts the hub with Popen from this process and lets it run on (its own session),
# which Python reports as a ResourceWarning when the Popen object is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_running_server_keeps_answering_through_upgrade_and_rollback(alice, testbed, tmp_path):
    layout = from_environ(os.environ)
    site = load_site(testbed["site_file"])
    paths = DeployPaths(site, Path(testbed["site_file"]))
    root = ReleaseRoot.of(paths.prefix)
    before = root.current()
    assert before is not None, "the testbed must run from a release (hpchub-testbed up)"

    # Explicit options: an empty request reuses the last ones (a test may have left a reservation).
    assert alice.start(options={"profile": "small-long"}).status_code in (201, 202)
    alice.wait_ready()
    (job,) = squeue_ids("alice")
    script = batch_script(job)
    assert f"{root.releases / before}/bin/hpchub-singleuser" in script
    assert "/current/" not in script

    poller = Poller(alice)
    poller.start()
    started = time.monotonic()
    try:
        release, saved = upgrade(
            paths,
            hub_control(layout, site),
            source=str(layout.repo),
            python="/usr/bin/python3",
            backup_dir=tmp_path / "backups",
            log=print,
        )
        assert root.current() == release.name != before
        assert root.previous() == before
        db = "jupyterhub.pgdump" if site.hub.database else "jupyterhub.sqlite"
        assert (saved / db).exists()
        # The server did not move: its processes still run the old release's files.
        assert squeue_ids("alice") == [job]
        assert any(str(root.releases / before) in c for c in job_cmdlines(job))
        assert not any(release.name in c for c in job_cmdlines(job))
        print(f"upgrade took {time.monotonic() - started:.1f} s")
        mark = time.monotonic()
        assert roll_back(paths, hub_control(layout, site), log=print) == before
        print(f"rollback took {time.monotonic() - mark:.1f} s")
        assert root.current() == before
        time.sleep(2)
    finally:
        poller.halt.set()
        poller.join()
    print(f"server polled {len(poller.answers)} times during upgrade and rollback")
    assert len(poller.answers) > 10
    assert set(poller.answers) == {200}, poller.answers
    alice.wait_ready()  # the restarted hub still knows the server
    assert alice.run_code("print(6 * 7)").strip() == "42"
