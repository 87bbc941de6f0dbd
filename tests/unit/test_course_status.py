"""`hpchub course`: the status view (captured squeue output) and the caller checks."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from hpchub.cli.course_cmd import check_caller
from hpchub.cli.main import main
from hpchub.config.loader import parse_site
from hpchub.config.models import SlurmSettings
from hpchub.courses import report as rep
from hpchub.courses.status import build_rows, describe, query_jobs, render
from hpchub.courses.store import ReportStore
from hpchub.slurm.parsers import HubJob, parse_hub_jobs

from .courses_fixtures import profile
from .fakes import FakeSlurm


def test_hub_jobs_are_found_by_comment_not_name(data_dir):
    # Captured from squeue: two hubs' jobs, one job without a comment, a name holding '|'.
    jobs = parse_hub_jobs((data_dir / "squeue_hub_jobs.txt").read_text(), "slurmgw")
    assert [(j.user, j.job_id, j.name) for j in jobs] == [
        ("bob", "15", "x|y"),
        ("alice", "13", "jupyter-alice-big"),
        ("alice", "11", "jupyter-alice"),
    ]
    assert (
        parse_hub_jobs("alice|11|RUNNING|None|vm|hpchub:slurmgw2|jupyter-alice\n", "slurmgw") == []
    )


def test_status_asks_the_gateway_and_labels_named_servers():
    fake = FakeSlurm()
    fake.jobs.update({"9": "RUNNING", "8": "RUNNING", "7": "PENDING"})
    fake.owners.update({"9": "alice", "8": "alice", "7": "bob"})
    fake.comments.update({"9": "hpchub:hpchub", "8": "hpchub:other", "7": "hpchub:hpchub"})
    jobs, problem = query_jobs(["alice", "bob"], SlurmSettings(), "hpchub", fake)
    assert problem is None
    assert [describe(j) for j in jobs["alice"]] == ["running (job 9 on vm)"]
    assert [describe(j) for j in jobs["bob"]] == ["queued (job 7: None)"]
    named = HubJob("alice", "9", "RUNNING", "None", "vm", name="jupyter-alice-big")
    assert describe(named) == "'big' running (job 9 on vm)"


def test_status_says_when_slurm_is_slow_or_down():
    fake = FakeSlurm()
    fake.latency["squeue"] = 999
    assert query_jobs(["alice"], SlurmSettings(), "hpchub", fake)[1].startswith(
        "squeue did not answer"
    )
    fake.latency.clear()
    fake.down = True
    assert "Unable to contact" in query_jobs(["alice"], SlurmSettings(), "hpchub", fake)[1]


def _site(tmp_path, **extra):
    course = {
        "name": "pyintro",
        "title": "Python",
        "users": ["alice", "bob"],
        "instructors": ["carol"],
        "source": {"path": "/srv/pyintro"},
        **extra,
    }
    profiles = [profile(k) for k in course.get("profiles", [])]
    return parse_site(
        {
            "hub": {"allowed_groups": ["jupyter"], "data_dir": str(tmp_path)},
            "courses": [course],
            **({"profiles": profiles} if profiles else {}),
        }
    )


def test_rows_and_rendering(tmp_path):
    course = _site(tmp_path).courses[0]
    done = rep.Report(
        "pyintro",
        "alice",
        state=rep.CONFLICTS,
        finished_at=1.7e9,
        conflicts=[rep.Conflict(path="a.ipynb", upstream_copy="a.upstream.ipynb")],
    )
    gone = rep.Report("pyintro", "dave", state=rep.OK, finished_at=1.7e9)
    jobs = {"alice": [HubJob("alice", "136", "RUNNING", "None", "vm", name="jupyter-alice")]}
    rows = build_rows(["alice", "bob", "carol"], {"alice": done, "dave": gone}, jobs)
    assert [(r.user, r.state) for r in rows] == [
        ("alice", "conflicts"),
        ("bob", "never"),
        ("carol", "never"),
        ("dave", "ok"),
    ]
    text = render(course, rows, dt.date(2025, 1, 1), None, None)
    assert "members:  3, of whom 2 started a server" in text
    lines = {line.split()[0]: line for line in text.splitlines()[6:] if line}
    assert "running (job 136 on vm)" in lines["alice"] and "1 conflict" in lines["alice"]
    assert "has not started a server yet" in lines["bob"]
    assert "(no longer a member)" in lines["dave"]


def test_slurm_down_is_said(tmp_path):
    course = _site(tmp_path).courses[0]
    text = render(
        course, build_rows(["alice"], {}, {}), dt.date(2025, 1, 1), None, "squeue failed: x"
    )
    assert "servers:  unknown (squeue failed: x)" in text


def test_only_instructors_may_use_it_through_sudo(tmp_path):
    course = _site(tmp_path).courses[0]
    assert check_caller(course, {"SUDO_USER": "carol"}, euid=0) is None
    assert "not an instructor" in check_caller(course, {"SUDO_USER": "alice"}, euid=0)
    assert check_caller(course, {}, euid=0) is None  # root itself
    assert check_caller(course, {"SUDO_USER": "root"}, euid=0) is None
    assert check_caller(course, {"SUDO_USER": "alice"}, euid=999) is None  # the hub user


def _write_site(tmp_path, **extra):
    import yaml

    path = tmp_path / "site.yaml"
    site = _site(tmp_path, **extra)
    path.write_text(
        yaml.safe_dump(site.model_dump(mode="json", include={"hub", "courses", "profiles"}))
    )
    return path


def test_cli_list_and_unknown_course(tmp_path, capsys):
    path = _write_site(tmp_path, start="2025-09-01", end="2025-09-05", profiles=["py-lab"])
    assert main(["--config", str(path), "course", "list"]) == 0
    out = capsys.readouterr().out
    assert "pyintro: Python [not active, 2025-09-01 to 2025-09-05]" in out
    assert "profiles: py-lab" in out
    assert main(["--config", str(path), "course", "status", "nope"]) == 2
    assert "no course 'nope' in the site file (courses: pyintro)" in capsys.readouterr().err


def test_cli_status_shows_reports(tmp_path, capsys, monkeypatch):
    path = _write_site(tmp_path)
    ReportStore(tmp_path / "courses" / "reports").save(
        rep.Report(
            "pyintro",
            "alice",
            state=rep.OK,
            finished_at=1.7e9,
            files={**rep.Report("x", "y").files, "added": ["a.ipynb"]},
        )
    )
    monkeypatch.setattr("hpchub.courses.status.query_jobs", lambda users, slurm, hub: ({}, None))
    assert main(["--config", str(path), "course", "status", "pyintro", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["user"] for m in data["members"]] == ["alice", "bob", "carol"]
    assert main(["--config", str(path), "course", "status", "pyintro", "--user", "alice"]) == 0
    out = capsys.readouterr().out
    assert "alice in pyintro: ok, 1 added" in out and "added:    a.ipynb" in out


@pytest.mark.parametrize("action", [["status", "pyintro"], ["stage", "pyintro", "--user", "bob"]])
def test_cli_refuses_a_sudo_caller_who_is_not_an_instructor(tmp_path, capsys, monkeypatch, action):
    path = _write_site(tmp_path)
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert main(["--config", str(path), "course", *action]) == 2
    assert "alice is not an instructor of course 'pyintro'" in capsys.readouterr().err


def test_cli_stage_refuses_non_members(tmp_path, capsys):
    path = _write_site(tmp_path)
    assert main(["--config", str(path), "course", "stage", "pyintro", "--user", "mallory"]) == 2
    assert "not members of course 'pyintro': mallory" in capsys.readouterr().err


def test_cli_stage_started_with_nobody_started(tmp_path, capsys):
    path = _write_site(tmp_path)
    assert main(["--config", str(path), "course", "stage", "pyintro", "--started"]) == 0
    assert "nobody has started a server in pyintro yet" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--config", str(path), "course", "stage", "pyintro", "--started", "--user", "bob"])


def test_user_controlled_text_reaches_the_terminal_without_control_characters(tmp_path):
    course = _site(tmp_path).courses[0]
    # A job name and a reason the user chose, and a report whose problem holds an escape.
    found = parse_hub_jobs(
        "alice|9|PENDING|x\x1b[2Jy||hpchub:h|jupyter-alice-\x1b]2;pwned\x07\n", "h"
    )
    jobs = {j.user: [j] for j in found}
    bad = rep.Report("pyintro", "bob", state=rep.FAILED, problem="no\x1b[31mred")
    rows = build_rows(["alice", "bob"], {"bob": bad}, jobs)
    text = render(course, rows, dt.date(2025, 1, 1), None, None)
    assert "\x1b" not in text and "\x07" not in text
    assert "x?[2Jy" in text and "no?[31mred" in text


def test_config_validate_warns_about_a_target_in_a_shared_parent(tmp_path):
    from pathlib import Path

    from hpchub.config.courses import course_warnings

    shared = _site(tmp_path, target="/scratch/work/{user}/pyintro")
    (warning,) = course_warnings(shared, homes={Path("/home/alice")})
    assert "shared folder /scratch/work" in warning and "/scratch/work/{user}" in warning
    home = _site(tmp_path, target="/home/{user}/pyintro")
    assert course_warnings(home, homes={Path("/home/alice")}) == []
    assert course_warnings(_site(tmp_path), homes=set()) == []
