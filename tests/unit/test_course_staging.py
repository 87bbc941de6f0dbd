"""Staging for real: a git repository, the hub side and the helper over real pipes."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from hpchub.config.loader import SiteConfigError
from hpchub.core.coursepaths import REPORT_FILE
from hpchub.courses import report as rep

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
    assert r.state == rep.OK, r
    assert sorted(r.files["added"]) == ["README.md", "data/x.csv", "notebooks/lab1.ipynb"]
    target = stager.target("pyintro", "alice")
    assert (target / "notebooks" / "lab1.ipynb").read_text() == LAB
    assert (target.stat().st_mode & 0o777) == 0o700
    assert ((target / "README.md").stat().st_mode & 0o777) == 0o644
    assert ((target / ".hpchub").stat().st_mode & 0o777) == 0o700
    assert not (target / REPORT_FILE).exists()
    # The hub keeps the report, private to it.
    stored = stager.store.load("pyintro", "alice")
    assert stored.state == rep.OK and stored.revision == r.revision
    path = stager.paths.reports / "pyintro" / "alice.json"
    assert (path.stat().st_mode & 0o777) == 0o600


async def test_restaging_brings_upstream_changes_to_untouched_files(stager, repo):
    await stage(stager)
    repo.commit({"README.md": "read me, v2\n", "new.txt": "new\n", "data/x.csv": None})
    r = await stage(stager)
    target = stager.target("pyintro", "alice")
    assert r.files["updated"] == ["README.md"]
    assert r.files["added"] == ["new.txt"]
    assert r.files["removed"] == ["data/x.csv"]
    assert r.unchanged == 1
    assert (target / "README.md").read_text() == "read me, v2\n"
    assert not (target / "data" / "x.csv").exists()
    again = await stage(stager)
    assert again.summary() == "up to date"


async def test_a_student_edit_survives_restaging(stager, repo):
    await stage(stager)
    target = stager.target("pyintro", "alice")
    (target / "notebooks" / "lab1.ipynb").write_text("my answers")
    repo.commit({"README.md": "v2\n"})
    r = await stage(stager)
    assert r.files["kept"] == ["notebooks/lab1.ipynb"]
    assert (target / "notebooks" / "lab1.ipynb").read_text() == "my answers"
    assert (target / "README.md").read_text() == "v2\n"
    assert r.state == rep.OK


async def test_a_conflict_keeps_theirs_puts_upstream_beside_and_tells_them(stager, repo):
    await stage(stager)
    target = stager.target("pyintro", "alice")
    (target / "notebooks" / "lab1.ipynb").write_text("my answers")
    repo.commit({"notebooks/lab1.ipynb": '{"cells": ["print(2)"]}'})
    r = await stage(stager)
    assert r.state == rep.CONFLICTS
    assert r.conflicts == [
        rep.Conflict("notebooks/lab1.ipynb", upstream_copy="notebooks/lab1.upstream.ipynb")
    ]
    assert (target / "notebooks" / "lab1.ipynb").read_text() == "my answers"
    assert (target / "notebooks" / "lab1.upstream.ipynb").read_text() == '{"cells": ["print(2)"]}'
    text = (target / REPORT_FILE).read_text()
    assert "`notebooks/lab1.ipynb` | `notebooks/lab1.upstream.ipynb`" in text
    assert "1 conflict" in stager.store.load("pyintro", "alice").summary()
    # Still reported at every staging (a restart, an instructor's re-run) until they delete
    # the upstream copy; then the report file goes too.
    r2 = await stage(stager)
    assert r2.state == rep.CONFLICTS and r2.files["kept"] == ["notebooks/lab1.ipynb"]
    assert r2.conflicts == r.conflicts
    assert (target / REPORT_FILE).exists()
    (target / "notebooks" / "lab1.upstream.ipynb").unlink()
    r3 = await stage(stager)
    assert r3.state == rep.OK and r3.conflicts == []
    assert not (target / REPORT_FILE).exists()
    assert (target / "notebooks" / "lab1.ipynb").read_text() == "my answers"
    # A later upstream change conflicts again, and never overwrites the first copy they edited.
    (target / "notebooks" / "lab1.upstream.ipynb").write_text("notes on the new version")
    repo.commit({"notebooks/lab1.ipynb": '{"cells": ["print(3)"]}'})
    r4 = await stage(stager)
    assert r4.conflicts == [
        rep.Conflict("notebooks/lab1.ipynb", upstream_copy="notebooks/lab1.upstream-2.ipynb")
    ]
    assert (target / "notebooks" / "lab1.upstream.ipynb").read_text() == "notes on the new version"


async def test_a_deleted_file_comes_back_fresh(stager):
    await stage(stager)
    target = stager.target("pyintro", "alice")
    (target / "README.md").unlink()
    r = await stage(stager)
    assert r.files["restored"] == ["README.md"]
    assert (target / "README.md").read_text() == "read me\n"


async def test_a_file_already_there_is_never_overwritten_on_first_staging(stager):
    target = stager.target("pyintro", "alice")
    target.mkdir(parents=True)
    (target / "README.md").write_text("mine")
    r = await stage(stager)
    assert r.conflicts[0].path == "README.md"
    assert (target / "README.md").read_text() == "mine"
    assert (target / "README.upstream.md").read_text() == "read me\n"


async def test_something_in_the_way_is_reported(stager):
    target = stager.target("pyintro", "alice")
    (target / "README.md").mkdir(parents=True)
    r = await stage(stager)
    assert r.files["blocked"] == ["README.md"]
    assert r.state == rep.CONFLICTS
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
    assert r.state == rep.UNAVAILABLE
    assert "could not fetch" in r.problem
    text = (stager.target("pyintro", "alice") / REPORT_FILE).read_text()
    assert "could not be fetched" in text and "started anyway" in text
    assert stager.store.load("pyintro", "alice").state == rep.UNAVAILABLE


async def test_unreachable_source_with_cache_stages_the_last_good_revision(stager, repo):
    first = await stage(stager)
    repo.path.rename(repo.path.with_name("moved"))
    r = await stage(stager, "bob")
    assert r.state == rep.OK and r.revision == first.revision
    assert "could not be updated" in r.problem
    assert len(r.files["added"]) == 3
    assert "could not be updated" in (stager.target("pyintro", "bob") / REPORT_FILE).read_text()


async def test_refresh_interval_reuses_the_fetched_revision(tmp_path, repo):
    site = make_site(tmp_path, {"git": str(repo.path), "refresh_interval": "1m"})
    stager = LocalStager(site, tmp_path / "home")
    now = [1000.0]
    stager.cache.clock = lambda: now[0]
    first = await stage(stager)
    repo.commit({"README.md": "v2\n"})
    assert (await stage(stager)).revision == first.revision
    now[0] += 61
    later = await stage(stager)
    assert later.revision != first.revision and later.files["updated"] == ["README.md"]


async def test_subdir_and_excludes(tmp_path, repo):
    repo.commit({"course/a.ipynb": "a", "course/solutions/a.ipynb": "s", "course/x.pyc": "b"})
    site = make_site(
        tmp_path,
        {"git": str(repo.path), "subdir": "course", "exclude": ["solutions/", "*.pyc"]},
    )
    stager = LocalStager(site, tmp_path / "home")
    r = await stage(stager)
    assert r.files["added"] == ["a.ipynb"]


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
    assert r.files["added"] == ["notes.md"]
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
    assert r.state == rep.FAILED and "course 'other'" in r.problem


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
    assert r.state == rep.FAILED
    assert "stage-course" in r.problem and "sudo rule" in r.problem


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
    assert r.user == "alice" and "extra" not in r.data()
    assert r.files["added"] == [" [2Jowned"] and r.files["kept"] == []
    assert len(r.problem) == rep.MAX_TEXT
    assert r.conflicts == [rep.Conflict(path="a", upstream_copy="")]


async def test_a_helper_asking_for_unannounced_files_gets_nothing(stager, monkeypatch):
    script = 'import sys; sys.stdin.readline(); print(\'{"need": ["/etc/shadow"]}\'); sys.stdout.flush(); print(repr(sys.stdin.buffer.read()), file=sys.stderr)'
    monkeypatch.setattr(stager, "helper_argv", lambda c, u: [sys.executable, "-c", script])
    r = await stage(stager)
    assert r.state == rep.FAILED and "not announced" in r.problem


async def test_a_tag_can_be_staged(tmp_path, repo):
    repo.git("tag", "v1")
    repo.commit({"README.md": "after the tag\n"})
    stager = LocalStager(make_site(tmp_path, {"git": str(repo.path), "ref": "v1"}), tmp_path / "h")
    r = await stage(stager)
    assert r.state == rep.OK
    assert (stager.target("pyintro", "alice") / "README.md").read_text() == "read me\n"


async def test_a_missing_branch_is_named(tmp_path, repo):
    stager = LocalStager(
        make_site(tmp_path, {"git": str(repo.path), "ref": "nope"}), tmp_path / "h"
    )
    r = await stage(stager)
    assert r.state == rep.UNAVAILABLE and "nope" in r.problem


def test_git_reasons_are_gits_own_words():
    from hpchub.courses.git import git_reason

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
    assert r.state == rep.UNAVAILABLE and "no/such" in r.problem, r.problem


async def test_a_folder_source_behind_a_link_is_refused_wherever_the_link_is(tmp_path):
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "jupyterhub_cookie_secret").write_text("secret")
    # A folder others can write: a link there is not root's, whoever made it.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o1777)
    real = shared / "real"
    (real / "materials").mkdir(parents=True)
    (real / "materials" / "notes.md").write_text("notes")
    real.chmod(0o775)  # an instructor's group may write here
    (shared / "to-hub").symlink_to(hub)
    (shared / "to-real").symlink_to(real)
    for source in (
        {"path": str(shared / "to-hub")},
        {"path": str(real), "subdir": "link"},
        {"path": str(shared / "to-real" / "materials")},
    ):
        (real / "link").unlink(missing_ok=True)
        (real / "link").symlink_to(hub)
        stager = LocalStager(make_site(tmp_path, source), tmp_path / "home")
        r = await stage(stager)
        assert r.state == rep.UNAVAILABLE and "symbolic link" in r.problem, (source, r)
        assert not (stager.target("pyintro", "alice") / "jupyterhub_cookie_secret").exists()


async def test_the_hubs_own_folders_are_never_read_even_when_inside_a_source(tmp_path):
    # The site file names a folder that holds the hub's data folder: refused at validation...
    with pytest.raises(SiteConfigError, match="one of the hub's own folders"):
        make_site(tmp_path, {"path": str(tmp_path)})
    # ...and, reached through a root-made bind or link, refused when read.
    from hpchub.courses.cache import SourceUnavailable

    course = tmp_path / "course"
    course.mkdir()
    (course / "a.md").write_text("a")
    stager = LocalStager(make_site(tmp_path, {"path": str(course)}), tmp_path / "home")
    stager.cache.protected = (course,)
    with pytest.raises(SourceUnavailable, match="hub's own folders"):
        stager.cache.snapshot(stager.course("pyintro"))


async def test_unsafe_manifest_paths_are_never_used(stager, tmp_path):
    await stage(stager)
    target = stager.target("pyintro", "alice")
    outside = tmp_path / "precious.txt"
    outside.write_text("mine")
    digest = hashlib.sha256(b"mine").hexdigest()
    manifest = json.loads((target / ".hpchub" / "manifest.json").read_text())
    manifest["files"][os.path.relpath(outside, target)] = {
        "sha256": digest,
        "local": [digest, 4, 0],
    }
    manifest["files"]["/etc/passwd"] = {"sha256": digest, "local": [digest, 4, 0]}
    # An open conflict whose upstream copy lies outside: never reported as if it were theirs.
    manifest["conflicts"] = {"README.md": os.path.relpath(outside, target)}
    (target / ".hpchub" / "manifest.json").write_text(json.dumps(manifest))
    r = await stage(stager)
    assert outside.read_text() == "mine"
    assert {e.error for e in r.errors} == {"an unsafe path in this folder's manifest was ignored"}
    assert len(r.errors) == 3 and r.conflicts == []
    assert not r.files["removed"]


def test_a_huge_report_is_capped_in_total_and_says_so():
    paths = [f"notebooks/{'x' * 200}-{i}.ipynb" for i in range(20000)]
    data = {"state": "ok", "files": {k: paths for k in rep.LISTED}, "conflicts": [], "errors": []}
    r = rep.Report.parse(data, "pyintro", "alice")
    assert len(json.dumps(r.data())) < 2 * rep.MAX_TOTAL
    assert r.omitted > 0 and "more entries not listed" in r.summary()


def test_the_courses_api_serves_the_stored_view_as_it_is(tmp_path):
    from hpchub.courses.store import ReportStore
    from hpchub.courses.web import student_view, student_view_json

    site = make_site(tmp_path, {"path": str(tmp_path / "src")}, target="~/c/pyintro")
    stager = LocalStager(site, tmp_path / "home")
    report = rep.Report("pyintro", "alice", state=rep.OK, finished_at=1.0)
    report.conflicts = [rep.Conflict(path="a.md", upstream_copy="a.upstream.md")]
    stager.store = ReportStore(tmp_path / "reports")
    stager.store.save(report)
    served = json.loads(student_view_json(stager, "alice"))["courses"]
    assert served == student_view(stager, "alice")
    assert served[0]["state"] == "conflicts" and served[0]["course"] == "pyintro"
    assert json.loads(student_view_json(stager, "bob"))["courses"][0]["state"] == "never"


def test_the_first_folder_a_student_must_own():
    from hpchub.core.coursepaths import expand_target, owned_from

    for template, first in (
        ("~/courses/x", "/home/alice/courses"),
        ("/scratch/work/{user}/x", "/scratch/work/alice"),
        ("/scratch/{user}-work/a/b", "/scratch/alice-work"),
    ):
        target = expand_target(template, "alice", "/home/alice")
        at = owned_from(template, "/home/alice")
        assert str(Path(*target.parts[: at + 1])) == first


async def test_a_local_git_source_behind_a_planted_link_is_not_fetched(tmp_path, repo):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "repo").symlink_to(repo.path)
    stager = LocalStager(make_site(tmp_path, {"git": str(shared / "repo")}), tmp_path / "home")
    r = await stage(stager)
    assert r.state == rep.UNAVAILABLE and "symbolic link" in r.problem, r


def test_a_file_that_cannot_be_placed_is_still_read_to_its_end(tmp_path):
    # A folder on the way that became a file after the scan: that file's bytes must still be
    # consumed, or every later file of the stream would be read from the wrong offset.
    import io

    from hpchub.courses.apply import Manifest, Staging
    from hpchub.courses.plan import Upstream
    from hpchub.courses.protocol import Header, frame_header

    first, second = b"x" * 10, b"second file"
    files = {
        "data/x.csv": Upstream(hashlib.sha256(first).hexdigest(), len(first)),
        "z.txt": Upstream(hashlib.sha256(second).hexdigest(), len(second)),
    }
    report = rep.Report("pyintro", "alice")
    staging = Staging(Header("pyintro", "", "", "r1", None, None, files), tmp_path, report)
    actions = staging.prepare(Manifest())
    need = staging.needed(actions)
    (tmp_path / "data").write_text("now a file")
    stream = io.BytesIO(frame_header(len(first)) + first + frame_header(len(second)) + second)
    staging.apply(actions, need, stream)
    assert (tmp_path / "z.txt").read_bytes() == second
    assert [e.path for e in report.errors] == ["data/x.csv"]


def test_a_second_staging_of_the_same_folder_waits_then_says_so(tmp_path, monkeypatch):
    import io

    from hpchub.core.files import file_lock
    from hpchub.courses import student
    from hpchub.courses.protocol import Header

    home = tmp_path / "home" / "alice"
    (home / "c" / ".hpchub").mkdir(parents=True, mode=0o700)
    monkeypatch.setattr(student, "LOCK_WAIT_SECONDS", 0.1)
    header = Header("pyintro", "", "", None, None, None, None).to_line()
    out = io.BytesIO()
    with file_lock(home / "c" / ".hpchub" / "lock"):
        r = student.stage(
            "pyintro", home / "c", "alice", io.BytesIO(header), out, owned_from=len(home.parts) - 1
        )
    assert r.state == rep.FAILED and r.problem == "another staging of this folder is still running"
    assert json.loads(out.getvalue().splitlines()[-1])["state"] == rep.FAILED
