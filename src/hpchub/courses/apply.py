"""The student's side of one staging: look at their copies, decide (``plan``), receive the files
the hub sends, and record each outcome in the report. Runs as the student, on paths below the
folder the helper opened (``/proc/self/fd/N``), so nothing done here leaves that folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..core.coursepaths import check_relpath
from ..core.files import sha256_fd
from .plan import BLOCKED, MISSING, Action, Kind, Staged, Upstream, plan, sidecar_name
from .protocol import CHUNK, Header, ProtocolError, read_frame_size
from .protocol import MISSING as FRAME_MISSING
from .report import Conflict, FileError, Report


@dataclass
class Manifest:
    """What the student's folder remembers: the files as last staged, and the conflicts still
    open (file -> its upstream copy), reported at every staging until the student deletes the
    copy."""

    files: dict[str, Staged] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    """The sha256 of a regular file's content (a link is never followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return sha256_fd(fd, CHUNK)
    finally:
        os.close(fd)


def in_folders(target: Path, rel: str) -> bool:
    """Whether ``rel`` (a checked relative path) leads through real folders only, and is not a
    link itself, so that nothing done to it lands outside ``target``."""
    folder = target
    for part in rel.split("/"):
        folder = folder / part
        try:
            if stat.S_ISLNK(os.lstat(folder).st_mode):
                return False
        except FileNotFoundError:
            return True
        except NotADirectoryError:
            return False
    return True


def still_open(target: Path, conflicts: Mapping[str, str]) -> list[Conflict]:
    """The conflicts whose upstream copy the student has not deleted yet (both paths were
    checked when the manifest was read)."""
    return [
        Conflict(path, side)
        for path, side in sorted(conflicts.items())
        if in_folders(target, side) and (target / side).is_file()
    ]


def local_state(target: Path, rel: str, staged: Staged | None) -> tuple[str, os.stat_result | None]:
    """The student's copy of ``rel``: its sha256 (MISSING, BLOCKED) and its stat."""
    if not in_folders(target, rel):
        return BLOCKED, None
    try:
        st = os.lstat(target / rel)
    except FileNotFoundError:
        return MISSING, None
    except NotADirectoryError:
        return BLOCKED, None
    if not stat.S_ISREG(st.st_mode):
        return BLOCKED, st
    if staged is not None and _seen(st) == (staged.local_size, staged.local_mtime_ns):
        return staged.local_sha256, st
    try:
        return file_sha256(target / rel), st
    except OSError:
        return BLOCKED, st


def _make_parents(target: Path, rel: str) -> None:
    folder = target
    for part in rel.split("/")[:-1]:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o755)
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            raise OSError(errno.ENOTDIR, f"{folder.relative_to(target)} is not a folder")


def receive(stream: IO[bytes], size: int, target: Path, rel: str, up: Upstream) -> os.stat_result:
    """Read ``size`` bytes from ``stream`` into ``target/rel`` (atomically once their hash is
    checked). The stream is always consumed to the end of this file, whatever fails (even its
    folders), so the next file still lines up."""
    dest = target / rel
    tmp = dest.with_name(f".{dest.name}.hpchub-{os.getpid()}.tmp")
    h = hashlib.sha256()
    left = size
    fd = None
    error: OSError | None = None
    try:
        _make_parents(target, rel)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        error = err
    while left:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise ProtocolError("the hub stopped in the middle of a file")
        left -= len(chunk)
        h.update(chunk)
        if fd is not None and error is None:
            try:
                os.write(fd, chunk)
            except OSError as err:
                error = err
    try:
        if error is not None:
            raise error
        if h.hexdigest() != up.sha256 or size != up.size:
            raise ValueError("the file changed at the source while it was sent; try again")
        assert fd is not None
        os.fchmod(fd, 0o755 if up.executable else 0o644)
        os.close(fd)
        fd = None
        os.replace(tmp, dest)
        return os.stat(dest)
    finally:
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def explain(err: Exception) -> str:
    """An error in words a student can act on."""
    if not isinstance(err, OSError):
        return str(err)
    full = {errno.EDQUOT: "your disk quota is full", errno.ENOSPC: "the filesystem is full"}
    return full.get(err.errno or 0) or err.strerror or str(err)


def _seen(st: os.stat_result | None) -> tuple[int, int] | None:
    """What tells a copy changed without reading it: its size and mtime."""
    return (st.st_size, st.st_mtime_ns) if st else None


class Staging:
    """One run: the plan made, the files received, each outcome recorded in the report."""

    def __init__(self, header: Header, target: Path, report: Report):
        self.header = header
        self.target = target
        self.report = report
        self.upstream: dict[str, Upstream] = {}
        self.staged: dict[str, Staged] = {}
        self.local: dict[str, str] = {}
        self.stats: dict[str, os.stat_result | None] = {}
        self.sidecars: dict[str, str] = {}
        self.written: dict[str, os.stat_result] = {}
        self.open_conflicts: dict[str, str] = {}

    def error(self, path: str, err: Exception | str) -> None:
        self.report.errors.append(FileError(path, err if isinstance(err, str) else explain(err)))

    def prepare(self, manifest: Manifest) -> list[Action]:
        """Check the announced paths, look at the student's copies, decide."""
        for rel, up in (self.header.files or {}).items():
            try:
                self.upstream[check_relpath(rel)] = up
            except ValueError as err:
                self.error(rel, err)
        for rel in manifest.rejected:
            self.error(rel, "an unsafe path in this folder's manifest was ignored")
        self.staged = dict(manifest.files)
        self.open_conflicts = dict(manifest.conflicts)
        for rel in set(self.upstream) | set(self.staged):
            self.local[rel], self.stats[rel] = local_state(self.target, rel, self.staged.get(rel))
        actions = plan(self.upstream, self.staged, self.local)
        for a in actions:
            if a.kind is Kind.CONFLICT:
                self.sidecars[a.path] = self._sidecar(a.path)
        return actions

    def _sidecar(self, rel: str) -> str:
        """A free name beside ``rel`` (an existing copy of this very version is reused)."""
        taken = set(self.upstream) | set(self.staged) | set(self.sidecars.values())
        while True:
            name = sidecar_name(rel, taken)
            if local_state(self.target, name, None)[0] in (MISSING, self.upstream[rel].sha256):
                return name
            taken.add(name)

    def needed(self, actions: list[Action]) -> list[str]:
        """Paths whose content must come from the hub (a sidecar already in place needs none)."""
        return [
            a.path
            for a in actions
            if a.kind.writes_upstream
            and not (
                a.kind is Kind.CONFLICT
                and local_state(self.target, self.sidecars[a.path], None)[0]
                == self.upstream[a.path].sha256
            )
        ]

    def apply(self, actions: list[Action], need: list[str], stream: IO[bytes]) -> Manifest:
        """Receive the needed files, record every action, return the new manifest."""
        by_path = {a.path: a for a in actions}
        for rel in need:
            size = read_frame_size(stream)
            if size == FRAME_MISSING:
                self.error(rel, "the hub could not read this file of the materials")
                continue
            if by_path[rel].kind is Kind.UPDATE and self._changed_since_scan(rel):
                # The student edited it a moment ago: keep theirs, put the update beside it.
                self.sidecars[rel] = self._sidecar(rel)
                by_path[rel] = Action(Kind.CONFLICT, rel)
            dest = self.sidecars.get(rel, rel)
            try:
                self.written[rel] = receive(stream, size, self.target, dest, self.upstream[rel])
            except (OSError, ValueError) as err:
                self.error(dest, err)
        new: dict[str, Staged] = {}
        for rel, action in sorted(by_path.items()):
            entry = HANDLERS[action.kind](self, rel, action.kind)
            if entry is not None:
                new[rel] = entry
        fresh = {c.path for c in self.report.conflicts}
        older = {p: s for p, s in self.open_conflicts.items() if p in new and p not in fresh}
        self.report.conflicts += still_open(self.target, older)
        return Manifest(new, {c.path: c.upstream_copy for c in self.report.conflicts})

    def _changed_since_scan(self, rel: str) -> bool:
        try:
            now = os.lstat(self.target / rel)
        except OSError:
            now = None
        return _seen(now) != _seen(self.stats.get(rel))

    # One handler per kind of outcome: it lists the path in the report and returns the
    # path's manifest entry (None: no longer tracked).
    def _written(self, rel: str, kind: Kind) -> Staged | None:
        if rel not in self.written:
            return self.staged.get(rel)  # failed: already listed as an error
        self.report.files[kind.value].append(rel)
        w, up = self.written[rel], self.upstream[rel]
        return Staged(up.sha256, up.sha256, w.st_size, w.st_mtime_ns)

    def _same(self, rel: str, kind: Kind) -> Staged:
        self.report.unchanged += 1
        st, up = self.stats[rel], self.upstream[rel]
        return Staged(up.sha256, up.sha256, st.st_size, st.st_mtime_ns)

    def _kept(self, rel: str, kind: Kind) -> Staged:
        self.report.files[kind.value].append(rel)
        st = self.stats[rel]
        return Staged(self.staged[rel].sha256, self.local[rel], st.st_size, st.st_mtime_ns)

    def _conflict(self, rel: str, kind: Kind) -> Staged | None:
        side = self.sidecars[rel]
        if not (self.target / side).is_file() or any(e.path == side for e in self.report.errors):
            return self.staged.get(rel)
        self.report.conflicts.append(Conflict(rel, side))
        try:
            now = os.lstat(self.target / rel)
            sha = file_sha256(self.target / rel)
        except OSError:
            return None
        return Staged(self.upstream[rel].sha256, sha, now.st_size, now.st_mtime_ns)

    def _blocked(self, rel: str, kind: Kind) -> Staged | None:
        self.report.files[kind.value].append(rel)
        return self.staged.get(rel)

    def _removed(self, rel: str, kind: Kind) -> Staged | None:
        old, path = self.staged[rel], self.target / rel
        try:
            if in_folders(self.target, rel) and file_sha256(path) == old.sha256:
                os.unlink(path)
                self.report.files[kind.value].append(rel)
                return None
        except OSError as err:
            self.error(rel, err)
            return old
        return self._left(rel, Kind.ORPHAN)

    def _left(self, rel: str, kind: Kind) -> None:
        self.report.files[kind.value].append(rel)

    def _forgotten(self, rel: str, kind: Kind) -> None:
        pass


HANDLERS: dict[Kind, Callable[[Staging, str, Kind], Staged | None]] = {
    Kind.ADD: Staging._written,
    Kind.RESTORE: Staging._written,
    Kind.UPDATE: Staging._written,
    Kind.SAME: Staging._same,
    Kind.KEEP: Staging._kept,
    Kind.CONFLICT: Staging._conflict,
    Kind.BLOCKED: Staging._blocked,
    Kind.REMOVE: Staging._removed,
    Kind.ORPHAN: Staging._left,
    Kind.GONE: Staging._forgotten,
}
