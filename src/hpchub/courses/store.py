"""The latest staging report of each student in each course, kept by the hub.

One JSON file per course and user under the hub's data folder (folders 700, files 600): the
hub writes them, `hpchub course status` and the hub's pages read them. Beside each, the part a
student sees (``USER.view``), stored as it is served, so the courses API sends it as it is.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ..core.coursepaths import check_course_name
from ..core.files import atomic_write
from ..core.names import check_name
from .report import student_view


def _check_user(user: str) -> str:
    return check_name("unix", user, "user name")


class ReportStore:
    """Reports at ``root/COURSE/USER.json``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, course: str, user: str) -> Path:
        return self.root / check_course_name(course) / f"{_check_user(user)}.json"

    def _view_path(self, course: str, user: str) -> Path:
        # No .json suffix: never mistaken for the report of a user called USER.view.
        path = self._path(course, user)
        return path.with_name(path.stem + ".view")

    def save(self, report: dict[str, Any]) -> None:
        """Replace the report of ``report['user']`` in ``report['course']`` (atomically)."""
        path = self._path(report["course"], report["user"])
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        view = json.dumps(student_view(report), separators=(",", ":"))
        atomic_write(self._view_path(report["course"], report["user"]), view, 0o600)
        atomic_write(path, json.dumps(report), 0o600)

    def load(self, course: str, user: str) -> dict[str, Any] | None:
        """The latest report, or None if this user never staged this course."""
        try:
            return json.loads(self._path(course, user).read_text())
        except (OSError, ValueError):
            return None

    def view(self, course: str, user: str) -> str | None:
        """The student's view of the latest report, as JSON text (see ``report.student_view``);
        made once from the report when it was stored before views were."""
        try:
            return self._view_path(course, user).read_text()
        except FileNotFoundError:
            report = self.load(course, user)
            if report is None:
                return None
            view = json.dumps(student_view(report), separators=(",", ":"))
            with contextlib.suppress(OSError):
                atomic_write(self._view_path(course, user), view, 0o600)
            return view
        except OSError:
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
