"""The one rule for each kind of name that reaches a command line, a path or a file.

Every check is a ``fullmatch``: ``re.match`` with ``$`` accepts a trailing newline. No pydantic
here: the staging helper imports this at every spawn and must start fast.
"""

from __future__ import annotations

import pwd
import re

UNIX_NAME_RULE = r"[a-z_][a-z0-9_.-]{0,31}"
SLURM_NAME_RULE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
COURSE_NAME_RULE = r"[a-z0-9][a-z0-9_-]{0,63}"

# The default mapping from an identity that a web server vouches for to a cluster account.
DEFAULT_USER_PATTERN = rf"^(?P<user>{UNIX_NAME_RULE})$"

_RULES = {
    "unix": (
        re.compile(UNIX_NAME_RULE),
        "lower-case letters, digits, '_', '.' and '-', starting with a letter or '_', "
        "at most 32 characters",
    ),
    "slurm": (
        re.compile(SLURM_NAME_RULE),
        "letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 64 characters",
    ),
    "course": (
        re.compile(COURSE_NAME_RULE),
        "lower-case letters, digits, '_' and '-', starting with a letter or digit, "
        "at most 64 characters",
    ),
}


def is_name(kind: str, value: object) -> bool:
    """Whether ``value`` is a valid name of ``kind`` ('unix', 'slurm' or 'course')."""
    return isinstance(value, str) and _RULES[kind][0].fullmatch(value) is not None


def check_name(kind: str, value: object, what: str | None = None) -> str:
    """``value`` if it is a valid name of ``kind``; ValueError in words otherwise."""
    if not is_name(kind, value):
        label = what or f"{kind} name"
        raise ValueError(f"{value!r} is not a {label}: use {_RULES[kind][1]}")
    return value  # type: ignore[return-value]


def is_unix_name(value: object) -> bool:
    """Whether ``value`` is a valid Unix user or group name."""
    return is_name("unix", value)


def user_name(uid: int) -> str:
    """The account name of ``uid``, or the number when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
