"""`hpchub-user stage-course`: bring a course's materials into the student's folder, as the
student (through the hub's sudo rule), so every file is theirs and the folder is private.

The hub sends the materials over stdin (see ``protocol``); this side decides per file with
``plan`` against the manifest it keeps in ``TARGET/.hpchub/manifest.json``, and never
overwrites a file the student changed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import pwd
import stat
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..core.coursepaths import (
    REPORT_FILE,
    STATE_DIR,
    check_course_name,
    check_relpath,
    expand_target,
    owned_from,
)
from ..core.files import UnsafePath, open_owned_dir, owned_subdir
from . import report as rep
from .plan import BLOCKED, MISSING, Action, Kind, Staged, Upstream, plan, sidecar_name
from .protocol import (
    CHUNK,
    MAX_LINE,
    Header,
    ProtocolError,
    need_line,
    read_frame_size,
)
from .protocol import MISSING as FRAME_MISSING

MANIFEST_VERSION = 1
LOCK_WAIT_SECONDS = 120


class StageError(Exception):
    """Staging cannot go on at all (the target cannot be made, another course owns it...)."""


def file_sha256(path: Path) -> str:
    """The sha256 of a regular file's content."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


# -- the manifest ----------------------------------------------------------------------------
@dataclass
class Manifest:
    """What the student's folder remembers: the files as last staged, and the conflicts still
    open (file -> its upstream copy), reported at every staging until the student deletes the
    copy."""

    files: dict[str, Staged] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)


def _safe(rel: Any) -> bool:
    try:
        check_relpath(rel)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def load_manifest(state_dir: Path, course: str) -> Manifest:
    """What was staged last time (empty when there is no readable manifest)."""
    try:
        data = json.loads((state_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return Manifest()
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        return Manifest()
    if data.get("course") != course:
        raise StageError(
            f"this folder holds the materials of course {data.get('course')!r}, not {course!r}"
        )
    out = Manifest()
    files = data.get("files") if isinstance(data.get("files"), dict) else {}
    for path, e in files.items():
        if not _safe(path):  # never used: it could name a file outside the course folder
            out.rejected.append(str(path))
            continue
        try:
            out.files[path] = Staged(
                e["sha256"], e["local"][0], int(e["local"][1]), int(e["local"][2])
            )
        except (KeyError, TypeError, ValueError, IndexError):
            continue
    conflicts = data.get("conflicts")
    if isinstance(conflicts, dict):
        for k, v in conflicts.items():
            if _safe(k) and _safe(v):
                out.conflicts[k] = v
            else:
                out.rejected.append(str(k))
    return out


def save_manifest(state_dir: Path, course: str, revision: str | None, manifest: Manifest):
    """Write the manifest atomically (mode 600)."""
    data = {
        "version": MANIFEST_VERSION,
        "course": course,
        "revision": revision,
        "files": {
            p: {"sha256": s.sha256, "local": [s.local_sha256, s.local_size, s.local_mtime_ns]}
            for p, s in sorted(manifest.files.items())
        },
        "conflicts": dict(sorted(manifest.conflicts.items())),
    }
    write_atomic(state_dir / "manifest.json", json.dumps(data, indent=1).encode(), 0o600)


def still_open(target: Path, conflicts: Mapping[str, str]) -> dict[str, str]:
    """The conflicts whose upstream copy the student has not deleted yet."""
    out = {}
    for path, side in conflicts.items():
        try:
            check_relpath(path)
            check_relpath(side)
        except ValueError:
            continue
        if in_folders(target, side) and (target / side).is_file():
            out[path] = side
    return out


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@contextlib.contextmanager
def staging_lock(state_dir: Path, wait: float = LOCK_WAIT_SECONDS):
    """One staging at a time per folder (a spawn and an instructor's re-run may meet)."""
    fd = os.open(state_dir / "lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StageError("another staging of this folder is still running") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


# -- the student's copies --------------------------------------------------------------------
def in_folders(target: Path, rel: str) -> bool:
    """Whether ``rel`` (a checked relative path) leads through real folders only, and is not a
    link itself, so that nothing done to it lands outside ``target``."""
    folder = target
    for part in rel.split("/"):
        folder = folder / part
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            return True
        except NotADirectoryError:
            return False
        if stat.S_ISLNK(st.st_mode):
            return False
    return True


def local_state(target: Path, rel: str, staged: Staged | None) -> tuple[str, os.stat_result | None]:
    """The student's copy of ``rel``: its sha256 (MISSING, BLOCKED) and its stat."""
    path = target / rel
    if not in_folders(target, rel):
        return BLOCKED, None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return MISSING, None
    except NotADirectoryError:
        return BLOCKED, None
    if not stat.S_ISREG(st.st_mode):
        return BLOCKED, st
    if staged is not None and (st.st_size, st.st_mtime_ns) == (
        staged.local_size,
        staged.local_mtime_ns,
    ):
        return staged.local_sha256, st
    try:
        return file_sha256(path), st
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


def receive(stream: IO[bytes], size: int, dest: Path, up: Upstream) -> os.stat_result:
    """Read ``size`` bytes from ``stream`` into ``dest`` (atomically) and check them.

    The stream is always consumed to the end of this file, whatever fails, so the next file
    still lines up.
    """
    tmp = dest.with_name(f".{dest.name}.hpchub-{os.getpid()}.tmp")
    h = hashlib.sha256()
    left = size
    fd = None
    error: OSError | None = None
    try:
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


def _explain(err: Exception) -> str:
    if isinstance(err, OSError):
        if err.errno == errno.EDQUOT:
            return "your disk quota is full"
        if err.errno == errno.ENOSPC:
            return "the filesystem is full"
        return err.strerror or str(err)
    return str(err)


# -- one staging -----------------------------------------------------------------------------
class Staging:
    """One run: the header is read, the plan made, the files received, the manifest saved."""

    def __init__(self, header: Header, target: Path, report: dict[str, Any]):
        self.header = header
        self.target = target
        self.report = report
        self.upstream: dict[str, Upstream] = {}
        self.staged: dict[str, Staged] = {}
        self.local: dict[str, str] = {}
        self.stats: dict[str, os.stat_result | None] = {}
        self.sidecars: dict[str, str] = {}
        self.open_conflicts: dict[str, str] = {}

    def error(self, path: str, err: Exception | str) -> None:
        text = err if isinstance(err, str) else _explain(err)
        self.report["errors"].append({"path": path, "error": text})

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
        taken = set(self.upstream) | set(self.staged)
        for a in actions:
            if a.kind is Kind.CONFLICT:
                self.sidecars[a.path] = self._sidecar(a.path, taken)
        return actions

    def _sidecar(self, rel: str, taken: set[str]) -> str:
        """A free name beside ``rel`` (an existing copy of this very version is reused)."""
        want = self.upstream[rel].sha256
        while True:
            name = sidecar_name(rel, taken)
            state, _ = local_state(self.target, name, None)
            if state in (MISSING, want):
                taken.add(name)
                return name
            taken.add(name)

    def needed(self, actions: list[Action]) -> list[str]:
        """Paths whose content must come from the hub (a sidecar already in place needs none)."""
        out = []
        for a in actions:
            if not a.kind.writes_upstream:
                continue
            if a.kind is Kind.CONFLICT:
                state, _ = local_state(self.target, self.sidecars[a.path], None)
                if state == self.upstream[a.path].sha256:
                    continue
            out.append(a.path)
        return out

    def apply(self, actions: list[Action], need: list[str], stream: IO[bytes]) -> Manifest:
        """Receive the needed files, do every action, return the new manifest."""
        by_path = {a.path: a for a in actions}
        new: dict[str, Staged] = {}
        written: dict[str, os.stat_result] = {}
        for rel in need:
            size = read_frame_size(stream)
            action = by_path[rel]
            up = self.upstream[rel]
            if size == FRAME_MISSING:
                self.error(rel, "the hub could not read this file of the materials")
                continue
            dest_rel = self.sidecars.get(rel, rel)
            if action.kind is Kind.UPDATE and self._changed_since_scan(rel):
                # The student edited it a moment ago: keep theirs, put the update beside it.
                dest_rel = self._sidecar(rel, set(self.upstream) | set(self.staged))
                self.sidecars[rel] = dest_rel
                by_path[rel] = Action(Kind.CONFLICT, rel)
            try:
                _make_parents(self.target, dest_rel)
                written[rel] = receive(stream, size, self.target / dest_rel, up)
            except ProtocolError:
                raise
            except (OSError, ValueError) as err:
                self.error(dest_rel, err)
        for rel, action in sorted(by_path.items()):
            entry = self._outcome(action, written, new)
            if entry is not None:
                new[rel] = entry
        fresh = {c["path"]: c["upstream_copy"] for c in self.report["conflicts"]}
        older = {p: side for p, side in self.open_conflicts.items() if p in new and p not in fresh}
        for path, side in sorted(still_open(self.target, older).items()):
            self.report["conflicts"].append({"path": path, "upstream_copy": side})
        return Manifest(new, {c["path"]: c["upstream_copy"] for c in self.report["conflicts"]})

    def _changed_since_scan(self, rel: str) -> bool:
        before = self.stats.get(rel)
        try:
            now = os.lstat(self.target / rel)
        except OSError:
            return before is not None
        return before is None or (now.st_size, now.st_mtime_ns) != (
            before.st_size,
            before.st_mtime_ns,
        )

    def _outcome(
        self, action: Action, written: dict[str, os.stat_result], new: dict[str, Staged]
    ) -> Staged | None:
        """Record what happened to one path; its manifest entry (None: no longer tracked)."""
        rel, kind = action.path, action.kind
        files = self.report["files"]
        old = self.staged.get(rel)
        up = self.upstream.get(rel)
        st = self.stats.get(rel)
        if kind in (Kind.ADD, Kind.RESTORE, Kind.UPDATE):
            if rel not in written:
                return old  # failed: already listed as an error
            files[kind.value].append(rel)
            w = written[rel]
            return Staged(up.sha256, up.sha256, w.st_size, w.st_mtime_ns)
        if kind is Kind.SAME:
            self.report["unchanged"] += 1
            return Staged(up.sha256, up.sha256, st.st_size, st.st_mtime_ns)
        if kind is Kind.KEEP:
            files["kept"].append(rel)
            return Staged(old.sha256, self.local[rel], st.st_size, st.st_mtime_ns)
        if kind is Kind.CONFLICT:
            side = self.sidecars[rel]
            if (self.target / side).is_file() and not any(
                e["path"] == side for e in self.report["errors"]
            ):
                self.report["conflicts"].append({"path": rel, "upstream_copy": side})
                try:
                    now = os.lstat(self.target / rel)
                    return Staged(
                        up.sha256, file_sha256(self.target / rel), now.st_size, now.st_mtime_ns
                    )
                except OSError:
                    return None
            return old
        if kind is Kind.BLOCKED:
            files["blocked"].append(rel)
            return old
        if kind is Kind.REMOVE:
            try:
                if in_folders(self.target, rel) and file_sha256(self.target / rel) == old.sha256:
                    os.unlink(self.target / rel)
                    files["removed"].append(rel)
                    return None
            except OSError as err:
                self.error(rel, err)
                return old
            files["left"].append(rel)
            return None
        if kind is Kind.ORPHAN:
            files["left"].append(rel)
        return None


class _Channel:
    """The helper's stdout: the need line exactly once, then the report."""

    def __init__(self, stdout: IO[bytes]):
        self.stdout = stdout
        self.need_sent = False

    def need(self, paths: list[str]) -> None:
        self.stdout.write(need_line(paths))
        self.stdout.flush()
        self.need_sent = True

    def report(self, report: dict[str, Any]) -> None:
        with contextlib.suppress(BrokenPipeError):
            if not self.need_sent:
                self.need([])
            self.stdout.write(json.dumps(report, separators=(",", ":")).encode() + b"\n")
            self.stdout.flush()


def stage(
    course: str,
    target: Path,
    user: str,
    stdin: IO[bytes],
    stdout: IO[bytes],
    *,
    owned_from: int,
) -> dict[str, Any]:
    """Run one staging over the protocol streams; returns the report (also written to stdout).

    ``target``'s folders from part ``owned_from`` down must be the student's own (see
    ``open_owned_dir``): everything is then done through the opened folder, never its path.
    """
    started = time.time()
    out = _Channel(stdout)
    report = rep.new_report(course, user, started_at=started, target=str(target))
    fds: list[int] = []
    try:
        header = Header.from_line(stdin.readline(MAX_LINE + 1))
        if header.course != course:
            raise ProtocolError(f"the hub sent course {header.course!r}, not {course!r}")
        report.update(
            title=header.title,
            source=header.source,
            revision=header.revision,
            fetched_at=header.fetched_at,
            problem=header.problem,
        )
        uid = os.getuid()
        try:
            fds.append(open_owned_dir(target, uid, owned_from))
            fds.append(owned_subdir(fds[0], STATE_DIR, uid, shown=str(target / STATE_DIR)))
        except UnsafePath as err:
            raise StageError(
                f"{err}. Nothing was staged: someone else controls this folder. Ask the admin "
                "to remove it, or to create your folder for you."
            ) from None
        # The folders as opened: a link or a rename after the check cannot redirect anything.
        root, state_dir = (Path(f"/proc/self/fd/{fd}") for fd in fds)
        with staging_lock(state_dir):
            if header.files is None:
                out.need([])
                report["state"] = rep.UNAVAILABLE
                for path, side in sorted(
                    still_open(root, load_manifest(state_dir, course).conflicts).items()
                ):
                    report["conflicts"].append({"path": path, "upstream_copy": side})
            else:
                staging = Staging(header, root, report)
                actions = staging.prepare(load_manifest(state_dir, course))
                need = staging.needed(actions)
                out.need(need)
                # A transfer broken half-way leaves no manifest change: the files that did
                # arrive equal upstream, so the next run records them as unchanged.
                save_manifest(
                    state_dir, course, header.revision, staging.apply(actions, need, stdin)
                )
                report["state"] = rep.final_state(report)
            report["finished_at"] = time.time()
            _write_student_report(root, report)
    except ProtocolError as err:
        report.update(state=rep.FAILED, problem=f"staging protocol: {err}")
    except (StageError, OSError) as err:
        report.update(state=rep.FAILED, problem=_explain(err))
        if isinstance(err, OSError) and err.filename:
            shown = str(err.filename)
            for fd, path in zip(fds, (target, target / STATE_DIR), strict=False):
                shown = shown.replace(f"/proc/self/fd/{fd}", str(path))
            report["problem"] += f" ({shown})"
    finally:
        for fd in fds:
            os.close(fd)
    report["finished_at"] = report.get("finished_at") or time.time()
    report["seconds"] = round(time.time() - started, 3)
    out.report(report)
    return report


def _write_student_report(target: Path, report: dict[str, Any]) -> None:
    path = target / REPORT_FILE
    if rep.needs_attention(report):
        write_atomic(path, rep.markdown(report).encode(), 0o644)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `hpchub-user stage-course --course NAME --target TEMPLATE`."""
    parser = argparse.ArgumentParser(prog="hpchub-user stage-course")
    parser.add_argument("--course", required=True)
    parser.add_argument("--target", required=True, help="~/... or /path/with/{user}/...")
    args = parser.parse_args(argv)
    if os.geteuid() == 0:
        raise SystemExit("hpchub-user runs as the user, never as root")
    try:
        course = check_course_name(args.course)
        pw = pwd.getpwuid(os.getuid())
        target = expand_target(args.target, pw.pw_name, pw.pw_dir)
        first_owned = owned_from(args.target, pw.pw_dir)
    except ValueError as err:
        parser.error(str(err))
    os.umask(0o022)
    stage(course, target, pw.pw_name, sys.stdin.buffer, sys.stdout.buffer, owned_from=first_owned)
    return 0
