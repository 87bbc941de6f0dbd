"""What a student sees in the hub: their courses and how the latest staging went.

``/hub/courses`` is a page in the hub's own look; ``/hub/api/hpchub/courses`` gives the same as
JSON for the hub's other pages. Both show the current user's own reports, and nothing else.
"""

from __future__ import annotations

import json
import pwd
from typing import TYPE_CHECKING, Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from tornado import web

from ..resources.membership import courses_for, today, unix_groups
from . import report as rep
from .paths import REPORT_FILE, expand_target

if TYPE_CHECKING:
    from .stager import CourseStager


def student_view(stager: CourseStager, user: str) -> list[dict[str, Any]]:
    """One entry per active course of ``user``: where the files go, and the latest report."""
    try:
        home = pwd.getpwnam(user).pw_dir
    except KeyError:
        home = "~"
    out = []
    for course in courses_for(stager.site, user, unix_groups(user), today()):
        r = stager.store.load(course.name, user)
        out.append(
            {
                "course": course.name,
                "title": course.title or course.name,
                "folder": str(expand_target(course.target_template, user, home)),
                "profiles": list(course.profiles),
                "state": rep.final_state(r)
                if r and r["state"] != rep.RUNNING
                else (r["state"] if r else "never"),
                "summary": rep.summary(r) if r else "",
                "staged_at": rep.when(r.get("finished_at")) if r else None,
                "problem": r.get("problem") if r else None,
                "conflicts": r["conflicts"] if r else [],
                "blocked": r["files"]["blocked"] if r else [],
                "errors": r["errors"] if r else [],
                "report_file": REPORT_FILE,
            }
        )
    return out


class CoursesPage(BaseHandler):
    """/hub/courses: the current user's courses and staging results."""

    def initialize(self, stager: CourseStager):
        self.stager = stager

    @web.authenticated
    async def get(self):
        courses = student_view(self.stager, self.current_user.name)
        html = await self.render_template("hpchub-courses.html", courses=courses)
        self.finish(html)


class CoursesAPI(APIHandler):
    """GET /hub/api/hpchub/courses: the same, as JSON."""

    def initialize(self, stager: CourseStager):
        self.stager = stager

    async def get(self):
        user = self.current_user
        if user is None or not hasattr(user, "name") or getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "a user's own login or token is required")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"courses": student_view(self.stager, user.name)}))


def handlers(stager: CourseStager) -> list[tuple]:
    """Routes for c.JupyterHub.extra_handlers (below /hub/)."""
    return [
        (r"/courses", CoursesPage, {"stager": stager}),
        (r"/api/hpchub/courses", CoursesAPI, {"stager": stager}),
    ]
