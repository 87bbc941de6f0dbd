"""hpchub backup / restore on the live testbed (issue 14, item 7).

The backup is private (folder 700, files 600) and holds the live database; a link that the hub
user plants in its data folder never makes root copy a file the hub user cannot read; a restore
is refused while the hub answers and works once it is stopped.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hpchub.config.loader import load_site
from hpchub.deploy.paths import DeployPaths
from hpchub_testbed.hub import hub_control
from hpchub_testbed.layout import from_environ

from .hubhost import hub_cmd

HPCHUB = str(Path(sys.executable).with_name("hpchub"))


def hpchub(testbed, *argv: str) -> subprocess.CompletedProcess:
    """As an admin on the hub's host (restore asks whether the hub answers there)."""
    cmd = hub_cmd(testbed, HPCHUB, "--config", testbed["site_file"], *argv)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def paths_of(testbed) -> DeployPaths:
    return DeployPaths(load_site(testbed["site_file"]), Path(testbed["site_file"]))


def test_a_backup_is_private_and_holds_the_live_database(testbed, alice, tmp_path):
    r = hpchub(testbed, "backup", "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    folder = Path(r.stdout.strip().splitlines()[-1])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert {"hpchub.yaml", "proxy.env", "manifest.json"} <= set(modes)
    assert set(modes.values()) == {0o600}
    if paths_of(testbed).site.hub.database is None:
        con = sqlite3.connect(folder / "jupyterhub.sqlite")
        assert "alice" in [row[0] for row in con.execute("select name from users")]
        con.close()
    else:  # HPCHUB_TESTBED_DB=postgresql: a pg_dump, and the password file with the secrets
        assert "db-password" in modes
        rows = subprocess.run(
            ["pg_restore", "--data-only", "--table=users", "-f", "-", folder / "jupyterhub.pgdump"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "alice" in rows


@pytest.fixture
def planted(testbed):
    """The hub user replaces its pending-cancels file with a link to a root-only file."""
    p = paths_of(testbed)
    decoy = Path(load_site(testbed["site_file"]).deploy.etc_dir) / "root-only-backup-decoy"
    decoy.write_text("root's secret\n")
    os.chmod(decoy, 0o600)
    saved = p.pending_cancels.read_bytes() if p.pending_cancels.exists() else None
    hub = testbed["hub_user"]
    subprocess.run(
        ["runuser", "-u", hub, "--", "ln", "-sfn", str(decoy), str(p.pending_cancels)], check=True
    )
    yield decoy
    p.pending_cancels.unlink(missing_ok=True)
    if saved is not None:
        p.pending_cancels.write_bytes(saved)
        uid = int(subprocess.run(["id", "-u", hub], capture_output=True, text=True).stdout)
        os.chown(p.pending_cancels, uid, -1)
        os.chmod(p.pending_cancels, 0o600)
    decoy.unlink()


def test_a_link_the_hub_user_plants_never_copies_a_root_file(testbed, planted, tmp_path):
    out = tmp_path / "b"
    r = hpchub(testbed, "backup", "--out", str(out))
    assert r.returncode == 1, r.stdout
    assert "pending cancels" in r.stderr and "symbolic link; refusing to follow it" in r.stderr
    assert "Traceback" not in r.stderr
    for f in out.rglob("*"):
        if f.is_file():
            assert b"root's secret" not in f.read_bytes(), f


# The testbed starts the hub with Popen from this process and lets it run on (its own session).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_restore_needs_the_hub_stopped_and_puts_the_state_back(testbed, alice, tmp_path):
    r = hpchub(testbed, "backup", "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    folder = r.stdout.strip().splitlines()[-1]
    r = hpchub(testbed, "restore", folder)
    assert r.returncode == 1 and "stop it first" in r.stderr
    p = paths_of(testbed)
    cookie = p.cookie_secret.read_bytes()
    control = hub_control(from_environ(os.environ), p.site)
    control.stop()
    try:
        p.cookie_secret.write_text("0" * 64 + "\n")  # state that the restore must undo
        r = hpchub(testbed, "restore", folder)
        assert r.returncode == 0, r.stderr
        assert p.cookie_secret.read_bytes() == cookie
        st = p.cookie_secret.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == int(
            subprocess.run(["id", "-u", testbed["hub_user"]], capture_output=True, text=True).stdout
        )
    finally:
        control.start()
    assert alice.model()["name"] == "alice"  # her token still works with the restored database
