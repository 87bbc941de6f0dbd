"""A staging report: what happened to one student's copy of one course, as plain JSON data.

The helper writes one (and a Markdown copy in the student's folder when there is something to
act on); the hub stores the latest per course and user; `hpchub course status` shows them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# The state of the latest staging, worst first.
RUNNING = "running"  # started, not finished (or the hub stopped meanwhile)
FAILED = "failed"  # nothing could be written (sudo refused, target not writable...)
UNAVAILABLE = "unavailable"  # the source could not be reached and nothing was cached
CONFLICTS = "conflicts"  # staged; some files need the student's attention
OK = "ok"  # staged (possibly from an older revision: see ``problem``)

# The kinds of file outcome listed in a report, in the order people read them.
LISTED = ("added", "updated", "restored", "removed", "kept", "left", "blocked")


def new_report(course: str, user: str, title: str = "", **fields: Any) -> dict[str, Any]:
    """An empty report for ``user`` in ``course``."""
    report: dict[str, Any] = {
        "course": course,
        "title": title,
        "user": user,
        "state": RUNNING,
        "started_at": None,
        "finished_at": None,
        "seconds": None,
        "source": "",
        "revision": None,
        "fetched_at": None,
        "problem": None,
        "target": None,
        "unchanged": 0,
        "files": {k: [] for k in LISTED},
        "conflicts": [],
        "errors": [],
        "omitted": 0,  # entries left out of the lists above: the report was too long
    }
    report.update(fields)
    return report


def final_state(report: dict[str, Any]) -> str:
    """The state a finished report should carry, from its contents."""
    if report.get("state") in (FAILED, UNAVAILABLE):
        return report["state"]
    if report["conflicts"] or report["files"]["blocked"] or report["errors"]:
        return CONFLICTS
    return OK


def needs_attention(report: dict[str, Any]) -> bool:
    """Whether the student should read the report (conflicts, errors, an old or absent source)."""
    return final_state(report) != OK or bool(report.get("problem"))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary(report: dict[str, Any]) -> str:
    """One line: what happened, for tables and logs."""
    state = report.get("state")
    if state == RUNNING:
        return "staging is running"
    if state in (FAILED, UNAVAILABLE):
        return f"{state}: {report.get('problem') or 'no details'}"
    files = report["files"]
    parts = [
        f"{len(files[k])} {k}" for k in ("added", "updated", "restored", "removed") if files[k]
    ]
    if report["conflicts"]:
        parts.append(_plural(len(report["conflicts"]), "conflict"))
    if files["blocked"]:
        parts.append(f"{len(files['blocked'])} blocked")
    if report["errors"]:
        parts.append(_plural(len(report["errors"]), "error"))
    if files["kept"]:
        parts.append(f"{len(files['kept'])} kept (changed by the student)")
    if not parts:
        parts.append("up to date")
    text = ", ".join(parts)
    if report.get("omitted"):
        text += f" ({report['omitted']} more entries not listed: the report was too long)"
    if report.get("problem"):
        text += f" [{report['problem']}]"
    return text


def when(ts: float | None) -> str:
    """A timestamp as local 'YYYY-MM-DD HH:MM' ('never' for None)."""
    if not ts:
        return "never"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def markdown(report: dict[str, Any]) -> str:
    """The report the student finds in their course folder."""
    from ..core.templates import render

    return render(
        "courses/staging-report.md.j2",
        r=report,
        state=final_state(report),
        when=when,
        summary=summary(report),
    )


MAX_TEXT = 500
MAX_LIST = 20000
# Characters of paths and messages kept in one report, all lists together: the hub stores it,
# and serves it on every visit of the courses page.
MAX_TOTAL = 256 * 1024
_CONTROL = dict.fromkeys([*range(32), 127], " ")


def _clean_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    if not isinstance(value, str):
        return None
    return value.translate(_CONTROL)[:limit]


def _clean_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


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
                sum(len(v) + 8 for v in entry.values())
                if isinstance(entry, dict)
                else len(entry) + 4
            )
            if size > self.left:
                self.omitted += 1
                self.left = 0
                continue
            self.left -= size
            kept.append(entry)
        return kept


def sanitize(data: Any, course: str, user: str) -> dict[str, Any]:
    """A report built only from well-typed fields of ``data``.

    The helper runs as the student, who could tamper with its output: nothing it says reaches
    a terminal, a page or the store without this.
    """
    data = data if isinstance(data, dict) else {}
    out = new_report(course, user)
    state = data.get("state")
    out["state"] = state if state in (FAILED, UNAVAILABLE, CONFLICTS, OK) else FAILED
    for key in ("title", "source", "revision", "problem", "target"):
        out[key] = _clean_text(data.get(key))
    out["title"] = out["title"] or ""
    out["source"] = out["source"] or ""
    for key in ("started_at", "finished_at", "seconds", "fetched_at"):
        out[key] = _clean_number(data.get(key))
    unchanged = data.get("unchanged")
    out["unchanged"] = unchanged if isinstance(unchanged, int) and unchanged >= 0 else 0
    budget = _Budget(MAX_TOTAL)
    # Conflicts and errors first: they are what the student must act on.
    for key, fields in (("conflicts", ("path", "upstream_copy")), ("errors", ("path", "error"))):
        items = data.get(key) if isinstance(data.get(key), list) else []
        out[key] = budget.take(
            items,
            lambda i, fields=fields: (
                {f: _clean_text(i.get(f)) or "" for f in fields} if isinstance(i, dict) else None
            ),
        )
    files = data.get("files") if isinstance(data.get("files"), dict) else {}
    for kind in LISTED:
        items = files.get(kind) if isinstance(files.get(kind), list) else []
        out["files"][kind] = budget.take(items, _clean_text)
    omitted = budget.omitted
    out["omitted"] = omitted
    if out["state"] == FAILED and not out["problem"]:
        out["problem"] = "the staging helper gave no reason"
    return out


def student_view(report: dict[str, Any] | None) -> dict[str, Any]:
    """What a student's courses page and API show of their latest report."""
    r = report
    return {
        "state": final_state(r) if r and r["state"] != RUNNING else (r["state"] if r else "never"),
        "summary": summary(r) if r else "",
        "staged_at": when(r.get("finished_at")) if r else None,
        "problem": r.get("problem") if r else None,
        "conflicts": r["conflicts"] if r else [],
        "blocked": r["files"]["blocked"] if r else [],
        "errors": r["errors"] if r else [],
    }
