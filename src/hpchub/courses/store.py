"""The latest staging report of each student in each course, kept by the hub.

One JSON file per course and user under the hub's data folder (folders 700, files 600): the
hub writes them, `hpchub course status` and the hub's pages read them. Beside each, the part a
student sees (``USER.view``), stored as it is served, so the courses API sends it as it is.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from ..core.coursepaths import check_course_name
from ..core.files import atomic_write
from ..core.names import check_name
from .report import Report


class ReportStore:
    """Reports at ``root/COURSE/USER.json``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, course: str, user: str, suffix: str = ".json") -> Path:
        # A view has no .json suffix: never mistaken for the report of a user called USER.view.
        user = check_name("unix", user, "user name")
        return self.root / check_course_name(course) / f"{user}{suffix}"

    def save(self, report: Report) -> None:
        """Replace the report of ``report.user`` in ``report.course`` (atomically)."""
        path = self._path(report.course, report.user)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        view = json.dumps(report.student_view(), separators=(",", ":"))
        atomic_write(self._path(report.course, report.user, ".view"), view, 0o600)
        atomic_write(path, json.dumps(report.data()), 0o600)

    def load(self, course: str, user: str) -> Report | None:
        """The latest report, or None if this user never staged this course."""
        try:
            data = json.loads(self._path(course, user).read_text())
        except (OSError, ValueError):
            return None
        return Report.parse(data, course, user, stored=True)

    def view(self, course: str, user: str) -> str | None:
        """The student's view of the latest report, as JSON text (see
        ``Report.student_view``); made once from the report when it was stored before views."""
        try:
            return self._path(course, user, ".view").read_text()
        except FileNotFoundError:
            report = self.load(course, user)
            if report is None:
                return None
            view = json.dumps(report.student_view(), separators=(",", ":"))
            with contextlib.suppress(OSError):
                atomic_write(self._path(course, user, ".view"), view, 0o600)
            return view
        except OSError:
            return None

    def for_course(self, course: str) -> dict[str, Report]:
        """Every stored report of ``course``, by user."""
        out = {}
        with contextlib.suppress(FileNotFoundError):
            for p in sorted((self.root / check_course_name(course)).glob("*.json")):
                with contextlib.suppress(OSError, ValueError):
                    out[p.stem] = Report.parse(
                        json.loads(p.read_text()), course, p.stem, stored=True
                    )
        return out
