"""doctor: every check on fakes and temporary files (the live run is an integration test)."""

# ruff: noqa: S103 - loose modes are what these tests are about

import json
import os
import subprocess
from pathlib import Path

import pytest

from hpchub.deploy.render import sudo_commands
from hpchub.doctor import hubfiles, services, system, user
from hpchub.doctor.deployment import Deployment
from hpchub.doctor.findings import Severity, exit_code, format_text, run_checks
from hpchub.doctor.sudo import judge_sudo, parse_sudo_ll
from hpchub.slurm.runner import Result

from .deploy_helpers import tmp_site


def sev(findings) -> set[Severity]:
    return {f.severity for f in findings}


# -- sudo ----------------------------------------------------------------------------------


def test_parse_real_sudo_long_listing(data_dir):
    entries = parse_sudo_ll((data_dir / "sudo_ll_hub.txt").read_text())
    assert entries and entries[0].runas_users == ["%jupyter", "!root"]
    assert entries[0].commands[0] == "/usr/bin/sbatch --parsable"
    assert "!authenticate" in entries[0].options


def test_exactly_what_is_needed_is_ok(data_dir):
    p = tmp_site(Path("/x"))
    text = (data_dir / "sudo_ll_hub.txt").read_text().replace("/opt/hpchub/env", str(p.prefix))
    entries = parse_sudo_ll(text)[:1]
    assert sev(judge_sudo(entries, sudo_commands(p), "jupyterhub-daemon")) == {Severity.OK}


WIDE = """\
User jupyterhub-daemon may run the following commands on vm:

Sudoers entry:
    RunAsUsers: ALL
    Options: !authenticate
    Commands:
\t/usr/bin/sbatch --parsable

Sudoers entry:
    RunAsUsers: %jupyter
    Commands:
\t/bin/bash
\t/usr/bin/id

Sudoers entry:
    Commands:
\t/usr/bin/systemctl restart hpchub
"""


def test_rules_wider_than_needed_are_named():
    findings = judge_sudo(parse_sudo_ll(WIDE), ["/usr/bin/sbatch --parsable"], "hubd")
    errors = [f.what for f in findings if f.severity == Severity.ERROR]
    assert any("as ALL: that includes root" in w for w in errors)
    assert any("'/bin/bash': that runs anything" in w for w in errors)
    assert any("as root: that includes root" in w for w in errors)  # no Runas list
    warnings = [f.what for f in findings if f.severity == Severity.WARNING]
    assert any("'/usr/bin/id', which this hub does not need" in w for w in warnings)
    assert any("does not exclude root" in w for w in warnings)
    assert all(f.fix for f in findings)


def test_the_extend_rule_is_hpchubs_own_and_its_absence_is_named():
    from hpchub.doctor.sudo import SudoEntry

    extend = ("slurm", "/etc/hpchub/hpchub-extend-job *")
    base = SudoEntry(["%jupyter", "!root"], [], [], ["/usr/bin/sbatch --parsable"])
    rule = SudoEntry(["slurm"], [], ["!authenticate"], [extend[1]])
    ok_ = judge_sudo([base, rule], ["/usr/bin/sbatch --parsable"], "hubd", extend)
    assert sev(ok_) == {Severity.OK}
    missing = judge_sudo([base], ["/usr/bin/sbatch --parsable"], "hubd", extend)
    assert any("the Extend button fails" in f.what for f in missing if f.severity == Severity.ERROR)
    # The same command as root is not hpchub's rule: it is judged, and it reaches root.
    as_root = SudoEntry(["root"], [], [], [extend[1]])
    wide = judge_sudo([base, as_root], ["/usr/bin/sbatch --parsable"], "hubd", extend)
    assert any("that includes root" in f.what for f in wide if f.severity == Severity.ERROR)


def test_missing_rule_is_an_error():
    findings = judge_sudo([], ["/usr/bin/sbatch --parsable"], "hubd")
    assert (
        findings[0].severity == Severity.ERROR and "servers cannot be started" in findings[0].what
    )


# -- secrets, the environment, user config ------------------------------------------------


def deployment(tmp_path, **kw) -> Deployment:
    fake = FakeRunner()
    return Deployment(tmp_site(tmp_path, **kw), fake, fake.slurm, euid=os.geteuid())


class FakeRunner:
    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        for key, (code, out, err) in self.answers.items():
            if key in " ".join(argv):
                return subprocess.CompletedProcess(argv, code, out, err)
        return subprocess.CompletedProcess(argv, 0, "", "")

    async def slurm(self, argv, **kw):
        """The same answers for the Slurm gateway's (asynchronous) runner."""
        r = self(argv)
        return Result(tuple(argv), r.returncode, r.stdout, r.stderr)


def test_secrets_modes(tmp_path, monkeypatch):
    d = deployment(tmp_path)
    monkeypatch.setattr(hubfiles, "_owner", lambda p: "jupyterhub-daemon")
    assert "does not exist" in hubfiles.check_secrets(d)[0].what
    from hpchub.deploy.secrets import ensure_secrets

    d.paths.data_dir.mkdir(parents=True, mode=0o700)
    ensure_secrets(d.paths, chown=False)
    assert sev(hubfiles.check_secrets(d)) == {Severity.OK}
    os.chmod(d.paths.proxy_env, 0o644)
    os.chmod(d.paths.data_dir, 0o755)
    found = hubfiles.check_secrets(d)
    assert any("proxy.env" in f.what and "others can read it" in f.what for f in found)
    assert any("mode 755" in f.what for f in found)
    assert exit_code(found) == 1


def test_singleuser_env_writable_by_others(tmp_path):
    d = deployment(tmp_path)
    prefix = d.paths.prefix
    (prefix / "bin" / "hpchub-jupyterhub-singleuser").write_text("")
    os.chmod(tmp_path, 0o755)
    assert sev(hubfiles.check_singleuser_env(d)) == {Severity.OK}
    (prefix / "lib").mkdir()
    os.chmod(prefix / "lib", 0o777)
    found = hubfiles.check_singleuser_env(d)
    assert found[0].severity == Severity.ERROR and "writable by group or others" in found[0].what
    assert found[0].fix == f"chmod -R go-w {prefix}"


def test_old_jupyterhub_in_the_environment_is_an_error(tmp_path):
    d = deployment(tmp_path)
    prefix = d.paths.prefix
    (prefix / "bin" / "hpchub-jupyterhub-singleuser").write_text("")
    os.chmod(tmp_path, 0o755)
    meta = prefix / "lib/python3.11/site-packages/jupyterhub-5.4.4.dist-info/METADATA"
    meta.parent.mkdir(parents=True)
    meta.write_text("Name: jupyterhub\nVersion: 5.4.4\n")
    found = hubfiles.check_singleuser_env(d)
    assert any("CVE-2026-40864" in f.what for f in found)


@pytest.mark.skipif(os.geteuid() != 0, reason="config.d files must belong to root")
def test_user_config_must_stay_disabled(tmp_path, monkeypatch):
    d = deployment(tmp_path)
    from hpchub.core.files import atomic_write
    from hpchub.core.templates import render

    d.paths.config_py.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(d.paths.config_py, render("jupyterhub_config.py"), 0o644)
    d.paths.site_path.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    d.paths.site_path.write_text(yaml.safe_dump(d.paths.site.model_dump(mode="json")))
    assert sev(hubfiles.check_user_config(d)) == {Severity.OK}
    config_d = d.paths.site.hub.config_d
    config_d.mkdir(parents=True)
    (config_d / "50-local.py").write_text("c.Spawner.disable_user_config = False\n")
    found = hubfiles.check_user_config(d)
    assert found[0].severity == Severity.ERROR and "~/.jupyter" in found[0].what
    os.chmod(config_d / "50-local.py", 0o666)
    assert "can be changed by someone other than root" in hubfiles.check_user_config(d)[0].what


def test_slurm_answers_and_offers_every_partition(tmp_path):
    d = deployment(tmp_path)
    nodes = "n1|10.0.0.1|idle|0/2/0/2|1000|900|jupyter-short\nn1|10.0.0.1|idle|0/2/0/2|1000|900|jupyter-long\n"
    d.run = FakeRunner({"sinfo": (0, nodes, "")})
    d.slurm_run = d.run.slurm
    found = system.check_slurm(d)
    assert [f.what for f in found if f.severity == Severity.ERROR] == [
        "the site offers partition 'jupyter-overflow', which Slurm does not have"
    ]
    d.run = FakeRunner({"sinfo": (1, "", "Unable to contact slurm controller")})
    d.slurm_run = d.run.slurm
    assert "Unable to contact" in system.check_slurm(d)[0].what
    d.euid = 0
    system.check_slurm(d)
    assert d.run.calls[0][:4] == ["runuser", "-u", "jupyterhub-daemon", "--"]


def test_services_found_by_their_unit_command_line(tmp_path):
    d = deployment(tmp_path)
    d.paths.hub_unit.parent.mkdir(parents=True)
    from hpchub.deploy.render import hub_unit, proxy_unit

    d.paths.hub_unit.write_text(hub_unit(d.paths))
    d.paths.proxy_unit.write_text(proxy_unit(d.paths))
    proc = tmp_path / "proc"
    jh = str(d.paths.prefix / "bin/hpchub-hub")
    for pid, argv, uid in (
        (10, ["/usr/sbin/runuser", "-u", "hubd", "--", jh, "-f", str(d.paths.config_py)], 0),
        (11, ["/usr/bin/python3", jh, "-f", str(d.paths.config_py)], 0),
    ):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (proc / str(pid) / "status").write_text(f"Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    d.proc = proc
    found = services.check_services(d)
    hub = [f for f in found if f.check == "hub process"]
    # The runuser wrapper (root) is not the hub; the python process is, and runs as root.
    assert len(hub) == 1 and hub[0].severity == Severity.ERROR and "pid 11" in hub[0].what
    proxy = [f for f in found if f.check == "proxy process"]
    assert proxy[0].severity == Severity.WARNING and "no process runs" in proxy[0].what


def test_installed_files_drift(tmp_path):
    d = deployment(tmp_path)
    found = hubfiles.check_installed_files(d)
    assert found[0].severity == Severity.WARNING and "(missing)" in found[0].what


def test_a_crashing_check_is_reported_not_raised():
    def check_boom(_):
        raise RuntimeError("no")

    found = run_checks([check_boom], None)
    assert found[0].severity == Severity.ERROR and "RuntimeError: no" in found[0].what


def test_format_and_exit_code():
    from hpchub.doctor.findings import error, ok, warning

    findings = [ok("a", "fine"), warning("b", "hmm", "do x"), error("c", "bad", "do y")]
    text = format_text(findings)
    assert "fine" not in text and "[WARNING] b: hmm" in text and "fix: do y" in text
    assert "3 checks: 1 errors, 1 warnings" in text
    assert exit_code(findings) == 1 and exit_code(findings[:2]) == 0


# -- one user's account ---------------------------------------------------------------------


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_module_lines_in_startup_files(home):
    assert sev(user.check_startup_files(home)) == {Severity.OK}
    (home / ".bashrc").write_text(
        "# module load ignored-comment\nmodule load gcc/12\nexport MODULEPATH=$HOME/mods:$MODULEPATH\nml python\n"
    )
    found = user.check_startup_files(home)
    assert found[0].severity == Severity.WARNING
    assert "line 2: module load gcc/12" in found[0].what and "line 4: ml python" in found[0].what
    assert "ignored-comment" not in found[0].what
    assert "HPCHUB_JOB" in found[0].fix
    (home / ".bashrc").write_text('if [ -z "$HPCHUB_JOB" ]; then\n  module load gcc\nfi\n')
    assert sev(user.check_startup_files(home)) == {Severity.OK}


def test_a_users_escape_sequences_never_reach_the_admins_terminal(home):
    # A .bashrc line that would retitle the admin's terminal and clear the screen.
    (home / ".bashrc").write_text("module load gcc # \x1b]0;owned\x07\x1b[2J\x9b6n\n")
    (home / ".jupyter").mkdir()
    (home / ".jupyter" / "jupyter_\x1b[31mred_config.py").write_text("")
    findings = user.check_startup_files(home) + user.check_jupyter_config(home)
    for text in (format_text(findings), json.dumps([f.as_dict() for f in findings])):
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "module load gcc # ?]0;owned??[2J?6n" in findings[0].what
    # Even a finding that quotes raw text (a tool's output) is printed without its controls.
    raw = [user.warning("x", "line one\nline \x1b[2J two", "fix \x1b]0;t\x07")]
    assert format_text(raw).splitlines()[:2] == [
        "[WARNING] x: line one",
        "          line ?[2J two",
    ]
    assert "fix: fix ?]0;t?" in format_text(raw)


def test_jupyter_config_files(home):
    assert sev(user.check_jupyter_config(home)) == {Severity.OK}
    (home / ".jupyter").mkdir()
    (home / ".jupyter" / "jupyter_server_config.py").write_text(
        "c.ServerApp.disable_check_xsrf = True"
    )
    found = user.check_jupyter_config(home)
    assert found[0].severity == Severity.WARNING and "jupyter_server_config.py" in found[0].what


def test_local_packages_that_shadow_jupyter(home):
    site = home / ".local/lib/python3.11/site-packages"
    (site / "traitlets").mkdir(parents=True)
    (site / "requests").mkdir()
    found = user.check_local_packages(home)
    assert found[0].severity == Severity.WARNING
    assert "traitlets" in found[0].what and "requests" not in found[0].what
    assert found[0].fix.startswith("python3.11 -m pip uninstall --user traitlets")


def test_conda_auto_activation(home):
    assert sev(user.check_conda(home)) == {Severity.OK}
    (home / ".bashrc").write_text("# >>> conda initialize >>>\n__conda_setup=...\n")
    assert user.check_conda(home)[0].severity == Severity.WARNING
    (home / ".condarc").write_text("auto_activate_base: false\n")
    assert user.check_conda(home)[0].severity == Severity.INFO


def test_space_left(home, monkeypatch):
    assert user.check_space(home)[0].severity == Severity.OK

    class Full:
        f_bavail, f_frsize, f_blocks, f_favail, f_files = 10, 4096, 10**6, 10**6, 10**6

    monkeypatch.setattr(os, "statvfs", lambda p: Full)
    found = user.check_space(home)
    assert found[0].severity == Severity.ERROR and "MiB free" in found[0].what


QUOTA_OVER = """\
Disk quotas for user alice (uid 1002):
     Filesystem  blocks   quota   limit   grace   files   quota   limit   grace
/dev/mapper/vg-home 10485760* 10485760 11534336  6days   1200       0       0
"""


def test_quota_parsing_and_check():
    assert user.parse_quota(QUOTA_OVER) == ["/dev/mapper/vg-home"]
    assert user.parse_quota("Disk quotas for user bob (uid 1003): none\n") == []
    run = FakeRunner({"quota": (1, QUOTA_OVER, "")})
    assert user.check_quota("alice", run)[0].severity == Severity.ERROR
    missing = FakeRunner({"quota": (127, "", "No such file")})
    assert user.check_quota("alice", missing)[0].severity == Severity.INFO


def test_account_may_not_log_in(tmp_path):
    from hpchub.config.loader import parse_site

    site = parse_site({"hub": {"allowed_groups": ["nonexistent-group"]}})
    found = user.check_account("nobody", site)
    assert found[0].severity == Severity.ERROR and "may not log in" in found[0].what
    assert "no account" in user.check_account("no-such-user-x", site)[0].what


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_checks_run_as_the_user(tmp_path):
    import pwd

    def who():
        from hpchub.doctor.findings import ok

        return [ok("who", f"{os.geteuid()} {os.environ['HOME']}")]

    found = user.as_user("nobody", who)
    pw = pwd.getpwnam("nobody")
    assert found[0].what == f"{pw.pw_uid} {pw.pw_dir}"
    assert os.geteuid() == 0  # the parent never changed


def test_cli_refuses_a_user_name_that_could_be_an_option(capsys):
    from hpchub.cli.main import main

    assert main(["doctor", "--user=-h"]) == 2
    assert "is not a user name" in capsys.readouterr().err


def test_sudo_1_9_16_names_the_file_of_each_entry():
    """sudo 1.9.16 (Debian 13) prints 'Sudoers entry: FILE' where 1.9.13 printed a bare line."""
    from pathlib import Path

    from hpchub.doctor.sudo import parse_sudo_ll

    text = (Path(__file__).parent / "data" / "sudo_ll_1.9.16.txt").read_text()
    [entry] = parse_sudo_ll(text)
    assert entry.runas_users == ["ALL"]
    assert entry.commands == ["/usr/bin/sbatch --parsable"]


# -- a login around the SSO gate ---------------------------------------------------------------


def _gate_paths(tmp_path, **gate):
    from hpchub.config.loader import parse_site
    from hpchub.deploy.paths import DeployPaths

    gate = {"directives": ["AuthType shibboleth"], **gate}
    site = parse_site({"deploy": {"web": {"gate": {"enabled": True, **gate}}}})
    return DeployPaths(site, tmp_path / "hpchub.yaml")


def test_doctor_reports_a_login_that_reaches_the_password_around_the_gate(tmp_path):
    from hpchub.auth.frontend import GATE_REFUSAL
    from hpchub.doctor.gate import check_gate_bypass

    sent = []

    def refused_for_the_gate(url, client):
        sent.append((url, client))
        return 403, f"<p>{GATE_REFUSAL}</p>"

    p = _gate_paths(tmp_path, exempt_networks=["192.0.2.0/24", "10.0.0.0/8"])
    assert [f.severity for f in check_gate_bypass(p, refused_for_the_gate)] == [Severity.OK]
    assert sent == [("http://127.0.0.1:8081", "198.51.100.1")]  # an address that is not exempt
    found = check_gate_bypass(p, lambda url, client: (403, "Invalid username or password"))
    assert found[0].severity == Severity.ERROR and "around the SSO gate" in found[0].what
    assert check_gate_bypass(_gate_paths(tmp_path, exempt_networks=["0.0.0.0/0"]))[0].severity == (
        Severity.INFO
    )

    def down(url, client):
        raise ConnectionRefusedError(111, "Connection refused")

    assert check_gate_bypass(p, down)[0].severity == Severity.WARNING
