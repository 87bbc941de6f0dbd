"""Names and paths a course uses in a student's folders: checked the same way by the site-file
models (on the hub) and by the staging helper (as the student). No pydantic here: the helper
runs at every spawn and must start fast.
"""

from __future__ import annotations

import re
from pathlib import Path

from .names import check_name

_TARGET_RE = re.compile(r"^(~|/)[A-Za-z0-9_./{}-]*$")

# Names hpchub itself uses in a student's target folder: never staged from a source.
STATE_DIR = ".hpchub"
REPORT_FILE = "HPCHUB-STAGING.md"
RESERVED_TOP = frozenset({STATE_DIR, REPORT_FILE})


def check_course_name(name: str) -> str:
    """``name`` if it is a valid course name, else ValueError."""
    return check_name("course", name)


def check_target(value: str) -> str:
    """A target folder template, or ValueError saying what is allowed."""
    if not _TARGET_RE.match(value):
        raise ValueError(
            f"target {value!r} must start with '~' or '/' and hold letters, digits, '._-/' "
            "and the placeholder {user} only"
        )
    rest = value.replace("{user}", "")
    if "{" in rest or "}" in rest:
        raise ValueError(f"target {value!r}: the only placeholder allowed is {{user}}")
    parts = [p for p in value.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"target {value!r} must not hold '.' or '..'")
    if value.startswith("~"):
        if not value.startswith("~/") or len(parts) < 2:
            raise ValueError(
                f"target {value!r} must be a folder inside the home, like ~/courses/NAME"
            )
    elif "{user}" not in value:
        raise ValueError(
            f"target {value!r} would be one folder shared by every student: "
            "use ~/... or put {user} in the path (/scratch/work/{user}/NAME)"
        )
    if len(parts) < 2:
        raise ValueError(f"target {value!r} is too close to the top of the filesystem")
    return value.rstrip("/")


def expand_target(template: str, username: str, home: str) -> Path:
    """The student's own target folder: '~' is their home, {user} their name."""
    check_target(template)
    # A name is one folder, never '..' or a path: the name rule says so (it starts with a letter).
    path = template.replace("{user}", check_name("unix", username, "user name"))
    if path.startswith("~/"):
        path = home.rstrip("/") + path[1:]
    return Path(path)


def owned_from(template: str, home: str) -> int:
    """The index in the expanded target's parts of the first folder the student must own: the
    first below the home for ``~/...`` (the home may be a link root made, as /home often is),
    the folder that holds ``{user}`` for an absolute target."""
    if template.startswith("~"):
        return len(Path(home).parts)
    parts = Path(check_target(template)).parts
    return next(i for i, part in enumerate(parts) if "{user}" in part)


def check_relpath(rel: str) -> str:
    """A path inside the target folder as the hub announces it, or ValueError."""
    parts = rel.split("/")
    if (
        not rel
        or rel.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or any(ord(c) < 32 or c == "\x7f" for c in rel)
        or parts[0] in RESERVED_TOP
        or ".git" in parts
    ):
        raise ValueError(f"unsafe path in the materials: {rel!r}")
    return rel
