"""A real course on disk for unit tests: a git repository, a hub-side stager, and the staging
helper run over real pipes (as the current user: sudo is what the integration tests cover)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hpchub.config.loader import parse_site
from hpchub.core.coursepaths import expand_target
from hpchub.courses.stager import CourseStager

HELPER = (
    "import sys; from pathlib import Path; from hpchub.courses.student import stage; "
    "stage(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.stdin.buffer, sys.stdout.buffer, "
    "owned_from=int(sys.argv[4]))"
)


class GitRepo:
    """A local git repository we can commit to."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args],
            cwd=self.path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def commit(self, files: dict[str, str | None], message: str = "change") -> None:
        for rel, text in files.items():
            p = self.path / rel
            if text is None:
                p.unlink()
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)


class LocalStager(CourseStager):
    """The hub's stager, with the helper run directly instead of through sudo."""

    def __init__(self, site, homes: Path):
        super().__init__(site)
        self.homes = homes

    def target(self, course: str, user: str) -> Path:
        return expand_target(self.course(course).target_template, user, str(self.homes / user))

    def helper_argv(self, course, user):
        # The student's own folders start at their home, as for a ~/... target.
        self.homes.mkdir(parents=True, exist_ok=True)
        return [
            sys.executable,
            "-c",
            HELPER,
            course.name,
            str(self.target(course.name, user)),
            user,
            str(len((self.homes / user).parts) - 1),
        ]


def profile(key: str) -> dict:
    """A minimal profile of the site file, for courses to name."""
    return {
        "key": key,
        "display_name": key,
        "partitions": ["jupyter-short"],
        "memory": "1G",
        "time": "1h",
    }


def make_site(tmp_path: Path, source: dict, **course):
    return parse_site(
        {
            "hub": {"allowed_groups": ["jupyter"], "data_dir": str(tmp_path / "hub")},
            "courses": [
                {
                    "name": "pyintro",
                    "title": "Python intro",
                    "users": ["alice", "bob"],
                    "source": {"refresh_interval": "0s", **source},
                    **course,
                }
            ],
        }
    )
