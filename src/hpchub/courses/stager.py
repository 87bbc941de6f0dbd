"""The hub side of staging: get the materials, run the helper as the student, keep the report.

``CourseStager.stage`` is used by the pre-spawn hook (every server start of a member) and by
`hpchub course stage`. It never raises for a staging problem: every outcome is a report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.courses import hub_folders
from ..core.names import check_name
from ..metrics import registry as metrics
from ..resources.membership import courses_for, today, unix_groups
from . import report as rep
from .protocol import MAX_LINE, MISSING, Header, ProtocolError, frame_header, parse_need
from .sources import Snapshot, SourceCache, SourceUnavailable, open_file
from .store import ReportStore

if TYPE_CHECKING:
    from ..config.courses import Course
    from ..config.models import SiteConfig


def _log() -> logging.Logger:
    # JupyterHub's own logger inside the hub (so lines land in its log), a plain one elsewhere.
    from traitlets.log import get_logger

    return get_logger()


HELPER_TIMEOUT = 600


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
        return [
            self.paths.sudo,
            "-n",
            "-u",
            user,
            self.paths.helper,
            "stage-course",
            "--course",
            course.name,
            "--target",
            course.target_template,
        ]

    async def snapshot(self, course: Course) -> Snapshot:
        """The course's materials now (a git fetch runs in a worker thread)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(4, thread_name_prefix="hpchub-courses")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.cache.snapshot, course)

    async def stage(self, course: Course, user: str) -> dict[str, Any]:
        """Stage ``course`` for ``user`` now; the report is stored and returned."""
        started = time.time()
        report = rep.new_report(
            course.name, user, course.title, started_at=started, source=course.source.describe()
        )
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
        header = Header(
            course=course.name,
            title=course.title,
            source=course.source.describe(),
            revision=snap.revision if snap else None,
            fetched_at=snap.fetched_at if snap else None,
            problem=problem,
            files=snap.files if snap else None,
        )
        try:
            result = await run_helper(self.helper_argv(course, user), header, snap, user)
        except Exception as err:
            _log().exception("Staging course %s for %s failed", course.name, user)
            result = {**report, "state": rep.FAILED, "problem": f"staging failed: {err}"}
        result.update(course=course.name, user=user, started_at=started)
        result["seconds"] = round(time.time() - started, 3)
        self.store.save(result)
        metrics.course_staged(course.name, str(result["state"]))
        level = logging.INFO if result["state"] in (rep.OK, rep.CONFLICTS) else logging.WARNING
        _log().log(level, "Course %s for %s: %s", course.name, user, rep.summary(result))
        return result

    # -- the pre-spawn hook ----------------------------------------------------------------
    async def pre_spawn_hook(self, spawner) -> None:
        """Stage the user's active courses before their server starts; never fails a spawn.

        Staging that takes longer than the course's ``spawn_wait`` goes on in the background.
        """
        user = spawner.user.name
        try:
            courses = [
                c
                for c in courses_for(self.site, user, unix_groups(user), today())
                if c.stage_on_spawn
            ]
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

    def reports_for(self, user: str) -> list[dict[str, Any]]:
        """The user's latest report in each active course they take (for the hub's pages)."""
        names = [c.name for c in courses_for(self.site, user, unix_groups(user), today())]
        return self.store.for_user(user, names)


async def run_helper(
    argv: list[str], header: Header, snap: Snapshot | None, user: str
) -> dict[str, Any]:
    """Run the staging helper and speak the protocol with it; its (sanitized) report."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd="/",
        limit=MAX_LINE + 1,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    errors = asyncio.ensure_future(_read_capped(proc.stderr, 64 * 1024))
    failure = None
    lines: list[bytes] = []
    try:
        lines = await asyncio.wait_for(_converse(proc, header, snap), HELPER_TIMEOUT)
    except TimeoutError:
        failure = f"staging took longer than {HELPER_TIMEOUT} s"
    except ProtocolError as err:
        failure = f"staging protocol: {err}"
    except (ConnectionError, ValueError):
        pass  # the helper went away early: its exit status and stderr say why
    finally:
        with contextlib.suppress(Exception):
            proc.stdin.close()
    try:
        code = await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            proc.kill()
        code = -1
    try:
        stderr = (await asyncio.wait_for(errors, 5)).decode(errors="replace").strip()
    except TimeoutError:
        stderr = ""
    for line in reversed(lines):
        data = report_from_line(line)
        if data is not None:
            return rep.sanitize(data, header.course, user)
    return rep.new_report(
        header.course,
        user,
        header.title,
        state=rep.FAILED,
        source=header.source,
        revision=header.revision,
        problem=failure or explain_helper_failure(code, stderr),
    )


def report_from_line(line: bytes) -> dict[str, Any] | None:
    """A report from one line of the helper's output, if it is one."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if isinstance(data, dict) and "state" in data and "files" in data:
        return data
    return None


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    """Everything ``stream`` sends until EOF, keeping at most ``cap`` bytes."""
    kept = b""
    while chunk := await stream.read(64 * 1024):
        kept = (kept + chunk)[:cap]
    return kept


async def _converse(proc, header: Header, snap: Snapshot | None) -> list[bytes]:
    """Header out, need in, files out, report in; the helper's remaining output lines."""
    proc.stdin.write(header.to_line())
    await proc.stdin.drain()
    first = await proc.stdout.readline()
    if not first:
        return []
    try:
        need = parse_need(first, header.files or {})
    except ProtocolError:
        proc.stdin.close()  # the helper stops at the end of its input
        rest = await _read_capped(proc.stdout, MAX_LINE)
        if report_from_line(first) is not None:
            return [first, *rest.splitlines()]  # it failed before asking for anything
        raise
    if need:
        assert snap is not None
        await _send_files(proc.stdin, snap, need)
    proc.stdin.close()
    return (await _read_capped(proc.stdout, MAX_LINE)).splitlines()


async def _send_files(stdin, snap: Snapshot, need: list[str]) -> None:
    for rel in need:
        try:
            fd = open_file(snap.root, rel, snap.root_id)
        except OSError:
            stdin.write(frame_header(MISSING))
            continue
        try:
            size = os.fstat(fd).st_size
            stdin.write(frame_header(size))
            left = size
            while left:
                data = os.read(fd, min(1024 * 1024, left))
                if not data:  # the file shrank meanwhile: pad; the helper's hash check says so
                    data = b"\0" * min(1024 * 1024, left)
                stdin.write(data)
                left -= len(data)
                await stdin.drain()
        finally:
            os.close(fd)
    await stdin.drain()


def explain_helper_failure(code: int, stderr: str) -> str:
    """Why the helper did not report, in words an admin can act on."""
    last = stderr.splitlines()[-1] if stderr else ""
    if "a password is required" in stderr or "not allowed to execute" in stderr:
        return (
            "the hub may not run the staging helper as this user: add "
            "'hpchub-user stage-course *' to the hub's sudo rule, and check that the user is "
            f"in the group it names ({last})"
        )
    if "No such file" in stderr or code == 127:
        return f"the staging helper is missing ({last or 'exit 127'})"
    return f"the staging helper failed with exit status {code}" + (f": {last}" if last else "")
