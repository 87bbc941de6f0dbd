"""The one rule for each kind of name that reaches a command line, a path or a file.

Every check is a ``fullmatch``: ``re.match`` with ``$`` accepts a trailing newline. No pydantic
here: the staging helper imports this at every spawn and must start fast.
"""

from __future__ import annotations

import pwd
import re
from collections.abc import Collection, Mapping

# A dot is allowed (anna.lee), never first: no user is called '.' or '..', or hides as .name.
UNIX_NAME_RULE = r"[a-z_][a-z0-9_.-]{0,31}"
SLURM_NAME_RULE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
COURSE_NAME_RULE = r"[a-z0-9][a-z0-9_-]{0,63}"
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
REALM_RULE = rf"(?=.{{1,253}}\Z){_LABEL}(\.{_LABEL})*"

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
    "realm": (
        re.compile(REALM_RULE),
        "a domain such as example.org: labels of lower-case letters, digits and '-', joined by '.'",
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


class NameRefused(ValueError):
    """An identity that stands for no local account; the message says why, in words."""


def local_account(
    identity: str, realms: Collection[str] = (), username_map: Mapping[str, str] | None = None
) -> str:
    """The local account that ``identity`` (a typed login name, a gate's REMOTE_USER) stands for.

    In lower case (as JupyterHub does), then ``username_map`` (its keys in lower case), then a
    realm of ``realms`` (lower case) cut off: ``anna.lee@EXAMPLE.ORG`` is ``anna.lee``. With
    ``realms`` set, any other realm raises NameRefused; without, the name keeps its realm and the
    name rule refuses it. Not checked against the name rule here: the caller does that.

    A name with other than ASCII comes back as it is: lower-casing could make it someone else's
    (the Kelvin sign lower-cases to 'k'), and the name rule refuses it anyway.
    """
    if not identity.isascii():
        return identity
    name = identity.lower()
    mapped = (username_map or {}).get(name)
    if mapped is not None:
        return mapped
    accepted = {r.lower() for r in realms}
    if accepted and "@" in name:
        local, _, realm = name.rpartition("@")
        if realm not in accepted:
            raise NameRefused(
                f"{identity!r} is from realm {realm!r}: this hub takes accounts of "
                f"{', '.join(sorted(accepted))} only"
            )
        return local
    return name
