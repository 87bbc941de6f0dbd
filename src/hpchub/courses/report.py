"""A staging report: what happened to one student's copy of one course.

The helper writes one (and a Markdown copy in the student's folder when there is something to
act on); the hub stores the latest per course and user; `hpchub course status` shows them. On
the wire and on disk it is the JSON of ``Report.data()``; in the code it is a ``Report``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# The state of the latest staging, worst first.
RUNNING = "running"  # started, not finished (or the hub stopped meanwhile)
FAILED = "failed"  # nothing could be written (sudo refused, target not writable...)
UNAVAILABLE = "unavailable"  # the source could not be reached and nothing was cached
CONFLICTS = "conflicts"  # staged; some files need the student's attention
OK = "ok"  # staged (possibly from an older revision: see ``problem``)

# The kinds of file outcome listed in a report, in the order people read them.
LISTED = ("added", "updated", "restored", "removed", "kept", "left", "blocked")

MAX_TEXT = 500
MAX_LIST = 20000
# Characters of paths and messages kept in one report, all lists together: the hub stores it,
# and serves it on every visit of the courses page.
MAX_TOTAL = 256 * 1024
_CONTROL = dict.fromkeys([*range(32), 127], " ")


@dataclass
class Conflict:
    """A file both the student and upstream changed; upstream's version went beside it."""

    path: str
    upstream_copy: str


@dataclass
class FileError:
    """A file that could not be staged, and why."""

    path: str
    error: str


@dataclass
class Report:
    """The outcome of one staging of ``course`` for ``user``."""

    course: str
    user: str
    title: str = ""
    state: str = RUNNING
    started_at: float | None = None
    finished_at: float | None = None
    seconds: float | None = None
    source: str = ""
    revision: str | None = None
    fetched_at: float | None = None
    problem: str | None = None
    target: str | None = None
    unchanged: int = 0
    files: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in LISTED})
    conflicts: list[Conflict] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    omitted: int = 0  # entries left out of the lists above: the report was too long

    def data(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return asdict(self)

    def final_state(self) -> str:
        """The state a finished report should carry, from its contents."""
        if self.state in (FAILED, UNAVAILABLE):
            return self.state
        return CONFLICTS if self.conflicts or self.files["blocked"] or self.errors else OK

    def needs_attention(self) -> bool:
        """Whether the student should read it (conflicts, errors, an old or absent source)."""
        return self.final_state() != OK or bool(self.problem)

    def summary(self) -> str:
        """One line: what happened, for tables and logs."""
        if self.state == RUNNING:
            return "staging is running"
        if self.state in (FAILED, UNAVAILABLE):
            return f"{self.state}: {self.problem or 'no details'}"
        f = self.files
        parts = [
            *(f"{len(f[k])} {k}" for k in ("added", "updated", "restored", "removed") if f[k]),
            _plural(len(self.conflicts), "conflict"),
            f"{len(f['blocked'])} blocked" if f["blocked"] else "",
            _plural(len(self.errors), "error"),
            f"{len(f['kept'])} kept (changed by the student)" if f["kept"] else "",
        ]
        text = ", ".join(p for p in parts if p) or "up to date"
        if self.omitted:
            text += f" ({self.omitted} more entries not listed: the report was too long)"
        return text + (f" [{self.problem}]" if self.problem else "")

    def markdown(self) -> str:
        """The report the student finds in their course folder."""
        from ..core.templates import render

        return render(
            "courses/staging-report.md.j2",
            r=self,
            state=self.final_state(),
            when=when,
            summary=self.summary(),
        )

    def student_view(self) -> dict[str, Any]:
        """What a student's courses page and API show of it."""
        return {
            "state": self.final_state() if self.state != RUNNING else RUNNING,
            "summary": self.summary(),
            "staged_at": when(self.finished_at),
            "problem": self.problem,
            "conflicts": [asdict(c) for c in self.conflicts],
            "blocked": self.files["blocked"],
            "errors": [asdict(e) for e in self.errors],
        }

    @classmethod
    def parse(cls, data: Any, course: str, user: str, *, stored: bool = False) -> Report:
        """A report built only from well-typed fields of ``data``.

        The helper runs as the student, who could tamper with its output: nothing it says
        reaches a terminal, a page or the store without this. ``stored``: read back from the
        hub's own store, where a staging may still be running.
        """
        data = data if isinstance(data, dict) else {}
        out = cls(course, user)
        states = (FAILED, UNAVAILABLE, CONFLICTS, OK) + ((RUNNING,) if stored else ())
        out.state = data.get("state") if data.get("state") in states else FAILED
        for key in ("title", "source", "revision", "problem", "target"):
            setattr(out, key, _text(data.get(key)))
        out.title, out.source = out.title or "", out.source or ""
        for key in ("started_at", "finished_at", "seconds", "fetched_at"):
            value = data.get(key)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            setattr(out, key, float(value) if ok else None)
        unchanged = data.get("unchanged")
        out.unchanged = unchanged if isinstance(unchanged, int) and unchanged >= 0 else 0
        budget = _Budget(MAX_TOTAL)
        # Conflicts and errors first: they are what the student must act on.
        for key, kind in (("conflicts", Conflict), ("errors", FileError)):
            names = [f.name for f in fields(kind)]
            setattr(
                out,
                key,
                budget.take(
                    _list(data.get(key)),
                    lambda i, k=kind, n=names: (
                        k(*(_text(i.get(f)) or "" for f in n)) if isinstance(i, dict) else None
                    ),
                ),
            )
        files = data.get("files") if isinstance(data.get("files"), dict) else {}
        for kind in LISTED:
            out.files[kind] = budget.take(_list(files.get(kind)), _text)
        out.omitted = budget.omitted
        if out.state == FAILED and not out.problem:
            out.problem = "the staging helper gave no reason"
        return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s") if n else ""


def when(ts: float | None) -> str:
    """A timestamp as local 'YYYY-MM-DD HH:MM' ('never' for None)."""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "never"


def never_view() -> dict[str, Any]:
    """The student's view of a course never staged for them."""
    empty: dict[str, Any] = {"summary": "", "staged_at": None, "problem": None}
    return {"state": "never", **empty, "conflicts": [], "blocked": [], "errors": []}


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    return value.translate(_CONTROL)[:limit] if isinstance(value, str) else None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


class _Budget:
    """Characters left for a report's lists; what did not fit is counted, not kept."""

    def __init__(self, chars: int):
        self.left = chars
        self.omitted = 0

    def take(self, items: list, clean) -> list:
        kept = []
        for n, item in enumerate(items):
            if n == MAX_LIST or self.left <= 0:
                self.omitted += len(items) - n  # counted without being read
                break
            entry = clean(item)
            if entry is None:
                continue
            size = (
                len(entry) + 4
                if isinstance(entry, str)
                else sum(len(v) + 8 for v in asdict(entry).values())
            )
            if size > self.left:
                self.omitted += 1
                self.left = 0
                continue
            self.left -= size
            kept.append(entry)
        return kept
