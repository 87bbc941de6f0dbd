"""hpchub upgrade / rollback on fakes: the order of the steps, and the way back on failure."""

from __future__ import annotations

import json
import subprocess

import pytest

from hpchub.deploy import upgrade as U
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.releases import ReleaseRoot, build_release, switch
from hpchub.deploy.software import SoftwareError

from .test_backup import deployed  # noqa: F401 - a fixture
from .test_releases import fake_run


def site_on_releases(p: DeployPaths, tmp_path) -> DeployPaths:
    su = p.site.singleuser.model_copy(update={"prefix": tmp_path / "sw" / "current"})
    kernels = p.site.kernels.model_copy(update={"shared_dir": tmp_path / "share"})
    site = p.site.model_copy(update={"singleuser": su, "kernels": kernels})
    return DeployPaths(site, p.site_path)


def hub_recorder(steps):
    return U.HubControl(stop=lambda: steps.append("stop"), start=lambda: steps.append("start"))


def with_upgrade_db(run, steps, ok=True):
    def wrapped(argv, **kw):
        if "upgrade-db" in argv:
            steps.append("upgrade-db " + argv[2])
            return subprocess.CompletedProcess(argv, 0 if ok else 1, "", "" if ok else "no\n")
        return run(argv, **kw)

    return wrapped


def test_upgrade_backs_up_switches_upgrades_the_database_and_restarts(deployed, tmp_path):  # noqa: F811
    p = site_on_releases(deployed, tmp_path)
    root = ReleaseRoot.of(p.prefix)
    build_release(root, run=fake_run(), log=lambda m: None, name="1.0-a")
    switch(root, "1.0-a", log=lambda m: None)
    steps = []
    release, saved = U.upgrade(
        p,
        hub_recorder(steps),
        backup_dir=tmp_path / "backups",
        log=lambda m: None,
        run=with_upgrade_db(fake_run(), steps),
    )
    assert steps == ["stop", f"upgrade-db {p.deploy.hub_user}", "start"]
    assert root.current() == release.name and root.previous() == "1.0-a"
    assert (saved / "jupyterhub.sqlite").exists()
    assert U.roll_back(p, hub_recorder(steps), log=lambda m: None) == "1.0-a"
    assert root.current() == "1.0-a"


def test_a_failed_database_upgrade_goes_back_to_the_old_release(deployed, tmp_path):  # noqa: F811
    p = site_on_releases(deployed, tmp_path)
    root = ReleaseRoot.of(p.prefix)
    build_release(root, run=fake_run(), log=lambda m: None, name="1.0-a")
    switch(root, "1.0-a", log=lambda m: None)
    steps = []
    with pytest.raises(U.UpgradeError, match="current is back on 1.0-a.*backup taken before"):
        U.upgrade(
            p,
            hub_recorder(steps),
            backup_dir=tmp_path / "backups",
            log=lambda m: None,
            run=with_upgrade_db(fake_run(), steps, ok=False),
        )
    assert root.current() == "1.0-a"
    assert steps[-1] == "start"


def test_rollback_without_a_previous_release_says_so(deployed, tmp_path):  # noqa: F811
    p = site_on_releases(deployed, tmp_path)
    with pytest.raises(U.UpgradeError, match="nothing to roll back to"):
        U.roll_back(p, hub_recorder([]), log=lambda m: None)


def kernels_run(results_by_release):
    def run(argv, **kw):
        release = argv[0].split("/releases/")[1].split("/")[0]
        out = {
            "results": [
                {"name": n, "ok": ok, "reason": "r"}
                for n, ok in results_by_release[release].items()
            ]
        }
        return subprocess.CompletedProcess(argv, 0, json.dumps(out), "")

    return run


def test_only_kernels_that_worked_before_stop_an_upgrade(deployed, tmp_path):  # noqa: F811
    p = site_on_releases(deployed, tmp_path)
    (p.site.kernels.kernels_dir / "k").mkdir(parents=True)
    old, new = tmp_path / "releases" / "old", tmp_path / "releases" / "new"
    before = {"a": True, "broken": False}
    U.check_kernels(p, old, new, kernels_run({"old": before, "new": before}))
    with pytest.raises(SoftwareError, match="start with the current release fail .*\\na: r"):
        U.check_kernels(p, old, new, kernels_run({"old": before, "new": {"a": False}}))


def test_systemd_control_stops_and_starts_the_hub_unit_only(deployed):  # noqa: F811
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    hub = U.systemd_control(deployed, run)
    hub.stop()
    hub.start()
    unit = deployed.deploy.systemd.hub_unit
    assert calls == [["systemctl", "stop", unit], ["systemctl", "start", unit]]

    def failing(argv, **kw):
        return subprocess.CompletedProcess(argv, 5, "", "Unit hpchub.service not loaded.\n")

    with pytest.raises(U.UpgradeError, match="systemctl start hpchub.service failed: Unit"):
        U.systemd_control(deployed, failing).start()


def test_the_cli_reports_an_upgrade_error_in_one_line(tmp_path, capsys, monkeypatch):
    from hpchub.cli.main import main

    site = tmp_path / "hpchub.yaml"
    site.write_text("hub: {allowed_groups: [jupyter]}\n")

    def refuse(*a, **k):
        raise U.UpgradeError("nothing to roll back to")

    monkeypatch.setattr("hpchub.cli.release_cmd.roll_back", refuse)
    assert main(["--config", str(site), "rollback"]) == 1
    assert capsys.readouterr().err == "hpchub rollback: nothing to roll back to\n"
