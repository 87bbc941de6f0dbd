"""What `hpchub doctor` reports: findings with a severity, what is wrong and how to fix it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import TypeVar

from ..core.text import printable

T = TypeVar("T")


class Severity(IntEnum):
    """How much a finding matters; ERROR makes the exit code non-zero."""

    OK = 0
    INFO = 1
    WARNING = 2
    ERROR = 3


@dataclass(frozen=True)
class Finding:
    """One result of one check."""

    check: str
    severity: Severity
    what: str
    fix: str = ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["severity"] = self.severity.name.lower()
        return d


def ok(check: str, what: str) -> Finding:
    """A check that passed."""
    return Finding(check, Severity.OK, what)


def all_ok(found: list[Finding], check: str, what: str) -> list[Finding]:
    """``found``, or one ok finding saying ``what`` when the check found nothing wrong."""
    return found or [ok(check, what)]


def info(check: str, what: str, fix: str = "") -> Finding:
    """Something worth knowing that is not a problem."""
    return Finding(check, Severity.INFO, what, fix)


def warning(check: str, what: str, fix: str) -> Finding:
    """Probably a problem, or one for some users only."""
    return Finding(check, Severity.WARNING, what, fix)


def error(check: str, what: str, fix: str) -> Finding:
    """Something that breaks the hub or weakens its security."""
    return Finding(check, Severity.ERROR, what, fix)


Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]
"""Runs an argument list and returns the finished process (tests pass a fake)."""


_MARK = {
    Severity.OK: "ok",
    Severity.INFO: "info",
    Severity.WARNING: "WARNING",
    Severity.ERROR: "ERROR",
}


def _safe(text: str) -> str:
    """``text`` for a terminal: a tool's lines stay lines, control characters become '?'
    (findings quote users' files, job names and tools' output, which users can influence)."""
    return "\n          ".join(printable(line) for line in text.splitlines()) or ""


def format_text(findings: Sequence[Finding], verbose: bool = False) -> str:
    """One block per finding (ok findings only with ``verbose``), then a summary line."""
    lines = []
    for f in findings:
        if f.severity == Severity.OK and not verbose:
            continue
        lines.append(f"[{_MARK[f.severity]:>7}] {_safe(f.check)}: {_safe(f.what)}")
        if f.fix:
            lines.append(f"          fix: {_safe(f.fix)}")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in Severity}
    lines.append(
        f"{len(findings)} checks: {counts[Severity.ERROR]} errors, "
        f"{counts[Severity.WARNING]} warnings, {counts[Severity.INFO]} notes, "
        f"{counts[Severity.OK]} ok"
    )
    return "\n".join(lines)


def format_json(findings: Sequence[Finding]) -> str:
    """The findings as a JSON list of {check, severity, what, fix}."""
    return json.dumps([f.as_dict() for f in findings], indent=2)


def run_checks(checks: Sequence[Callable[[T], list[Finding]]], subject: T) -> list[Finding]:
    """Every check on ``subject``; a check that crashes becomes an error finding, not a crash."""
    out: list[Finding] = []
    for check in checks:
        try:
            out += check(subject)
        except Exception as err:  # noqa: BLE001 - report it and go on with the other checks
            name = check.__name__.removeprefix("check_").replace("_", " ")
            out.append(
                error(name, f"the check itself failed: {type(err).__name__}: {err}", "report this")
            )
    return out


def exit_code(findings: Sequence[Finding]) -> int:
    """1 if any finding is an error, else 0."""
    return 1 if any(f.severity >= Severity.ERROR for f in findings) else 0
