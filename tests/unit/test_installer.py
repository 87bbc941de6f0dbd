"""The installer: checked before replacing, atomic, right modes, diffs in dry runs, rollback."""

import os
import shutil

import pytest

from hpchub.deploy import checks, install
from hpchub.deploy.install import Installer, InstallError
from hpchub.deploy.render import SystemFile, render_all
from hpchub.deploy.secrets import ensure_secrets, read_proxy_token

from .deploy_helpers import FakeRun, tmp_site

pytestmark = pytest.mark.skipif(not shutil.which("visudo"), reason="visudo not installed")


@pytest.fixture
def no_whole_checks(monkeypatch):
    """The post-install checks look at the machine's whole sudo config; not ours to judge here."""
    ok = checks.CheckResult("whole", True)
    monkeypatch.setattr(checks, "check_sudoers_all", lambda: ok)
    monkeypatch.setattr(checks, "check_apache_all", lambda apachectl: ok)


def _installer(p, **kw):
    return Installer(p, chown=False, log=lambda m: None, run=FakeRun(), **kw)


def test_install_writes_every_file_with_its_mode(tmp_path, no_whole_checks):
    p = tmp_site(tmp_path, log_files=True)
    report = _installer(p).install()
    files = render_all(p)
    for f in files:
        assert f.path.read_text() == f.text
        assert f.path.stat().st_mode & 0o7777 == f.mode
    assert (tmp_path / "etc/sudoers.d/hpchub").stat().st_mode & 0o777 == 0o440
    assert {c.action for c in report.changes} == {"create"}
    # Folders and logs: private state, readable logs for the hub user only.
    assert p.data_dir.stat().st_mode & 0o777 == 0o700
    assert p.hub_log.stat().st_mode & 0o777 == 0o640
    # No temporary file is left behind.
    assert not list(tmp_path.rglob("*.hpchub-new"))


def test_second_install_changes_nothing(tmp_path, no_whole_checks):
    p = tmp_site(tmp_path)
    _installer(p).install()
    before = {f.path: f.path.stat().st_mtime_ns for f in render_all(p)}
    token = read_proxy_token(p.proxy_env)
    report = _installer(p).install()
    assert {c.action for c in report.changes} == {"unchanged"}
    assert {f.path: f.path.stat().st_mtime_ns for f in render_all(p)} == before
    assert read_proxy_token(p.proxy_env) == token  # secrets are generated once


def test_mode_drift_is_repaired(tmp_path, no_whole_checks):
    p = tmp_site(tmp_path)
    _installer(p).install()
    os.chmod(p.deploy.sudoers_file, 0o644)
    report = _installer(p).install()
    assert [c.action for c in report.changes if c.file.path == p.deploy.sudoers_file] == [
        "metadata"
    ]
    assert p.deploy.sudoers_file.stat().st_mode & 0o777 == 0o440


def test_dry_run_shows_a_diff_and_writes_nothing(tmp_path, no_whole_checks):
    p = tmp_site(tmp_path)
    _installer(p).install()
    changed = tmp_site(tmp_path, hub_user="nobody")
    inst = _installer(changed, dry_run=True)
    report = inst.install()
    sudo = next(c for c in report.changes if c.file.path == p.deploy.sudoers_file)
    assert sudo.action == "update"
    assert "-jupyterhub-daemon ALL=(HPCHUB_USERS)" in sudo.diff
    assert "+nobody ALL=(HPCHUB_USERS)" in sudo.diff
    assert sudo.check is not None and sudo.check.ok
    assert "jupyterhub-daemon ALL" in p.deploy.sudoers_file.read_text()  # untouched
    assert any("add nobody to group shadow" in s for s in report.steps)


def test_dry_run_before_anything_exists_creates_nothing(tmp_path, no_whole_checks):
    p = tmp_site(tmp_path)
    _installer(p, dry_run=True).install()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["tools"]


def test_a_file_that_fails_its_check_is_never_installed(tmp_path, no_whole_checks, monkeypatch):
    p = tmp_site(tmp_path)
    _installer(p).install()
    good = p.deploy.sudoers_file.read_text()
    broken = [
        SystemFile(f.path, f.text.replace("NOPASSWD:SETENV:", "NOPASSWD SETENV"), f.what, f.mode,
                   check=f.check)
        if f.check == "sudoers" else f
        for f in render_all(p)
    ]  # fmt: skip
    monkeypatch.setattr(install, "render_all", lambda paths: broken)
    with pytest.raises(InstallError) as e:
        _installer(p).install()
    assert "failed visudo -cf" in str(e.value) and "syntax error" in str(e.value)
    assert p.deploy.sudoers_file.read_text() == good
    assert not list(tmp_path.rglob("*.hpchub-new"))


def test_whole_configuration_failure_rolls_back(tmp_path, monkeypatch):
    p = tmp_site(tmp_path)
    monkeypatch.setattr(checks, "check_sudoers_all", lambda: checks.CheckResult("visudo -c", True))
    _installer(p).install()
    good = p.deploy.sudoers_file.read_text()
    monkeypatch.setattr(
        checks,
        "check_sudoers_all",
        lambda: checks.CheckResult("visudo -c", False, 'Alias "HPCHUB_USERS" already defined'),
    )
    with pytest.raises(InstallError) as e:
        _installer(tmp_site(tmp_path, hub_user="nobody")).install()
    assert "rolled back" in str(e.value) and "already defined" in str(e.value)
    assert p.deploy.sudoers_file.read_text() == good


def test_new_file_failing_the_whole_check_is_removed(tmp_path, monkeypatch):
    p = tmp_site(tmp_path)
    monkeypatch.setattr(
        checks, "check_sudoers_all", lambda: checks.CheckResult("visudo -c", False, "broken")
    )
    with pytest.raises(InstallError):
        _installer(p).install()
    assert not p.deploy.sudoers_file.exists()


def test_hub_user_is_created_and_joins_shadow(tmp_path):
    p = tmp_site(tmp_path, hub_user="hpchub-test-nouser")
    inst = _installer(p)
    inst.ensure_hub_user()
    calls = inst.run.calls
    assert calls[0][:2] == ["useradd", "--system"] and calls[0][-1] == "hpchub-test-nouser"
    assert ["usermod", "-aG", "shadow", "hpchub-test-nouser"] in calls


def test_secrets_are_private_and_the_frontend_copies_agree(tmp_path):
    from hpchub.config.loader import parse_site
    from hpchub.deploy.paths import DeployPaths

    base = tmp_site(tmp_path)
    data = base.site.model_dump(mode="json")
    data["hub"]["authenticator"] = "remote_user"
    data["deploy"]["web"] = {
        "enabled": True,
        "gate": {"enabled": True, "directives": ["AuthType shibboleth"]},
    }
    p = DeployPaths(parse_site(data), base.site_path)
    done = ensure_secrets(p, chown=False)
    assert len(done) == 4
    for f in (p.cookie_secret, p.proxy_env, p.frontend_secret, p.apache_secret_conf):
        assert f.stat().st_mode & 0o777 == 0o600
    secret = p.frontend_secret.read_text().strip()
    assert f'"{secret}"' in p.apache_secret_conf.read_text()
    assert len(bytes.fromhex(p.cookie_secret.read_text().strip())) == 32
    # Losing one copy renews both, so they never disagree.
    p.apache_secret_conf.unlink()
    ensure_secrets(p, chown=False)
    renewed = p.frontend_secret.read_text().strip()
    assert renewed != secret and f'"{renewed}"' in p.apache_secret_conf.read_text()
    # A loose mode is tightened.
    os.chmod(p.cookie_secret, 0o644)
    assert any("fix the mode" in d for d in ensure_secrets(p, chown=False))
    assert p.cookie_secret.stat().st_mode & 0o777 == 0o600


def test_a_secret_that_is_a_link_is_refused_not_followed(tmp_path, no_whole_checks):
    from hpchub.core.files import UnsafePath

    p = tmp_site(tmp_path)
    ensure_secrets(p, chown=False)
    victim = tmp_path / "victim"
    victim.write_text("root's\n")
    os.chmod(victim, 0o644)
    p.cookie_secret.unlink()
    p.cookie_secret.symlink_to(victim)
    with pytest.raises(UnsafePath, match="jupyterhub_cookie_secret is a symbolic link"):
        ensure_secrets(p, chown=False)
    with pytest.raises(InstallError, match="symbolic link; refusing to follow it; remove it"):
        Installer(p, chown=False, log=lambda m: None).install()
    assert victim.stat().st_mode & 0o777 == 0o644 and victim.read_text() == "root's\n"


def test_installed_files_replace_in_one_step(tmp_path):
    from hpchub.deploy.install import _put
    from hpchub.deploy.render import SystemFile

    target = tmp_path / "sub" / "f"
    target.parent.mkdir()
    target.write_text("old")
    inode = target.stat().st_ino
    _put(SystemFile(target, "", "a file", mode=0o640), "new", chown=False)
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640
    assert target.stat().st_ino != inode  # a rename, never a rewrite in place


def test_no_log_files_unless_asked(tmp_path, no_whole_checks):
    p = tmp_site(tmp_path)
    _installer(p).install()
    assert not p.hub_log.exists() and not p.proxy_log.exists()  # the journal has them
