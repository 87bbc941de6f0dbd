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

from ..core.coursepaths import REPORT_FILE, expand_target
from ..resources.membership import courses_for, today, unix_groups
from . import report as rep

if TYPE_CHECKING:
    from .stager import CourseStager


def _courses(stager: CourseStager, user: str) -> list[tuple[dict[str, Any], str | None]]:
    """Per active course of ``user``: where its files go, and the stored view of the report."""
    try:
        home = pwd.getpwnam(user).pw_dir
    except KeyError:
        home = "~"
    out = []
    for course in courses_for(stager.site, user, unix_groups(user), today()):
        entry = {
            "course": course.name,
            "title": course.title or course.name,
            "folder": str(expand_target(course.target_template, user, home)),
            "profiles": list(course.profiles),
            "report_file": REPORT_FILE,
        }
        out.append((entry, stager.store.view(course.name, user)))
    return out


def student_view(stager: CourseStager, user: str) -> list[dict[str, Any]]:
    """One entry per active course of ``user``: where the files go, and the latest report."""
    return json.loads(student_view_json(stager, user))["courses"]


def student_view_json(stager: CourseStager, user: str) -> str:
    """The same as JSON text, the stored views spliced in as they are (never parsed again)."""
    parts = []
    for entry, view in _courses(stager, user):
        ok = view and view.startswith("{") and view.endswith("}") and view != "{}"
        body = view if ok else json.dumps(rep.never_view())
        parts.append(json.dumps(entry)[:-1] + "," + body[1:])
    return '{"courses": [' + ", ".join(parts) + "]}"


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
        self.finish(student_view_json(self.stager, user.name))


def handlers(stager: CourseStager) -> list[tuple]:
    """Routes for c.JupyterHub.extra_handlers (below /hub/)."""
    return [
        (r"/courses", CoursesPage, {"stager": stager}),
        (r"/api/hpchub/courses", CoursesAPI, {"stager": stager}),
    ]
