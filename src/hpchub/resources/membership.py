"""Who takes which course, and which course profiles a user sees: pure functions of the site.

The spawn form calls ``arrange_profiles`` so that members see their course's profiles first and
everyone else does not see them at all; the same call on the submit path refuses them.
"""

from __future__ import annotations

import datetime as dt
import grp
import pwd
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from ..core import clock

if TYPE_CHECKING:
    from ..config.courses import Course
    from ..config.models import SiteConfig

T = TypeVar("T")


def today() -> dt.date:
    """The current local date, from the one clock (tests move it instead of waiting)."""
    return dt.date.fromtimestamp(clock.now())


def unix_groups(username: str) -> frozenset[str]:
    """The names of the user's Unix groups, primary group included (empty if unknown)."""
    from ..core.accounts import groups_of  # cached for a minute, shared with the form

    return groups_of(username)


def courses_for(
    site: SiteConfig, username: str, groups: Iterable[str], today: dt.date
) -> list[Course]:
    """The courses ``username`` takes or runs that are active ``today``, in site-file order."""
    group_set = frozenset(groups)
    return [c for c in site.courses if c.active(today) and c.has_member(username, group_set)]


def arrange_profiles(
    items: Sequence[T],
    site: SiteConfig,
    username: str,
    groups: Iterable[str],
    today: dt.date,
    key: Callable[[T], str] = str,
) -> list[T]:
    """``items`` (the profiles the user may otherwise see) in form order, for this user.

    The profiles of the user's active courses come first, in course order. A profile that any
    course names is course-only: it is dropped for users who are not members of an active
    course naming it. Other profiles keep their order. ``items`` are profile keys, or profile
    objects with ``key=operator.attrgetter("key")``.
    """
    by_key = {key(item): item for item in items}
    top: list[str] = []
    for course in courses_for(site, username, groups, today):
        top.extend(k for k in course.profiles if k in by_key and k not in top)
    reserved = {k for c in site.courses for k in c.profiles}
    rest = [k for k in by_key if k not in top and k not in reserved]
    return [by_key[k] for k in top + rest]


def course_members(course: Course) -> list[str]:
    """Every user who takes or runs ``course``, as Unix and the site file know them, sorted."""
    names = set(course.users) | set(course.instructors)
    for group in course.groups:
        try:
            g = grp.getgrnam(group)
        except KeyError:
            continue
        names.update(g.gr_mem)
        names.update(p.pw_name for p in pwd.getpwall() if p.pw_gid == g.gr_gid)
    return sorted(names)
