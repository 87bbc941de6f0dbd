"""Issue 8 end to end: course materials staged into a student's folder at spawn, as the student.

The testbed's site file gives the courses `workshop` (a local git repository) and `handbook` (a
local folder) to the first demo user only; the second demo user is the non-member. Each test
rewrites the materials, clears the student's copy and the hub's reports, then spawns for real
(PAM login, Slurm job, kernel) and looks at the files as the student sees them.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hpchub.config.loader import load_site
from hpchub.core.coursepaths import expand_target
from hpchub_testbed.courses import HANDBOOK_FILES, WORKSHOP_FILES, commit, write_files

INTRO_V2 = '{"cells": [], "metadata": {"v": 2}, "nbformat": 4, "nbformat_minor": 5}\n'
ANSWERS = '{"cells": [], "metadata": {"mine": true}, "nbformat": 4, "nbformat_minor": 5}\n'


class Course:
    """One course of the testbed: its materials, a student's copy, the hub's report."""

    def __init__(self, site, name: str, student: str):
        self.site = site
        self.conf = next(c for c in site.courses if c.name == name)
        self.name = name
        self.student = student
        self.target = self.target_of(student)
        # The same folder as the student's server sees it (its working directory is the home).
        self.rel = str(self.target.relative_to(pwd.getpwnam(student).pw_dir))
        self.data = Path(site.hub.data_dir) / "courses"

    def target_of(self, user: str) -> Path:
        return expand_target(self.conf.target_template, user, pwd.getpwnam(user).pw_dir)

    @property
    def source(self) -> Path:
        return Path(self.conf.source.git or self.conf.source.path)

    def publish(self, files: dict[str, str | None], message: str = "update") -> None:
        """The instructor changes the materials."""
        write_files(self.source, files)
        if self.conf.source.git:
            commit(self.source, message)

    def report(self, user: str | None = None) -> dict | None:
        path = self.data / "reports" / self.name / f"{user or self.student}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def file(self, rel: str) -> Path:
        return self.target / rel

    def reset(self, baseline: dict[str, str]) -> None:
        """Materials back to the baseline; no student copy; no reports; the hub's cache kept."""
        current = {
            str(p.relative_to(self.source))
            for p in self.source.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(self.source).parts
        }
        self.publish({**dict.fromkeys(current - set(baseline)), **baseline}, "baseline")
        shutil.rmtree(self.target, ignore_errors=True)
        for user in (self.student, "bob"):
            (self.data / "reports" / self.name / f"{user}.json").unlink(missing_ok=True)


@pytest.fixture
def site(testbed):
    return load_site(testbed["site_file"])


@pytest.fixture
def workshop(site, testbed):
    c = Course(site, "workshop", testbed["users"][0]["name"])
    c.reset(WORKSHOP_FILES)
    yield c
    if not c.source.exists() and c.source.with_name("workshop.moved").exists():
        c.source.with_name("workshop.moved").rename(c.source)
    c.reset(WORKSHOP_FILES)


@pytest.fixture
def handbook(site, testbed):
    c = Course(site, "handbook", testbed["users"][0]["name"])
    c.reset(HANDBOOK_FILES)
    yield c
    c.reset(HANDBOOK_FILES)


def _start(client) -> None:
    # A named profile: with none, the hub reuses the user's last choice, whatever test made it.
    r = client.start(options={"profile": "small-long"})
    assert r.status_code in (201, 202), r.text
    client.wait_ready()


def _restart(client) -> None:
    assert client.stop().status_code in (202, 204)
    client.wait_stopped()
    _start(client)


def _hpchub(site_file: str, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("hpchub")
    return subprocess.run(
        [str(exe), "--config", site_file, "course", *args], capture_output=True, text=True
    )


def test_first_staging_as_the_student(alice, workshop, handbook):
    _start(alice)
    uid = pwd.getpwnam(workshop.student).pw_uid
    for rel in WORKSHOP_FILES:
        st = workshop.file(rel).stat()
        assert st.st_uid == uid and (st.st_mode & 0o777) == 0o644, rel
    assert (workshop.target.stat().st_mode & 0o777) == 0o700
    assert workshop.target.stat().st_uid == uid
    r = workshop.report()
    assert r["state"] == "ok" and sorted(r["files"]["added"]) == sorted(WORKSHOP_FILES)
    assert handbook.report()["files"]["added"] == ["handbook.md"]
    # The server, running as the student in the Slurm job, sees them.
    out = alice.run_code(f"print(open('{workshop.rel}/README.md').read())")
    assert out == WORKSHOP_FILES["README.md"] + "\n"


def test_restaging_brings_updates_and_a_student_edit_survives(alice, workshop, handbook):
    _start(alice)
    alice.run_code(f"open('{workshop.rel}/notebooks/intro.ipynb', 'w').write({ANSWERS!r})")
    workshop.publish({"README.md": "# Demo workshop, day 2\n", "notebooks/day2.ipynb": INTRO_V2})
    handbook.publish({"handbook.md": "# Cluster handbook v2\n"})
    _restart(alice)
    r = workshop.report()
    assert r["state"] == "ok", r
    assert r["files"]["updated"] == ["README.md"]
    assert r["files"]["added"] == ["notebooks/day2.ipynb"]
    assert r["files"]["kept"] == ["notebooks/intro.ipynb"]
    assert workshop.file("README.md").read_text() == "# Demo workshop, day 2\n"
    assert workshop.file("notebooks/intro.ipynb").read_text() == ANSWERS
    assert handbook.file("handbook.md").read_text() == "# Cluster handbook v2\n"
    assert handbook.report()["files"]["updated"] == ["handbook.md"]


def test_a_conflict_is_reported_to_the_student(alice, workshop, testbed):
    _start(alice)
    alice.run_code(f"open('{workshop.rel}/notebooks/intro.ipynb', 'w').write({ANSWERS!r})")
    workshop.publish({"notebooks/intro.ipynb": INTRO_V2})
    _restart(alice)
    assert workshop.file("notebooks/intro.ipynb").read_text() == ANSWERS
    assert workshop.file("notebooks/intro.upstream.ipynb").read_text() == INTRO_V2
    r = workshop.report()
    assert r["state"] == "conflicts"
    assert r["conflicts"] == [
        {"path": "notebooks/intro.ipynb", "upstream_copy": "notebooks/intro.upstream.ipynb"}
    ]
    # What the student finds in their folder, read from their own server.
    note = alice.run_code(f"print(open('{workshop.rel}/HPCHUB-STAGING.md').read())")
    assert "`notebooks/intro.ipynb` | `notebooks/intro.upstream.ipynb`" in note
    # And on their courses page in the hub.
    page = alice.s.get(testbed["hub_url"] + "/hub/courses")
    assert page.status_code == 200
    assert "notebooks/intro.upstream.ipynb" in page.text and "Demo workshop" in page.text
    api = alice.api("GET", "/hpchub/courses").json()["courses"]
    assert {c["course"]: c["state"] for c in api} == {"workshop": "conflicts", "handbook": "ok"}
    # The instructor sees it too.
    out = _hpchub(testbed["site_file"], "status", "workshop")
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith(workshop.student + " "))
    assert "running (job" in line and "1 conflict" in line


def test_an_instructor_restages_one_student(alice, workshop, testbed):
    _start(alice)
    workshop.publish({"README.md": "# Fixed a typo\n"})
    out = _hpchub(testbed["site_file"], "stage", "workshop", "--user", workshop.student)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{workshop.student}: ok: 1 updated" in out.stdout
    # Written by the student's uid, and seen by the running server without a restart.
    assert workshop.file("README.md").stat().st_uid == pwd.getpwnam(workshop.student).pw_uid
    assert alice.run_code(f"print(open('{workshop.rel}/README.md').read())") == "# Fixed a typo\n\n"
    # Everyone who started, in one go (after a fix pushed mid-workshop).
    workshop.publish({"README.md": "# Fixed another typo\n"})
    out = _hpchub(testbed["site_file"], "stage", "workshop", "--started")
    assert out.returncode == 0 and out.stdout == f"{workshop.student}: ok: 1 updated\n", out
    # The hub user wrote the report, as at spawn.
    report_file = workshop.data / "reports" / "workshop" / f"{workshop.student}.json"
    assert pwd.getpwuid(report_file.stat().st_uid).pw_name == testbed["hub_user"]


def test_a_non_member_gets_nothing(bob, workshop, handbook, testbed):
    _start(bob)
    assert not workshop.target_of("bob").exists()
    assert not handbook.target_of("bob").exists()
    assert workshop.report("bob") is None and handbook.report("bob") is None
    assert bob.api("GET", "/hpchub/courses").json() == {"courses": []}
    assert "You take no course" in bob.s.get(testbed["hub_url"] + "/hub/courses").text
    out = _hpchub(testbed["site_file"], "stage", "workshop", "--user", "bob")
    assert out.returncode == 2 and "not members of course 'workshop': bob" in out.stderr
    assert not workshop.target_of("bob").exists()


def test_an_unreachable_source_still_starts_the_server_and_tells_the_student(
    alice, workshop, handbook
):
    # No cached copy, and the repository is gone.
    shutil.rmtree(workshop.data / "cache" / "workshop", ignore_errors=True)
    workshop.source.rename(workshop.source.with_name("workshop.moved"))
    _start(alice)
    r = workshop.report()
    assert r["state"] == "unavailable" and "could not fetch" in r["problem"]
    note = alice.run_code(f"print(open('{workshop.rel}/HPCHUB-STAGING.md').read())")
    assert "could not be fetched" in note and "started anyway" in note
    # The other course was not held up.
    assert handbook.report()["state"] == "ok"
    # Once the source is back, the next start stages it and the note goes away.
    workshop.source.with_name("workshop.moved").rename(workshop.source)
    _restart(alice)
    assert workshop.report()["state"] == "ok"
    assert not workshop.file("HPCHUB-STAGING.md").exists()
    assert os.path.exists(workshop.file("README.md"))


def test_course_status_shows_only_this_hubs_jobs(workshop, testbed):
    """A job named like a hub's server (another hub's, or the student's own) is not listed.

    `course status` used to find servers by job name, so it showed any job named
    jupyter-USER: other hubs' servers on the same cluster, or a decoy a student submitted.
    It now finds this hub's jobs by the comment its job script sets (hpchub:HUBNAME).
    """
    student = workshop.student
    decoy = subprocess.run(
        [
            "runuser", "-u", student, "--",
            "sbatch", "--parsable", f"--job-name=jupyter-{student}",
            "--comment=hpchub:another-hub", "--partition=batch", "--time=5",
            "--mem=100M", "--output=/dev/null", "--wrap=sleep 300",
        ],
        capture_output=True, text=True, cwd="/tmp",
    )  # fmt: skip
    assert decoy.returncode == 0, decoy.stderr
    job_id = decoy.stdout.strip().split(";")[0]
    try:
        out = _hpchub(testbed["site_file"], "status", "workshop", "--json")
        assert out.returncode == 0, out.stderr
        row = next(m for m in json.loads(out.stdout)["members"] if m["user"] == student)
        assert not re.search(rf"job {job_id}\b", row["server"]), row
    finally:
        subprocess.run(["runuser", "-u", student, "--", "scancel", job_id], check=False)
