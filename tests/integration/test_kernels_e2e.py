"""Issue 5 end to end: Lmod modules as kernels, immune to the user's shell; panel; nbdime.

Runs on the testbed with real Lmod and the module tree that `hpchub-testbed up` builds
(hpchub_testbed.testmodules): two Python modules backed by different venvs, a broken one and
an R module (Debian's R with IRkernel; issue 16).
The user under test (bob) gets a hostile ~/.bashrc for the duration of this module: it loads a
module from a private MODULEPATH that shadows the site's, and sets a PYTHONPATH that breaks
ipykernel. Kernels must not care.
"""

from __future__ import annotations

import json
import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hpchub.config.loader import load_site
from hpchub_testbed import testmodules

from .hubclient import HubClient, lab_page_config, run_in_kernel

USER = "bob"
FAMILY = testmodules.FAMILY
GOOD = {f"module-{FAMILY}-{v}": v for v in testmodules.GOOD}
BROKEN = f"module-{FAMILY}-{testmodules.BROKEN}"
R_KERNEL = f"module-{testmodules.R_FAMILY}-{testmodules.R_VERSION}"
R_PROBE = 'cat(Sys.which("R"), Sys.getenv("HPCTEST_R"), sum(1:10), "\\n")'
PROBE = "import os, sys; print(sys.executable); print(os.environ.get('HPCTEST_PYTHON'))"

HOSTILE_BASHRC = """\
# --- hpchub test: a user who loads modules and changes MODULEPATH in ~/.bashrc ---
if ! type module >/dev/null 2>&1; then . /usr/share/lmod/lmod/init/bash; fi
export MODULEPATH={home}/shadow-modules:{site_modules}
module load {family}/3.11-a
export PYTHONPATH={home}/shadow-pythonpath
# --- end of the test's lines ---
"""
SHADOW_MODULE = 'prepend_path("PATH", "{home}/shadow-bin")\nsetenv("HPCTEST_PYTHON", "shadow")\n'
SHADOW_PYTHON = "#!/bin/sh\necho 'shadow python3 from ~/.bashrc was used' >&2\nexit 42\n"
SHADOW_R = "#!/bin/sh\necho 'shadow R from ~/.bashrc was used' >&2\nexit 42\n"
SHADOW_LAUNCHER = "raise SystemExit('ipykernel_launcher from the user PYTHONPATH was used')\n"


def _hpchub() -> str:
    return str(Path(sys.executable).with_name("hpchub"))


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def site_file(testbed) -> str:
    testmodules.ensure_tree()
    r = _run(_hpchub(), f"--config={testbed['site_file']}", "kernels", "sync", "--quiet")
    assert r.returncode == 0, r.stderr
    return testbed["site_file"]


@pytest.fixture(scope="module")
def hostile_user(site_file):
    """bob's ~/.bashrc loads a shadowing module and sets PYTHONPATH; restored afterwards."""
    pw = pwd.getpwnam(USER)
    home = Path(pw.pw_dir)
    bashrc = home / ".bashrc"
    saved = bashrc.read_bytes() if bashrc.exists() else None
    made = [home / "shadow-modules", home / "shadow-bin", home / "shadow-pythonpath"]
    files = {
        home / "shadow-modules" / FAMILY / "3.11-a.lua": SHADOW_MODULE.format(home=home),
        home / "shadow-bin" / "python3": SHADOW_PYTHON,
        home / "shadow-bin" / "R": SHADOW_R,
        home / "shadow-bin" / "Rscript": SHADOW_R,
        home / "shadow-pythonpath" / "ipykernel_launcher.py": SHADOW_LAUNCHER,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for exe in ("python3", "R", "Rscript"):
        (home / "shadow-bin" / exe).chmod(0o755)
    hostile = HOSTILE_BASHRC.format(home=home, site_modules=testmodules.MODULEFILES, family=FAMILY)
    bashrc.write_text(hostile + (saved.decode() if saved else ""))
    owner = f"{pw.pw_uid}:{pw.pw_gid}"
    subprocess.run(["chown", "-R", owner, *map(str, made), str(bashrc)], check=True)
    try:
        yield home
    finally:
        if saved is None:
            bashrc.unlink(missing_ok=True)
        else:
            bashrc.write_bytes(saved)
        for d in made:
            subprocess.run(["rm", "-rf", str(d)], check=True)


def test_users_own_venv_kernel(site_file):
    # The recipe of docs/user-guide.md, as the user: their venv's Python installs a kernelspec
    # into ~/.local/share/jupyter/kernels, which their server (and kernels test) then finds.
    venv_python = testmodules.venv_python(testmodules.GOOD[1])
    home = Path(pwd.getpwnam(USER).pw_dir)
    own = home / ".local" / "share" / "jupyter" / "kernels" / "my-venv"
    try:
        r = _run(
            "sudo",
            "-u",
            USER,
            "-i",
            "--",
            str(venv_python),
            "-m",
            "ipykernel",
            "install",
            "--user",
            "--name",
            "my-venv",
            "--display-name",
            "My venv",
        )
        assert r.returncode == 0, r.stderr
        r = _run(_hpchub(), f"--config={site_file}", "kernels", "test", "--user", USER, "my-venv")
        assert r.returncode == 0, r.stdout + r.stderr
        assert str(venv_python) in r.stdout
    finally:
        subprocess.run(["rm", "-rf", str(own)], check=True)


def test_hostile_login_environment_is_real(hostile_user):
    # Without hpchub's launcher, bob's own shell would pick the shadowing module.
    r = _run("sudo", "-u", USER, "-i", "--", "sh", "-c", 'echo "$MODULEPATH|$LOADEDMODULES"')
    modulepath, loaded = r.stdout.strip().split("|")
    assert modulepath.startswith(f"{hostile_user}/shadow-modules"), r.stdout
    assert f"{FAMILY}/3.11-a" in loaded
    r = _run("sudo", "-u", USER, "-i", "--", "python3", "-c", "pass")
    assert r.returncode == 42 and "shadow python3" in r.stderr


def test_sync_is_idempotent_and_touches_only_its_own(site_file, testbed):
    r = _run(_hpchub(), f"--config={site_file}", "kernels", "sync", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "0 changes would apply" in r.stdout, r.stdout
    kernels = load_site(site_file).kernels.kernels_dir
    stale = kernels / "module-gone-1.0"
    foreign = kernels / "hand-made"
    for d in (stale, foreign):
        d.mkdir(exist_ok=True)
        (d / "kernel.json").write_text(json.dumps({"argv": ["x"], "display_name": d.name}))
    (stale / "hpchub-kernel").write_text("made by hpchub\n")
    try:
        r = _run(_hpchub(), f"--config={site_file}", "kernels", "sync", "--dry-run")
        assert "(dry run) remove  module-gone-1.0" in r.stdout, r.stdout
        assert stale.exists()
        r = _run(_hpchub(), f"--config={site_file}", "kernels", "sync")
        assert r.returncode == 0, r.stderr
        assert "remove  module-gone-1.0" in r.stdout
        assert "hand-made" not in r.stdout
        assert not stale.exists() and foreign.exists()
        assert {p.name for p in kernels.iterdir()} >= {*GOOD, BROKEN}
    finally:
        subprocess.run(["rm", "-rf", str(stale), str(foreign)], check=True)


def test_kernels_test_as_user_with_hostile_bashrc(hostile_user, site_file):
    r = _run(_hpchub(), f"--config={site_file}", "kernels", "test", "--user", USER)
    assert r.returncode == 1, r.stdout + r.stderr  # the broken module fails
    out = r.stdout
    assert f"as {USER} on" in out
    for name, version in GOOD.items():
        line = next(ln for ln in out.splitlines() if ln.startswith("PASS") and name in ln)
        assert str(testmodules.venv_python(version)) in line
        assert re.search(r"\d+\.\d\d s", line)
    line = next(ln for ln in out.splitlines() if BROKEN in ln)
    assert line.startswith("FAIL")
    assert f'module "{FAMILY}/broken" cannot be loaded' in line
    assert "hpctest-missing/1.0" in line
    line = next(ln for ln in out.splitlines() if R_KERNEL in ln)
    assert line.startswith("PASS") and "/usr/lib/R" in line, line
    assert "PASS  python3 " in out  # python3_module: the testbed points it at 3.11-b
    assert "4 passed, 1 failed" in out


def test_kernels_test_in_slurm_as_user(hostile_user, site_file):
    r = _run(
        _hpchub(),
        f"--config={site_file}",
        "kernels",
        "test",
        "--user",
        USER,
        "--in-slurm",
        *GOOD,
        R_KERNEL,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"in Slurm job \d+", r.stdout), r.stdout
    assert "3 passed, 0 failed" in r.stdout


def _start_kernel(c: HubClient, name: str) -> str:
    r = c.s.post(c.server_url() + "api/kernels", headers=c._auth(), json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_server_kernels_panel_and_nbdime(hostile_user, testbed, site_file):
    c = HubClient(testbed["hub_url"])
    u = next(x for x in testbed["users"] if x["name"] == USER)
    assert c.login(u["name"], u["password"]).status_code == 302
    c.make_token()
    for name in list(c.model().get("servers", {})):
        c.stop(name)
        c.wait_stopped(name)
    assert c.start().status_code in (201, 202)
    try:
        c.wait_ready()
        base = c.server_url()
        auth = c._auth()

        # The Lmod panel's server API lists the site's test modules.
        r = c.s.get(base + "module/modules", headers=auth, timeout=60)
        assert r.status_code == 200, r.text
        avail = r.json()
        for v in (*testmodules.GOOD, testmodules.BROKEN):
            assert f"{FAMILY}/{v}" in avail, avail
        # ... and the user uses it to switch to a private tree and load the shadowing module:
        # that changes the server's environment, which kernels inherit.
        r = c.s.post(
            base + "module/paths", headers=auth, json={"paths": [f"{hostile_user}/shadow-modules"]}
        )
        assert r.status_code == 200, r.text
        r = c.s.post(base + "module", headers=auth, json={"modules": [f"{FAMILY}/3.11-a"]})
        assert r.status_code == 200, r.text

        # The kernelspecs come from the shared folder on JUPYTER_PATH.
        specs = c.s.get(base + "api/kernelspecs", headers=auth, timeout=30).json()["kernelspecs"]
        assert {*GOOD, BROKEN, R_KERNEL} <= set(specs), sorted(specs)
        assert specs[R_KERNEL]["spec"]["language"] == "R"
        assert specs[BROKEN]["spec"]["display_name"] == "Test Python broken"
        # 'python3', the name most notebooks ask for, is the site's chosen module, not the
        # single-user environment's own Python.
        assert specs["python3"]["spec"]["display_name"] == f"Python 3 ({FAMILY}/3.11-b)"
        out = run_in_kernel(base, _start_kernel(c, "python3"), c.token, PROBE, 60).split()
        assert out == [str(testmodules.venv_python("3.11-b")), "3.11-b"], out

        # Each module kernel runs its own module's Python, whatever the server's state.
        for name, version in GOOD.items():
            kid = _start_kernel(c, name)
            out = run_in_kernel(base, kid, c.token, PROBE, 60).split()
            assert out == [str(testmodules.venv_python(version)), version], out

        # The R module's kernel runs R code with the module's R (not /usr/bin/R, not the
        # shadowing R that bob's ~/.bashrc and his Lmod panel put first on the server's PATH).
        out = run_in_kernel(base, _start_kernel(c, R_KERNEL), c.token, R_PROBE, 120).split()
        assert out == [str(testmodules.R_BIN / "R"), testmodules.R_VERSION, "55"], out

        # The broken one answers every cell with one clear message, and does not restart.
        kid = _start_kernel(c, BROKEN)
        for _ in range(2):
            with pytest.raises(AssertionError) as err:
                run_in_kernel(base, kid, c.token, "print(1)", 60)
            msg = str(err.value)
            assert f'module "{FAMILY}/broken" cannot be loaded' in msg, msg
            assert "hpctest-missing/1.0" in msg
        model = c.s.get(base + f"api/kernels/{kid}", headers=auth, timeout=30).json()
        assert model["execution_state"] in ("idle", "busy"), model

        # nbdime: server extension, lab extension, and git drivers in any repository.
        r = c.s.post(base + "nbdime/api/isgit", headers=auth, json={"path": ""}, timeout=30)
        assert r.status_code == 200 and r.json()["is_git"] is False, r.text
        page = lab_page_config(c)
        assert "@jupyterlab/extensionmanager-extension" in page["disabledExtensions"]
        federated = {e["name"] for e in page["federated_extensions"]}
        assert {"nbdime-jupyterlab", "@cmd-ntrf/jupyterlab-lmod", "@jupyterlab/git"} <= federated
        kid = _start_kernel(c, next(iter(GOOD)))
        diff = run_in_kernel(base, kid, c.token, GIT_DIFF_PROBE, 120)
        assert "## modified /cells/0/source:" in diff, diff
    finally:
        c.stop()
        c.wait_stopped()


GIT_DIFF_PROBE = r"""
import json, os, subprocess, tempfile
def nb(src):
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "id": "c1",
        "metadata": {}, "outputs": [], "source": src}], "metadata": {}, "nbformat": 4,
        "nbformat_minor": 5})
d = tempfile.mkdtemp()
git = ["git", "-C", d, "-c", "user.name=t", "-c", "user.email=t@example.org"]
subprocess.run(git + ["init", "-q"], check=True)
open(os.path.join(d, "a.ipynb"), "w").write(nb("x = 1"))
subprocess.run(git + ["add", "a.ipynb"], check=True)
subprocess.run(git + ["commit", "-q", "-m", "one"], check=True)
open(os.path.join(d, "a.ipynb"), "w").write(nb("x = 2"))
print(subprocess.run(git + ["diff"], capture_output=True, text=True).stdout)
"""
