"""`hpchub course list | status NAME | stage NAME --user U`: the instructor's tools.

They run on the hub node as root or as the hub user (the owner of hub.data_dir). An instructor
gets them through a sudo rule; run through sudo by anyone but root, they act only on courses
that list the caller among their instructors. Staging always runs as the hub user, through the
same sudo rule and helper as a spawn, so files, cache and reports are owned as the hub owns them.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import sys
from pathlib import Path

from ..config.loader import load_site, site_path
from ..core.accounts import current_user, user_exists
from ..core.text import printable


def register(sub) -> None:
    p = sub.add_parser("course", help="courses and workshops: members, staging, reports")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = csub.add_parser("list", help="the site's courses, their dates and sources")
    ls.set_defaults(func=list_courses)
    st = csub.add_parser("status", help="members, their servers and their latest staging")
    st.add_argument("name", help="the course's name")
    st.add_argument("--json", action="store_true", help="print plain data")
    st.add_argument("--user", help="show the full report of this member")
    st.set_defaults(func=status)
    sg = csub.add_parser("stage", help="stage the materials for a member now")
    sg.add_argument("name", help="the course's name")
    who = sg.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", action="append", help="a member (repeatable)")
    who.add_argument(
        "--started", action="store_true", help="every member who has started a server before"
    )
    sg.add_argument("--json", action="store_true", help="print the reports as JSON")
    sg.set_defaults(func=stage)


def _fail(msg: str) -> int:
    print(f"hpchub course: {msg}", file=sys.stderr)
    return 2


def _course(site, name: str):
    for c in site.courses:
        if c.name == name:
            return c
    known = ", ".join(c.name for c in site.courses) or "none"
    raise LookupError(f"no course {name!r} in the site file (courses: {known})")


def _site_and_course(args):
    """(site, course) for ``args.name``, checked against the caller; or an exit status."""
    site = load_site(args.config)
    try:
        course = _course(site, args.name)
    except LookupError as err:
        return _fail(str(err))
    refused = check_caller(course)
    if refused:
        return _fail(refused)
    return site, course


def hub_user(site) -> str | None:
    """The hub user: the owner of the hub's data folder (None if it does not exist)."""
    try:
        return pwd.getpwuid(os.stat(site.hub.data_dir).st_uid).pw_name
    except (OSError, KeyError):
        return None


def check_caller(course, environ=None, euid: int | None = None) -> str | None:
    """Why the caller may not act on ``course`` (None: they may)."""
    env = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return None  # the hub user: file permissions decide
    caller = env.get("SUDO_USER")
    if caller and caller != "root" and caller not in course.instructors:
        return f"{caller} is not an instructor of course {course.name!r}"
    return None


def list_courses(args) -> int:
    site = load_site(args.config)
    from ..resources.membership import today

    if not site.courses:
        print("no courses in the site file")
        return 0
    for c in site.courses:
        state = "active" if c.active(today()) else "not active"
        dates = f"{c.start or '...'} to {c.end or '...'}"
        who = ", ".join([*(f"group {g}" for g in c.groups), *c.users, *c.instructors])
        print(f"{c.name}: {c.title or '(no title)'} [{state}, {dates}]")
        print(f"  members: {who}")
        print(f"  source:  {c.source.describe()} -> {c.target_template}")
        if c.profiles:
            print(f"  profiles: {', '.join(c.profiles)}")
    return 0


def status(args) -> int:
    found = _site_and_course(args)
    if isinstance(found, int):
        return found
    site, course = found
    from ..courses import status as st
    from ..courses.cache import SourceCache
    from ..courses.stager import StagerPaths
    from ..courses.store import ReportStore
    from ..resources.membership import course_members, today

    paths = StagerPaths.from_site(site)
    if not paths.data_dir.is_dir():
        return _fail(
            f"{paths.data_dir} (hub.data_dir) does not exist: has the hub ever run with this "
            "site file? Nobody has been staged yet"
        )
    if not os.access(paths.data_dir, os.R_OK | os.X_OK):
        return _fail(f"cannot read {paths.data_dir}: run as root (or sudo) or as the hub user")
    store = ReportStore(paths.reports)
    if args.user:
        try:
            args.user = site.hub.account_of(args.user)
        except ValueError as err:
            return _fail(f"--user: {printable(err)}")
        r = store.load(course.name, args.user)
        if r is None:
            return _fail(f"{args.user} has no staging report in {course.name}")
        print(json.dumps(r.data(), indent=2) if args.json else _details(r))
        return 0
    members = course_members(course)
    known = [u for u in members if user_exists(u)]
    jobs, problem = st.query_jobs(known, site.slurm, site.hub.name)
    rows = st.build_rows(members, store.for_course(course.name), jobs)
    fetched = SourceCache(paths.cache).fetched(course.name)
    if args.json:
        print(json.dumps(st.as_json(course, rows, fetched, problem), indent=2, default=str))
    else:
        print(st.render(course, rows, today(), fetched, problem), end="")
    return 0


def _details(r) -> str:
    from ..courses.report import LISTED, when

    lines = [
        f"{r.user} in {r.course}: {r.state}, {r.summary()}",
        f"  staged {when(r.finished_at)} in {r.seconds} s into {r.target}",
        f"  source {r.source} at revision {r.revision}",
    ]
    for c in r.conflicts:
        lines.append(f"  conflict: {c.path} (upstream version saved as {c.upstream_copy})")
    for e in r.errors:
        lines.append(f"  error:    {e.path}: {e.error}")
    for kind in LISTED:
        for p in r.files[kind]:
            lines.append(f"  {kind + ':':9} {p}")
    return "\n".join(printable(line) for line in lines)


def stage(args) -> int:
    found = _site_and_course(args)
    if isinstance(found, int):
        return found
    site, course = found
    from ..courses.report import OK
    from ..courses.stager import StagerPaths
    from ..courses.store import ReportStore
    from ..resources.membership import unix_groups

    if args.started:
        started = ReportStore(StagerPaths.from_site(site).reports).for_course(course.name)
        args.user = [u for u in sorted(started) if course.has_member(u, unix_groups(u))]
        if not args.user:
            print(f"nobody has started a server in {course.name} yet")
            return 0
    else:
        try:
            args.user = [site.hub.account_of(u) for u in args.user]
        except ValueError as err:
            return _fail(f"--user: {printable(err)}")
    outsiders = [u for u in args.user if not course.has_member(u, unix_groups(u))]
    if outsiders:
        # Staging would hand the course's materials to someone outside it.
        return _fail(f"not members of course {course.name!r}: {', '.join(outsiders)}")
    owner = hub_user(site)
    if owner is None:
        return _fail(f"{site.hub.data_dir} does not exist: has the hub ever run?")
    me = current_user()
    if me != owner:
        if os.geteuid() != 0:
            return _fail(f"run as root (or through sudo) or as the hub user {owner}")
        return _as_hub_user(site, owner, args)
    from ..courses.stager import CourseStager

    stager = CourseStager(site)
    reports = [asyncio.run(stager.stage(course, user)) for user in args.user]
    if args.json:
        print(json.dumps([r.data() for r in reports], indent=2))
    else:
        for r in reports:
            print(printable(f"{r.user}: {r.state}: {r.summary()}"))
    return 0 if all(r.state == OK for r in reports) else 1


def _as_hub_user(site, owner: str, args) -> int:
    """Run this same command as the hub user, with the hub's own installation of hpchub."""
    import subprocess

    exe = Path(site.singleuser.prefix) / "bin" / "hpchub"
    if not exe.exists():
        return _fail(f"{exe} is missing: hpchub must be installed in singleuser.prefix")
    argv = ["/usr/sbin/runuser", "-u", owner, "--", str(exe)]
    argv += ["--config", str(site_path(args.config).resolve()), "course", "stage", args.name]
    for user in args.user:
        argv += ["--user", user]  # --started is resolved before this point
    if args.json:
        argv.append("--json")
    env = {"PATH": "/usr/bin:/bin", "LANG": os.environ.get("LANG", "C.UTF-8")}
    return subprocess.run(argv, env=env, cwd="/").returncode  # noqa: S603 - fixed argv
