"""Issue 12: what an instructor or another student can do to a course's staging, tried for real.

Each test writes a site file with one extra course (a folder source or a target that the
attacker can reach), lets the attacker (bob) prepare the trap as bob, then runs
`hpchub course stage` for the victim (alice) exactly as an instructor would: as the hub user,
through the hub's sudo rule and the staging helper. No server is started.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

from hpchub.config.loader import load_site

VICTIM = "alice"
ATTACKER = "bob"


def as_user(user: str, *argv: str) -> None:
    subprocess.run(["/usr/sbin/runuser", "-u", user, "--", *argv], check=True)


@pytest.fixture
def lab(testbed):
    """A scratch area: a folder of bob's, a shared sticky parent, the extra site file."""
    root = Path(tempfile.mkdtemp(prefix="hpchub-attack-", dir="/tmp"))
    root.chmod(0o755)
    bobs = root / "bob"
    bobs.mkdir()
    shutil.chown(bobs, ATTACKER, ATTACKER)
    shared = root / "scratch"
    shared.mkdir()
    shared.chmod(0o1777)
    site = load_site(testbed["site_file"])
    yield {
        "root": root,
        "bob": bobs,
        "shared": shared,
        "site": site,
        "site_file": testbed["site_file"],
        "data_dir": Path(site.hub.data_dir),
    }
    shutil.rmtree(root, ignore_errors=True)


def hpchub(lab, course: dict, *args: str) -> subprocess.CompletedProcess:
    """`hpchub ARGS` with ``course`` added to the testbed's site file (alice takes it, bob
    teaches it)."""
    data = yaml.safe_load(Path(lab["site_file"]).read_text())
    course = {"title": "Attack", "users": [VICTIM], "instructors": [ATTACKER], **course}
    data["courses"] = [*data.get("courses", []), course]
    site_file = lab["root"] / "hpchub.yaml"
    site_file.write_text(yaml.safe_dump(data))
    site_file.chmod(0o644)
    exe = Path(sys.executable).with_name("hpchub")
    return subprocess.run(
        [str(exe), "--config", str(site_file), *args], capture_output=True, text=True
    )


def stage_with(lab, course: dict) -> tuple[subprocess.CompletedProcess, dict | None]:
    """`hpchub course stage NAME --user alice`, and alice's stored report."""
    out = hpchub(lab, course, "course", "stage", course["name"], "--json", "--user", VICTIM)
    report_file = lab["data_dir"] / "courses" / "reports" / course["name"] / f"{VICTIM}.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    return out, report


def course_name() -> str:
    return "atk" + uuid.uuid4().hex[:8]


def _staged_names(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")} if folder.exists() else set()


def _cleanup_reports(lab, name: str) -> None:
    shutil.rmtree(lab["data_dir"] / "courses" / "reports" / name, ignore_errors=True)
    shutil.rmtree(lab["data_dir"] / "courses" / "cache" / name, ignore_errors=True)


HUB_SECRETS = {"jupyterhub_cookie_secret", "jupyterhub.sqlite"}


# -- 1. a course source that leads to the hub's own folders ------------------------------------
@pytest.mark.parametrize("where", ["root", "subdir", "intermediate"])
def test_an_instructors_link_never_leads_the_hub_to_its_secrets(lab, where):
    name = course_name()
    target = lab["shared"] / VICTIM / name
    data_dir = lab["data_dir"]
    if where == "root":
        as_user(ATTACKER, "ln", "-s", str(data_dir), str(lab["bob"] / "course"))
        source = {"path": str(lab["bob"] / "course")}
    elif where == "subdir":
        as_user(ATTACKER, "ln", "-s", str(data_dir), str(lab["bob"] / "materials"))
        source = {"path": str(lab["bob"]), "subdir": "materials"}
    else:
        as_user(ATTACKER, "ln", "-s", str(data_dir.parent), str(lab["bob"] / "up"))
        source = {"path": str(lab["bob"] / "up" / data_dir.name)}
    as_user(VICTIM, "mkdir", "-p", str(lab["shared"] / VICTIM))
    try:
        out, report = stage_with(
            lab, {"name": name, "source": source, "target": f"{lab['shared']}/{{user}}/{name}"}
        )
        staged = _staged_names(target)
        assert not staged & HUB_SECRETS, f"the hub's secrets were staged: {sorted(staged)}"
        assert report is not None, out.stdout + out.stderr
        assert report["state"] in ("unavailable", "failed"), report
        assert "symbolic link" in report["problem"], report["problem"]
        assert "Traceback" not in out.stderr
    finally:
        _cleanup_reports(lab, name)


def test_the_hubs_own_folders_are_refused_as_a_source(lab):
    course = {"name": course_name(), "source": {"path": str(lab["data_dir"])}}
    out = hpchub(lab, course, "config", "validate")
    assert out.returncode == 2, out.stdout
    assert "hub's own" in out.stderr and str(lab["data_dir"]) in out.stderr, out.stderr


# -- 2. a target in a shared parent taken over by another student -------------------------------
def _shared_target_course(lab, name: str) -> dict:
    """A course of plain materials, staged to SHARED/{user}/NAME."""
    folder = lab["bob"] / "real"
    as_user(ATTACKER, "mkdir", str(folder))
    as_user(ATTACKER, "sh", "-c", f"echo hello > {folder}/lab1.md")
    return {
        "name": name,
        "source": {"path": str(folder)},
        "target": f"{lab['shared']}/{{user}}/{name}",
    }


def test_a_victims_folder_created_first_by_another_student_is_refused(lab):
    name = course_name()
    victim_home = Path(os.path.expanduser(f"~{VICTIM}"))
    keep = victim_home / f"keep-{name}.txt"
    as_user(VICTIM, "sh", "-c", f"echo precious > {keep}")
    digest = hashlib.sha256(keep.read_bytes()).hexdigest()
    folder = lab["shared"] / VICTIM / name
    # bob makes alice's folder, with a manifest pointing outside it and a planted file.
    as_user(ATTACKER, "mkdir", "-p", "-m", "777", str(folder / ".hpchub"))
    as_user(ATTACKER, "chmod", "777", str(lab["shared"] / VICTIM))
    rel_out = os.path.relpath(keep, folder)
    manifest = {
        "version": 1,
        "course": name,
        "revision": None,
        "files": {
            rel_out: {"sha256": digest, "local": [digest, keep.stat().st_size, 0]},
            "lab1.md": {"sha256": "0" * 64, "local": ["0" * 64, 1, 0]},
        },
        "conflicts": {},
    }
    (lab["root"] / "m.json").write_text(json.dumps(manifest))
    as_user(ATTACKER, "cp", str(lab["root"] / "m.json"), str(folder / ".hpchub/manifest.json"))
    as_user(
        ATTACKER, "sh", "-c", f"echo 'bob was here' > {folder}/lab1.md; chmod 666 {folder}/lab1.md"
    )
    as_user(ATTACKER, "chmod", "777", str(folder / ".hpchub"))
    try:
        course = _shared_target_course(lab, name)
        out, report = stage_with(lab, course)
        assert keep.exists(), "a file outside the course folder was deleted"
        assert report is not None, out.stdout + out.stderr
        assert "lab1.md" not in report["files"]["kept"], report
        assert report["state"] == "failed", report
        assert f"belongs to {ATTACKER}, not to {VICTIM}" in report["problem"], report
        # The admin sees why in `hpchub course status`.
        st = hpchub(lab, course, "course", "status", name)
        line = next(ln for ln in st.stdout.splitlines() if ln.startswith(VICTIM + " "))
        assert "failed" in line and ATTACKER in line, st.stdout
    finally:
        keep.unlink(missing_ok=True)
        _cleanup_reports(lab, name)


def test_a_link_planted_as_the_victims_folder_is_refused(lab):
    name = course_name()
    trap = lab["bob"] / "trap"
    as_user(ATTACKER, "mkdir", "-m", "777", str(trap))
    as_user(ATTACKER, "chmod", "755", str(lab["bob"]))
    as_user(ATTACKER, "ln", "-s", str(trap), str(lab["shared"] / VICTIM))
    try:
        course = _shared_target_course(lab, name)
        out, report = stage_with(lab, course)
        assert not (trap / name).exists(), f"staged into bob's folder: {_staged_names(trap)}"
        assert report is not None, out.stdout + out.stderr
        assert report["state"] == "failed", report
        assert "symbolic link" in report["problem"], report
    finally:
        _cleanup_reports(lab, name)


def test_config_validate_warns_about_a_target_in_a_shared_parent(lab):
    target = f"{lab['shared']}/{{user}}/labs"
    course = {"name": course_name(), "source": {"path": str(lab["bob"])}, "target": target}
    out = hpchub(lab, course, "config", "validate")
    assert out.returncode == 0, out.stderr
    warnings = [ln for ln in out.stderr.splitlines() if ": warning: " in ln]
    assert len(warnings) == 1 and f"shared folder {lab['shared']}" in warnings[0], out.stderr
