"""Versioned releases: built beside the old one, checked, switched atomically, rolled back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hpchub.deploy import releases as R
from hpchub.deploy.software import TOOLS, SoftwareError


def fake_run(fail_on: str = ""):
    """pip, venv and the checks, faked: a venv makes the folder, pip the tools."""
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        if fail_on and fail_on in " ".join(argv):
            return subprocess.CompletedProcess(argv, 1, "", f"boom in {fail_on}\n")
        if argv[1:3] == ["-m", "venv"]:
            prefix = Path(argv[3])
            (prefix / "bin").mkdir(parents=True)
            (prefix / "pyvenv.cfg").write_text("home = /usr/bin\n")
        elif "pip" in argv:
            bin_dir = Path(argv[0]).parent
            for tool in TOOLS:
                (bin_dir / tool).write_text("#!/bin/sh\n")
        return subprocess.CompletedProcess(argv, 0, "", "")

    run.calls = calls
    return run


def build(root, name, run=None):
    return R.build_release(root, run=run or fake_run(), log=lambda m: None, name=name)


def test_release_names_are_safe_in_a_job_script():
    assert R.release_name("1.2.0+g12ab", now=0) == "1.2.0_g12ab-19700101T000000"


def test_install_builds_checks_and_switches(tmp_path):
    root = R.ReleaseRoot.of(tmp_path / "sw" / "current")  # singleuser.prefix names the link
    assert root.root == tmp_path / "sw"
    run = fake_run()
    dest = build(root, "1.0-a", run)
    assert root.current() is None  # built, not yet current
    commands = [" ".join(c) for c in run.calls]
    assert any("jupyterhub --version" in c for c in commands)
    assert any("import hpchub, jupyterhub" in c for c in commands)
    R.switch(root, dest.name, log=lambda m: None)
    assert os.readlink(root.current_link) == "releases/1.0-a"
    assert (root.current_link / "bin" / "hpchub-user").exists()
    assert root.previous() is None


def test_upgrade_then_rollback_then_again(tmp_path):
    root = R.ReleaseRoot(tmp_path)
    for name in ("1.0-a", "1.1-b"):
        build(root, name)
        R.switch(root, name, log=lambda m: None)
    assert (root.current(), root.previous()) == ("1.1-b", "1.0-a")
    assert R.rollback(root, log=lambda m: None) == "1.0-a"
    assert (root.current(), root.previous()) == ("1.0-a", "1.1-b")
    R.rollback(root, log=lambda m: None)  # roll forward again
    assert root.current() == "1.1-b"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_release_that_fails_its_check_is_removed_and_never_current(tmp_path):
    root = R.ReleaseRoot(tmp_path)
    build(root, "1.0-a")
    R.switch(root, "1.0-a", log=lambda m: None)
    with pytest.raises(SoftwareError, match="failed its check .*jupyterhub --version"):
        build(root, "1.1-b", fake_run(fail_on="--version"))
    assert not (root.releases / "1.1-b").exists()
    assert root.current() == "1.0-a"


def test_nothing_to_roll_back_to(tmp_path):
    root = R.ReleaseRoot(tmp_path)
    with pytest.raises(SoftwareError, match="nothing to roll back to"):
        R.rollback(root, log=lambda m: None)


def test_an_environment_of_the_old_layout_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "pyvenv.cfg").write_text("")
    with pytest.raises(SoftwareError, match="set singleuser.prefix to NEW/current"):
        build(R.ReleaseRoot(tmp_path), "1.0-a")


def test_a_root_others_may_write_is_refused(tmp_path):
    tmp_path.chmod(0o777)
    with pytest.raises(SoftwareError, match="writable by no one else"):
        build(R.ReleaseRoot(tmp_path), "1.0-a")


def test_a_current_link_hpchub_did_not_make_is_refused(tmp_path):
    root = R.ReleaseRoot(tmp_path)
    root.current_link.symlink_to("/tmp")
    with pytest.raises(SoftwareError, match="not at releases/NAME"):
        root.current()
