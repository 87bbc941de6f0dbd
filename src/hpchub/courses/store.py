"""The latest staging report of each student in each course, kept by the hub.

One JSON file per course and user under the hub's data folder (folders 700, files 600): the
hub writes them, `hpchub course status` and the hub's pages read them.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ..core.names import check_name
from .paths import check_course_name


def _check_user(user: str) -> str:
    return check_name("unix", user, "user name")


class ReportStore:
    """Reports at ``root/COURSE/USER.json``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, course: str, user: str) -> Path:
        return self.root / check_course_name(course) / f"{_check_user(user)}.json"

    def save(self, report: dict[str, Any]) -> None:
        """Replace the report of ``report['user']`` in ``report['course']`` (atomically)."""
        path = self._path(report["course"], report["user"])
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(report, f)
        os.replace(tmp, path)

    def load(self, course: str, user: str) -> dict[str, Any] | None:
        """The latest report, or None if this user never staged this course."""
        try:
            return json.loads(self._path(course, user).read_text())
        except (OSError, ValueError):
            return None

    def for_course(self, course: str) -> dict[str, dict[str, Any]]:
        """Every stored report of ``course``, by user."""
        out = {}
        folder = self.root / check_course_name(course)
        with contextlib.suppress(FileNotFoundError):
            for p in sorted(folder.glob("*.json")):
                with contextlib.suppress(OSError, ValueError):
                    out[p.stem] = json.loads(p.read_text())
        return out

    def for_user(self, user: str, courses: list[str]) -> list[dict[str, Any]]:
        """The user's latest report in each of ``courses`` that has one (for the hub's pages)."""
        return [r for c in courses if (r := self.load(c, user)) is not None]
