"""The hub's read-only copy of each course's materials, in the hub's data folder.

- git: fetched at most once per ``refresh_interval`` (see ``git``); when a fetch fails, the
  last good revision is used and said so.
- folder: read where it is (see ``folder``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.courses import local_source
from ..core.clock import now
from ..core.files import atomic_write, file_lock
from .folder import Snapshot, open_source, protected_ids, scan
from .git import GitError, fetch
from .report import when

if TYPE_CHECKING:
    from ..config.courses import Course

KEEP_TREES = 3


class SourceUnavailable(Exception):
    """The materials cannot be read, and there is no earlier copy to use."""


@dataclass
class SourceCache:
    """Per-course cache folders below ``root`` (in the hub's data folder, owned by the hub)."""

    root: Path
    clock: Callable[[], float] = now
    # The hub's own folders (data, configuration, logs): never read as a course folder.
    protected: tuple[Path, ...] = ()

    def snapshot(self, course: Course, fetch: bool = True) -> Snapshot:
        """The materials to stage now. Blocking: the hub runs it in a worker thread."""
        src = course.source
        home = self.root / course.name
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if src.path is not None:
            root = src.path / src.subdir if src.subdir else src.path
            try:
                guard = protected_ids((*self.protected, self.root))
                return scan(root, src.exclude, home / "hashes.json", guard)
            except OSError as err:
                raise SourceUnavailable(
                    f"the course folder {root} cannot be read: {err.strerror or err}"
                ) from None
        with file_lock(home / "lock"):  # one fetch per course at a time, hub and CLI alike
            return self._git_snapshot(course, home, fetch)

    def _git_snapshot(self, course: Course, home: Path, fetch_now: bool) -> Snapshot:
        src = course.source
        current = self._current(home, src.describe())
        problem = None
        if fetch_now and (
            current is None or self.clock() - current["fetched_at"] >= src.refresh_interval
        ):
            try:
                current = self._fetch(course, home)
            except GitError as err:
                if current is None:
                    raise SourceUnavailable(f"git could not fetch {src.git}: {err}") from None
                stamp = when(current["fetched_at"])
                problem = (
                    f"the materials could not be updated ({err}); you have the version of {stamp}"
                )
        if current is None:
            raise SourceUnavailable(f"{src.git} has not been fetched yet")
        snap = scan(home / current["tree"], src.exclude, home / "hashes.json")
        revision, fetched_at = current["revision"][:12], current["fetched_at"]
        return replace(snap, revision=revision, fetched_at=fetched_at, problem=problem)

    def fetched(self, course: str) -> dict | None:
        """What the last fetch of a git course got: source, revision, tree, fetched_at."""
        try:
            return json.loads((self.root / course / "current.json").read_text())
        except (OSError, ValueError):
            return None

    def _current(self, home: Path, key: str) -> dict | None:
        data = self.fetched(home.name)
        if not data or data.get("source") != key or not (home / str(data.get("tree"))).is_dir():
            return None  # the site file now names another repository, ref or sub-folder
        return data

    def _fetch(self, course: Course, home: Path) -> dict:
        src = course.source
        fetched_at = self.clock()
        local = local_source(src)
        if local is not None:  # git would follow any link: refuse them first, as for folders
            try:
                os.close(open_source(local, protected_ids((*self.protected, self.root))))
            except OSError as err:
                raise GitError(str(err)) from None
        revision, tree = fetch(src, home)
        data = {"source": src.describe(), "revision": revision, "tree": tree}
        data["fetched_at"] = fetched_at
        atomic_write(home / "current.json", json.dumps(data), 0o600)
        self._prune(home, keep=tree)
        return data

    def _prune(self, home: Path, keep: str) -> None:
        """Drop old exported trees (an hour after they stopped being current)."""
        trees = sorted(
            (p for p in home.glob("tree-*") if p.is_dir() and p.name != keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in trees[KEEP_TREES - 1 :]:
            if self.clock() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
