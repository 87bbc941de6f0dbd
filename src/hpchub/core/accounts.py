"""The user's Unix identity as the hub node sees it (NSS): home folder and groups."""

from __future__ import annotations

import grp
import os
import pwd

from ..core import clock

_GROUP_CACHE: dict[str, tuple[float, frozenset[str]]] = {}
_TTL = 60.0


def user_exists(name: str) -> bool:
    """Whether this node knows a user called ``name``."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def group_exists(name: str) -> bool:
    """Whether this node knows a group called ``name``."""
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def owner_ids(owner: str, group: str, chown: bool = True) -> tuple[int, int]:
    """(uid, gid) to give a file; (-1, -1), which changes nothing, when not chowning."""
    return (pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid) if chown else (-1, -1)


def home_of(user: str) -> str | None:
    try:
        return pwd.getpwnam(user).pw_dir
    except KeyError:
        return None


def groups_of(user: str) -> frozenset[str]:
    """Names of the groups ``user`` belongs to (cached for a minute; empty if unknown)."""
    hit = _GROUP_CACHE.get(user)
    now = clock.now()
    if hit and now - hit[0] < _TTL:
        return hit[1]
    try:
        gid = pwd.getpwnam(user).pw_gid
        names = set()
        for g in os.getgrouplist(user, gid):
            try:
                names.add(grp.getgrgid(g).gr_name)
            except KeyError:
                continue
        result = frozenset(names)
    except KeyError:
        result = frozenset()
    _GROUP_CACHE[user] = (now, result)
    return result


def current_user() -> str:
    """The name of the user this process runs as."""
    return pwd.getpwuid(os.geteuid()).pw_name
