"""The hub side of staging: get the materials, run the helper as the student, keep the report.

``CourseStager.stage`` is used by the pre-spawn hook (every server start of a member) and by
`hpchub course stage`. It never raises for a staging problem: every outcome is a report.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.courses import hub_folders
from ..core.clock import now
from ..core.names import check_name
from ..metrics import registry as metrics
from ..resources.membership import courses_for, today, unix_groups
from . import report as rep
from .cache import SourceCache, SourceUnavailable
from .folder import Snapshot
from .helper import run_helper
from .protocol import Header
from .store import ReportStore

if TYPE_CHECKING:
    from ..config.courses import Course
    from ..config.models import SiteConfig


def _log() -> logging.Logger:
    # JupyterHub's own logger inside the hub (so lines land in its log), a plain one elsewhere.
    from traitlets.log import get_logger

    return get_logger()


@dataclass(frozen=True)
class StagerPaths:
    """Where the stager finds its tools and keeps its state."""

    data_dir: Path
    helper: str
    sudo: str

    @property
    def cache(self) -> Path:
        return self.data_dir / "courses" / "cache"

    @property
    def reports(self) -> Path:
        return self.data_dir / "courses" / "reports"

    def ensure(self) -> None:
        """The private folders below the hub's data folder (mode 700, like the folder itself)."""
        for d in (self.data_dir / "courses", self.cache, self.reports):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)

    @classmethod
    def from_site(cls, site: SiteConfig) -> StagerPaths:
        return cls(
            data_dir=Path(site.hub.data_dir),
            helper=str(Path(site.singleuser.prefix) / "bin" / "hpchub-user"),
            sudo=str(site.slurm.sudo),
        )


class CourseStager:
    """Stages courses for users; one per hub (and one per `hpchub course stage` run)."""

    def __init__(self, site: SiteConfig, paths: StagerPaths | None = None):
        self.site = site
        self.paths = paths or StagerPaths.from_site(site)
        self.cache = SourceCache(self.paths.cache, protected=hub_folders(site))
        self.store = ReportStore(self.paths.reports)
        self._executor: ThreadPoolExecutor | None = None
        self._background: set[asyncio.Task] = set()

    # The hub deep-copies its configuration; a stager holds a thread pool and running tasks,
    # and must stay one object.
    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def course(self, name: str) -> Course:
        """The course called ``name``; KeyError if the site has none."""
        for c in self.site.courses:
            if c.name == name:
                return c
        raise KeyError(name)

    def helper_argv(self, course: Course, user: str) -> list[str]:
        """sudo -n -u USER hpchub-user stage-course --course NAME --target TEMPLATE."""
        check_name("unix", user, "user name")
        target = ["--course", course.name, "--target", course.target_template]
        return [self.paths.sudo, "-n", "-u", user, self.paths.helper, "stage-course", *target]

    async def snapshot(self, course: Course) -> Snapshot:
        """The course's materials now (a git fetch runs in a worker thread)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(4, thread_name_prefix="hpchub-courses")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.cache.snapshot, course)

    async def stage(self, course: Course, user: str) -> rep.Report:
        """Stage ``course`` for ``user`` now; the report is stored and returned."""
        started = now()
        source = course.source.describe()
        report = rep.Report(course.name, user, course.title, started_at=started, source=source)
        self.paths.ensure()
        self.store.save(report)
        try:
            snap: Snapshot | None = await self.snapshot(course)
            problem = snap.problem
        except SourceUnavailable as err:
            snap, problem = None, str(err)
        except Exception as err:  # a bug must not cost the student their server
            _log().exception("Reading the materials of course %s failed", course.name)
            snap, problem = None, f"the hub could not read the materials: {err}"
        found = (snap.revision, snap.fetched_at) if snap else (None, None)
        files = snap.files if snap else None
        header = Header(course.name, course.title, source, *found, problem, files)
        try:
            result = await run_helper(self.helper_argv(course, user), header, snap, user)
        except Exception as err:
            _log().exception("Staging course %s for %s failed", course.name, user)
            result = report
            result.state, result.problem = rep.FAILED, f"staging failed: {err}"
        result.course, result.user, result.started_at = course.name, user, started
        result.seconds = round(now() - started, 3)
        self.store.save(result)
        metrics.course_staged(course.name, str(result.state))
        level = logging.INFO if result.state in (rep.OK, rep.CONFLICTS) else logging.WARNING
        _log().log(level, "Course %s for %s: %s", course.name, user, result.summary())
        return result

    # -- the pre-spawn hook ----------------------------------------------------------------
    async def pre_spawn_hook(self, spawner) -> None:
        """Stage the user's active courses before their server starts; never fails a spawn.

        Staging that takes longer than the course's ``spawn_wait`` goes on in the background.
        """
        user = spawner.user.name
        try:
            courses = courses_for(self.site, user, unix_groups(user), today())
            courses = [c for c in courses if c.stage_on_spawn]
        except Exception:
            _log().exception("Finding the courses of %s failed", user)
            return
        if not courses:
            return
        tasks = [asyncio.ensure_future(self._stage_logged(c, user)) for c in courses]
        for t in tasks:
            self._background.add(t)
            t.add_done_callback(self._background.discard)
        wait = max(c.spawn_wait for c in courses)
        if wait == 0:
            return  # the site chose not to wait: staging runs beside the job's start
        _done, pending = await asyncio.wait(tasks, timeout=wait)
        if pending:
            _log().warning(
                "Staging for %s takes longer than %d s; the server starts meanwhile", user, wait
            )

    async def _stage_logged(self, course: Course, user: str) -> None:
        try:
            await self.stage(course, user)
        except Exception:
            _log().exception("Staging course %s for %s failed", course.name, user)
