"""Issue 7 on the real test bed: the software installed without root, the memory factor in
Slurm's cgroups, hpchub install on a live deployment, hpchub doctor against it."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hpchub.config.loader import load_site
from hpchub.deploy.secrets import read_proxy_token
from hpchub.deploy.software import writable_by_others

from .conftest import allowed_ram_percent
from .hubhost import hub_cmd

HPCHUB = str(Path(sys.executable).with_name("hpchub"))
REPO = Path(__file__).resolve().parents[2]


def hpchub(
    testbed, *args: str, user: str | None = None, on_hub: bool = False
) -> subprocess.CompletedProcess:
    argv = [HPCHUB, "--config", testbed["site_file"], *args]
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    if on_hub:
        argv = hub_cmd(testbed, *argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=900)


# -- the software, without root ----------------------------------------------------------------


@pytest.fixture
def alice_tmp():
    pw = pwd.getpwnam("alice")
    d = Path(tempfile.mkdtemp(prefix="hpchub-software-"))
    os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chmod(d, 0o755)  # noqa: S103 - like a folder on the shared filesystem
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_software_installs_as_a_normal_user(alice_tmp):
    root = alice_tmp / "sw"
    r = subprocess.run(
        ["runuser", "-u", "alice", "--", HPCHUB, "install", "--software", "--prefix", str(root),
         "--python", "/usr/bin/python3", "--from", str(REPO)],
        capture_output=True, text=True, timeout=900, cwd="/",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    alice = pwd.getpwnam("alice").pw_uid
    prefix = root / "current"  # singleuser.prefix: the link to the checked release
    first = os.readlink(prefix)
    assert first.startswith("releases/")
    assert prefix.resolve().stat().st_uid == alice
    assert list(writable_by_others(root)) == []
    # Everyone can run it (the servers run from it on the compute nodes), nobody else can change it.
    bob = subprocess.run(
        ["runuser", "-u", "bob", "--", str(prefix / "bin/python"), "-c",
         "import jupyterhub, hpchub; print(jupyterhub.__version__)"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bob.returncode == 0, bob.stderr
    assert tuple(int(x) for x in bob.stdout.strip().split(".")[:3]) >= (5, 4, 5)
    tamper = subprocess.run(
        ["runuser", "-u", "bob", "--", "touch", str(prefix / "bin/jupyterhub-singleuser")],
        capture_output=True,
    )
    assert tamper.returncode != 0
    record = json.loads((prefix / ".hpchub-software.json").read_text())
    assert record["installed_by"] == alice and record["python"] == "/usr/bin/python3"
    # Running it again builds a second release beside the first and switches to it.
    again = subprocess.run(
        ["runuser", "-u", "alice", "--", HPCHUB, "install", "--software", "--prefix", str(prefix),
         "--from", str(REPO)],
        capture_output=True, text=True, timeout=900, cwd="/",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert os.readlink(root / "previous") == first != os.readlink(prefix)


def test_software_refuses_an_old_environment_or_a_root_others_may_write(alice_tmp):
    (alice_tmp / "pyvenv.cfg").write_text("home = /usr/bin\n")  # an in-place environment
    r = subprocess.run(
        ["runuser", "-u", "alice", "--", HPCHUB, "install", "--software", "--prefix", str(alice_tmp)],
        capture_output=True, text=True, cwd="/",
    )  # fmt: skip
    assert r.returncode == 1 and "set singleuser.prefix to NEW/current" in r.stderr
    (alice_tmp / "pyvenv.cfg").unlink()
    os.chmod(alice_tmp, 0o777)  # noqa: S103 - the attack: anyone could swap a release
    r = subprocess.run(
        ["runuser", "-u", "alice", "--", HPCHUB, "install", "--software", "--prefix", str(alice_tmp)],
        capture_output=True, text=True, cwd="/",
    )  # fmt: skip
    assert r.returncode == 1 and "writable by no one else" in r.stderr
    assert not (alice_tmp / "releases").exists()


# -- memory above the request, while the node has it ------------------------------------------

MEMORY_JOB = r"""#!/bin/bash
python3 - <<'EOF'
import os, sys
path = [l.split(':', 2)[2].strip() for l in open('/proc/self/cgroup') if ':memory:' in l][0]
while path and not os.path.basename(path).startswith('job_'):
    path = os.path.dirname(path)
base = '/sys/fs/cgroup/memory' + path
print('limits', open(base + '/memory.soft_limit_in_bytes').read().strip(),
      open(base + '/memory.limit_in_bytes').read().strip(), flush=True)
block = b'x' * (64 * 1024 * 1024)
held = [bytearray(block) for _ in range(int(sys.argv[1]) // 64)]
print('held', len(held) * 64, 'MiB', flush=True)
EOF
"""


def _run_job(tmp: Path, mib: int) -> tuple[str, str]:
    """sbatch --wait a 256M job as alice that holds ``mib`` MiB; (final state, its output)."""
    script = tmp / f"mem-{mib}.sh"
    script.write_text(MEMORY_JOB.replace("sys.argv[1]", str(mib)))
    out = tmp / f"mem-{mib}.out"
    r = subprocess.run(
        ["runuser", "-u", "alice", "--", "sbatch", "--wait", "--parsable", "--partition=jupyter-short",
         "--mem=256M", "--time=5", f"--output={out}", str(script)],
        capture_output=True, text=True, timeout=300, cwd=str(tmp),
    )  # fmt: skip
    job = r.stdout.strip().split(";")[0]
    state = (
        subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
        .stdout.split("JobState=")[1]
        .split()[0]
    )
    return state, out.read_text() if out.exists() else ""


def test_jobs_may_use_the_memory_factor_but_not_more(testbed, alice_tmp):
    if testbed["memory_enforcement"] != "cgroup":
        pytest.skip("memory is not enforced with cgroups on this machine")
    factor = testbed["memory_factor"]
    assert allowed_ram_percent() == factor * 100, (
        f"Slurm runs AllowedRAMSpace={allowed_ram_percent()}%, the site says {factor}x: another "
        "test bed rewrote cgroup.conf; run `hpchub-testbed up` again"
    )
    state, out = _run_job(alice_tmp, 1024)  # 4x the request
    assert state == "COMPLETED", out
    soft, hard = (int(x) for x in out.split("limits")[1].split()[:2])
    assert soft == 256 * 1024**2  # the request: reclaimed first under memory pressure
    assert hard == int(256 * factor) * 1024**2
    assert "held 1024 MiB" in out
    state, out = _run_job(alice_tmp, 1536)  # 6x the request
    assert state == "OUT_OF_MEMORY", out
    assert "held 1536 MiB" not in out and re.search("oom[-_]kill", out)  # 24.11: oom_kill


# -- install on the live deployment --------------------------------------------------------------


def test_install_dry_run_on_the_live_testbed_changes_nothing(testbed):
    r = hpchub(testbed, "install", "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith(("create", "update"))]
    assert lines == []
    assert "dry run: nothing was changed" in r.stdout


def test_install_refuses_a_broken_vhost_and_keeps_the_old_one(testbed, tmp_path):
    site = load_site(testbed["site_file"]).model_dump(mode="json")
    site["deploy"]["web"]["tls_certificate"] = str(tmp_path / "missing.pem")
    broken = tmp_path / "site.yaml"
    import yaml

    broken.write_text(yaml.safe_dump(site))
    vhost = Path(site["deploy"]["web"]["vhost_file"])
    before = vhost.read_text()
    r = subprocess.run([HPCHUB, "--config", str(broken), "install"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "failed apachectl -t" in r.stderr and "missing.pem" in r.stderr
    assert vhost.read_text() == before


# -- doctor ----------------------------------------------------------------------------------------


def _doctor(testbed, *args) -> tuple[int, list[dict]]:
    # As an admin on the hub's host: doctor asks the proxy and Apache there.
    r = hpchub(testbed, "doctor", "--json", *args, on_hub=True)
    return r.returncode, json.loads(r.stdout)


def test_doctor_finds_the_live_testbed_healthy(testbed):
    code, findings = _doctor(testbed)
    errors = [f for f in findings if f["severity"] == "error"]
    assert code == 0 and errors == []
    ok = {f["check"] for f in findings if f["severity"] == "ok"}
    for check in ("slurm", "secrets", "single-user environment", "user configuration",
                  "hub process", "proxy process", "PAM", "TLS", "installed files"):  # fmt: skip
        assert check in ok, (check, findings)
    # Other test beds on this machine share the hub user: their helper rules are extra, not wrong.
    assert all(f["severity"] in ("ok", "warning") for f in findings if f["check"] == "sudo rules")


def test_doctor_notices_a_readable_secret(testbed):
    token_file = Path(testbed["proxy_token_file"])
    token = read_proxy_token(token_file)
    os.chmod(token_file, 0o644)
    try:
        code, findings = _doctor(testbed)
    finally:
        os.chmod(token_file, 0o600)
    assert code == 1
    bad = [f for f in findings if f["severity"] == "error"]
    assert len(bad) == 1 and "others can read it" in bad[0]["what"] and bad[0]["fix"]
    assert token not in json.dumps(findings)


@pytest.fixture
def mallory_home():
    """The outsider's home, with the things that break Jupyter; restored afterwards."""
    pw = pwd.getpwnam("mallory")
    home = Path(pw.pw_dir)
    made = []
    files = {
        ".bashrc": "module load gcc/12\nexport MODULEPATH=$HOME/modules:$MODULEPATH\n"
        "# >>> conda initialize >>>\n__conda_setup=x\n",
        ".jupyter/jupyter_server_config.py": "c.ServerApp.disable_check_xsrf = True\n",
        ".local/lib/python3.11/site-packages/traitlets/__init__.py": "",
    }
    saved = {}
    for rel, text in files.items():
        p = home / rel
        if p.exists():
            saved[p] = p.read_bytes()
        for parent in reversed(p.relative_to(home).parents):
            d = home / parent
            if not d.exists():
                d.mkdir()
                os.chown(d, pw.pw_uid, pw.pw_gid)
                made.append(d)
        p.write_text(text)
        os.chown(p, pw.pw_uid, pw.pw_gid)
        made.append(p)
    yield home
    for p in reversed(made):
        if p in saved:
            p.write_bytes(saved[p])
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def test_doctor_user_names_what_breaks_one_account(testbed, mallory_home):
    code, findings = _doctor(testbed, "--user", "mallory")
    assert code == 1  # mallory may not log in at all
    by_check = {f["check"]: f for f in findings}
    assert "may not log in" in by_check["account"]["what"]
    assert "line 1: module load gcc/12" in by_check["shell start-up files"]["what"]
    assert "jupyter_server_config.py" in by_check["~/.jupyter"]["what"]
    assert "traitlets" in by_check["~/.local packages"]["what"]
    assert by_check["conda"]["severity"] == "warning"
    assert all(f["fix"] for f in findings if f["severity"] in ("warning", "error"))


def test_doctor_user_reads_files_as_that_user(testbed, mallory_home):
    # A link to a root-only file: doctor, though root, reads mallory's files as mallory.
    bashrc = mallory_home / ".bashrc"
    saved = bashrc.read_bytes()
    bashrc.unlink()
    secret = Path(tempfile.mkdtemp()) / "root-only"
    secret.write_text("module load from-roots-file\n")
    os.chmod(secret.parent, 0o700)
    bashrc.symlink_to(secret)
    try:
        _, findings = _doctor(testbed, "--user", "mallory")
    finally:
        bashrc.unlink()
        bashrc.write_bytes(saved)
        shutil.rmtree(secret.parent)
    assert "from-roots-file" not in json.dumps(findings)
