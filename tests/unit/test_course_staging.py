"""Staging for real: a git repository, the hub side and the helper over real pipes."""

from __future__ import annotations

import json
import os
import sys

import pytest

from hpchub.courses import report as rep
from hpchub.courses.paths import REPORT_FILE

from .courses_fixtures import GitRepo, LocalStager, make_site

LAB = '{"cells": ["print(1)"]}'


@pytest.fixture
def repo(tmp_path):
    r = GitRepo(tmp_path / "materials")
    r.commit({"README.md": "read me\n", "notebooks/lab1.ipynb": LAB, "data/x.csv": "1,2\n"})
    return r


@pytest.fixture
def stager(tmp_path, repo):
    return LocalStager(make_site(tmp_path, {"git": str(repo.path)}), tmp_path / "home")


async def stage(stager, user="alice"):
    return await stager.stage(stager.course("pyintro"), user)


async def test_first_staging_brings_every_file_privately(stager):
    r = await stage(stager)
    assert r["state"] == rep.OK, r
    assert sorted(r["files"]["added"]) == ["README.md", "data/x.csv", "notebooks/lab1.ipynb"]
    target = stager.target("pyintro", "alice")
    assert (target / "notebooks" / "lab1.ipynb").read_text() == LAB
    assert (target.stat().st_mode & 0o777) == 0o700
    assert ((target / "README.md").stat().st_mode & 0o777) == 0o644
    assert ((target / ".hpchub").stat().st_mode & 0o777) == 0o700
    assert not (target / REPORT_FILE).exists()
    # The hub keeps the report, private to it.
    stored = stager.store.load("pyintro", "alice")
    assert stored["state"] == rep.OK and stored["revision"] == r["revision"]
    path = stager.paths.reports / "pyintro" / "alice.json"
    assert (path.stat().st_mode & 0o777) == 0o600


async def test_restaging_brings_upstream_changes_to_untouched_files(stager, repo):
    await stage(stager)
    repo.commit({"README.md": "read me, v2\n", "new.txt": "new\n", "data/x.csv": None})
    r = await stage(stager)
    target = stager.target("pyintro", "alice")
    assert r["files"]["updated"] == ["README.md"]
    assert r["files"]["added"] == ["new.txt"]
    assert r["files"]["removed"] == ["data/x.csv"]
    assert r["unchanged"] == 1
    assert (target / "README.md").read_text() == "read me, v2\n"
    assert not (target / "data" / "x.csv").exists()
    again = await stage(stager)
    assert rep.summary(again) == "up to date"


async def test_a_student_edit_survives_restaging(stager, repo):
    await stage(stager)
    target = stager.target("pyintro", "alice")
    (target / "notebooks" / "lab1.ipynb").write_text("my answers")
    repo.commit({"README.md": "v2\n"})
    r = await stage(stager)
    assert r["files"]["kept"] == ["notebooks/lab1.ipynb"]
    assert (target / "notebooks" / "lab1.ipynb").read_text() == "my answers"
    assert (target / "README.md").read_text() == "v2\n"
    assert r["state"] == rep.OK


async def test_a_conflict_keeps_theirs_puts_upstream_beside_and_tells_them(stager, repo):
    await stage(stager)
    target = stager.target("pyintro", "alice")
    (target / "notebooks" / "lab1.ipynb").write_text("my answers")
    repo.commit({"notebooks/lab1.ipynb": '{"cells": ["print(2)"]}'})
    r = await stage(stager)
    assert r["state"] == rep.CONFLICTS
    assert r["conflicts"] == [
        {"path": "notebooks/lab1.ipynb", "upstream_copy": "notebooks/lab1.upstream.ipynb"}
    ]
    assert (target / "notebooks" / "lab1.ipynb").read_text() == "my answers"
    assert (target / "notebooks" / "lab1.upstream.ipynb").read_text() == '{"cells": ["print(2)"]}'
    text = (target / REPORT_FILE).read_text()
    assert "`notebooks/lab1.ipynb` | `notebooks/lab1.upstream.ipynb`" in text
    assert "1 conflict" in rep.summary(stager.store.load("pyintro", "alice"))
    # Still reported at every staging (a restart, an instructor's re-run) until they delete
    # the upstream copy; then the report file goes too.
    r2 = await stage(stager)
    assert r2["state"] == rep.CONFLICTS and r2["files"]["kept"] == ["notebooks/lab1.ipynb"]
    assert r2["conflicts"] == r["conflicts"]
    assert (target / REPORT_FILE).exists()
    (target / "notebooks" / "lab1.upstream.ipynb").unlink()
    r3 = await stage(stager)
    assert r3["state"] == rep.OK and r3["conflicts"] == []
    assert not (target / REPORT_FILE).exists()
    assert (target / "notebooks" / "lab1.ipynb").read_text() == "my answers"
    # A later upstream change conflicts again, and never overwrites the first copy they edited.
    (target / "notebooks" / "lab1.upstream.ipynb").write_text("notes on the new version")
    repo.commit({"notebooks/lab1.ipynb": '{"cells": ["print(3)"]}'})
    r4 = await stage(stager)
    assert r4["conflicts"] == [
        {"path": "notebooks/lab1.ipynb", "upstream_copy": "notebooks/lab1.upstream-2.ipynb"}
    ]
    assert (target / "notebooks" / "lab1.upstream.ipynb").read_text() == "notes on the new version"


async def test_a_deleted_file_comes_back_fresh(stager):
    await stage(stager)
    target = stager.target("pyintro", "alice")
    (target / "README.md").unlink()
    r = await stage(stager)
    assert r["files"]["restored"] == ["README.md"]
    assert (target / "README.md").read_text() == "read me\n"


async def test_a_file_already_there_is_never_overwritten_on_first_staging(stager):
    target = stager.target("pyintro", "alice")
    target.mkdir(parents=True)
    (target / "README.md").write_text("mine")
    r = await stage(stager)
    assert r["conflicts"][0]["path"] == "README.md"
    assert (target / "README.md").read_text() == "mine"
    assert (target / "README.upstream.md").read_text() == "read me\n"


async def test_something_in_the_way_is_reported(stager):
    target = stager.target("pyintro", "alice")
    (target / "README.md").mkdir(parents=True)
    r = await stage(stager)
    assert r["files"]["blocked"] == ["README.md"]
    assert r["state"] == rep.CONFLICTS
    assert "`README.md`" in (target / REPORT_FILE).read_text()


async def test_executable_bit_follows_upstream(stager, repo):
    (repo.path / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(repo.path / "run.sh", 0o755)  # noqa: S103 - an executable in the materials
    repo.commit({})
    await stage(stager)
    assert (stager.target("pyintro", "alice") / "run.sh").stat().st_mode & 0o777 == 0o755


async def test_unreachable_source_without_cache_tells_the_student(tmp_path):
    site = make_site(tmp_path, {"git": str(tmp_path / "nowhere.git")})
    stager = LocalStager(site, tmp_path / "home")
    r = await stage(stager)
    assert r["state"] == rep.UNAVAILABLE
    assert "could not fetch" in r["problem"]
    text = (stager.target("pyintro", "alice") / REPORT_FILE).read_text()
    assert "could not be fetched" in text and "started anyway" in text
    assert stager.store.load("pyintro", "alice")["state"] == rep.UNAVAILABLE


async def test_unreachable_source_with_cache_stages_the_last_good_revision(stager, repo):
    first = await stage(stager)
    repo.path.rename(repo.path.with_name("moved"))
    r = await stage(stager, "bob")
    assert r["state"] == rep.OK and r["revision"] == first["revision"]
    assert "could not be updated" in r["problem"]
    assert len(r["files"]["added"]) == 3
    assert "could not be updated" in (stager.target("pyintro", "bob") / REPORT_FILE).read_text()


async def test_refresh_interval_reuses_the_fetched_revision(tmp_path, repo):
    site = make_site(tmp_path, {"git": str(repo.path), "refresh_interval": "1m"})
    stager = LocalStager(site, tmp_path / "home")
    now = [1000.0]
    stager.cache.clock = lambda: now[0]
    first = await stage(stager)
    repo.commit({"README.md": "v2\n"})
    assert (await stage(stager))["revision"] == first["revision"]
    now[0] += 61
    later = await stage(stager)
    assert later["revision"] != first["revision"] and later["files"]["updated"] == ["README.md"]


async def test_subdir_and_excludes(tmp_path, repo):
    repo.commit({"course/a.ipynb": "a", "course/solutions/a.ipynb": "s", "course/x.pyc": "b"})
    site = make_site(
        tmp_path,
        {"git": str(repo.path), "subdir": "course", "exclude": ["solutions/", "*.pyc"]},
    )
    stager = LocalStager(site, tmp_path / "home")
    r = await stage(stager)
    assert r["files"]["added"] == ["a.ipynb"]


async def test_folder_source_never_follows_links(tmp_path):
    folder = tmp_path / "course"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.md").write_text("notes")
    secret = tmp_path / "secret"
    secret.write_text("hub secret")
    (folder / "leak").symlink_to(secret)
    (folder / "sub" / "leak2").symlink_to(secret)
    (folder / "linkdir").symlink_to(tmp_path)
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("x")
    stager = LocalStager(make_site(tmp_path, {"path": str(folder)}), tmp_path / "home")
    r = await stage(stager)
    assert r["files"]["added"] == ["notes.md"]
    target = stager.target("pyintro", "alice")
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == [
        "lock",
        "manifest.json",
        "notes.md",
    ]


async def test_a_target_holding_another_course_is_refused(stager, tmp_path):
    target = stager.target("pyintro", "alice")
    (target / ".hpchub").mkdir(parents=True)
    (target / ".hpchub" / "manifest.json").write_text(
        json.dumps({"version": 1, "course": "other", "files": {}})
    )
    r = await stage(stager)
    assert r["state"] == rep.FAILED and "course 'other'" in r["problem"]


async def test_a_helper_that_cannot_run_gives_a_failed_report(stager, monkeypatch):
    monkeypatch.setattr(
        stager,
        "helper_argv",
        lambda c, u: [
            sys.executable,
            "-c",
            "import sys; sys.stderr.write('sudo: a password is required\\n'); sys.exit(1)",
        ],
    )
    r = await stage(stager)
    assert r["state"] == rep.FAILED
    assert "stage-course" in r["problem"] and "sudo rule" in r["problem"]


async def test_whatever_the_helper_prints_is_sanitized(stager, monkeypatch):
    evil = {
        "state": "ok",
        "files": {"added": ["\x1b[2Jowned", 5], "kept": "nope"},
        "problem": "x" * 10000,
        "conflicts": [{"path": "a", "upstream_copy": ["b"]}, "junk"],
        "user": "root",
        "extra": "dropped",
    }
    script = f"import sys; sys.stdin.readline(); print('{{\"need\": []}}'); print({json.dumps(json.dumps(evil))})"
    monkeypatch.setattr(stager, "helper_argv", lambda c, u: [sys.executable, "-c", script])
    r = await stage(stager)
    assert r["user"] == "alice" and "extra" not in r
    assert r["files"]["added"] == [" [2Jowned"] and r["files"]["kept"] == []
    assert len(r["problem"]) == rep.MAX_TEXT
    assert r["conflicts"] == [{"path": "a", "upstream_copy": ""}]


async def test_a_helper_asking_for_unannounced_files_gets_nothing(stager, monkeypatch):
    script = 'import sys; sys.stdin.readline(); print(\'{"need": ["/etc/shadow"]}\'); sys.stdout.flush(); print(repr(sys.stdin.buffer.read()), file=sys.stderr)'
    monkeypatch.setattr(stager, "helper_argv", lambda c, u: [sys.executable, "-c", script])
    r = await stage(stager)
    assert r["state"] == rep.FAILED and "not announced" in r["problem"]


async def test_a_tag_can_be_staged(tmp_path, repo):
    repo.git("tag", "v1")
    repo.commit({"README.md": "after the tag\n"})
    stager = LocalStager(make_site(tmp_path, {"git": str(repo.path), "ref": "v1"}), tmp_path / "h")
    r = await stage(stager)
    assert r["state"] == rep.OK
    assert (stager.target("pyintro", "alice") / "README.md").read_text() == "read me\n"


async def test_a_missing_branch_is_named(tmp_path, repo):
    stager = LocalStager(
        make_site(tmp_path, {"git": str(repo.path), "ref": "nope"}), tmp_path / "h"
    )
    r = await stage(stager)
    assert r["state"] == rep.UNAVAILABLE and "nope" in r["problem"]


def test_git_reasons_are_gits_own_words():
    from hpchub.courses.sources import git_reason

    stderr = (
        "fatal: '/srv/x' does not appear to be a git repository\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\nand the repository exists.\n"
    )
    assert git_reason(stderr, "fetch", 128) == "'/srv/x' does not appear to be a git repository"
    assert git_reason("", "fetch", 128) == "git fetch failed (128)"


async def test_a_missing_subdir_is_named(tmp_path, repo):
    site = make_site(tmp_path, {"git": str(repo.path), "subdir": "no/such"})
    r = await stage(LocalStager(site, tmp_path / "h"))
    assert r["state"] == rep.UNAVAILABLE and "no/such" in r["problem"], r["problem"]
