"""`hpchub-user stage-course`: bring a course's materials into the student's folder, as the
student (through the hub's sudo rule), so every file is theirs and the folder is private.

The hub sends the materials over stdin (see ``protocol``); ``apply`` decides per file against
the manifest kept in ``TARGET/.hpchub/manifest.json``, and never overwrites a file the student
changed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import sys
from pathlib import Path
from typing import IO, Any

from ..core.clock import now
from ..core.coursepaths import (
    REPORT_FILE,
    STATE_DIR,
    check_course_name,
    check_relpath,
    expand_target,
    owned_from,
)
from ..core.files import (
    LockBusy,
    UnsafePath,
    atomic_write,
    file_lock,
    open_owned_dir,
    owned_subdir,
)
from . import report as rep
from .apply import Manifest, Staging, explain, still_open
from .plan import Staged
from .protocol import MAX_LINE, Header, ProtocolError, need_line

MANIFEST_VERSION = 1
LOCK_WAIT_SECONDS = 120


class StageError(Exception):
    """Staging cannot go on at all (the target cannot be made, another course owns it...)."""


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
        with contextlib.suppress(KeyError, TypeError, ValueError, IndexError):
            local = e["local"]
            out.files[path] = Staged(e["sha256"], local[0], int(local[1]), int(local[2]))
    conflicts = data.get("conflicts")
    for k, v in (conflicts if isinstance(conflicts, dict) else {}).items():
        if _safe(k) and _safe(v):
            out.conflicts[k] = v
        else:
            out.rejected.append(str(k))
    return out


def save_manifest(state_fd: int, course: str, revision: str | None, manifest: Manifest) -> None:
    """Write the manifest atomically (mode 600) into the opened state folder."""
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
    atomic_write("manifest.json", json.dumps(data, indent=1), 0o600, dir_fd=state_fd)


def _send(stdout: IO[bytes], line: bytes) -> None:
    with contextlib.suppress(BrokenPipeError):
        stdout.write(line)
        stdout.flush()


def stage(
    course: str,
    target: Path,
    user: str,
    stdin: IO[bytes],
    stdout: IO[bytes],
    *,
    owned_from: int,
) -> rep.Report:
    """Run one staging over the protocol streams; returns the report (also written to stdout).

    ``target``'s folders from part ``owned_from`` down must be the student's own (see
    ``open_owned_dir``): everything is then done through the opened folder, never its path.
    """
    started = now()
    report = rep.Report(course, user, started_at=started, target=str(target))
    need_sent = False
    fds: list[int] = []
    try:
        header = Header.from_line(stdin.readline(MAX_LINE + 1))
        if header.course != course:
            raise ProtocolError(f"the hub sent course {header.course!r}, not {course!r}")
        report.title, report.source, report.revision = header.title, header.source, header.revision
        report.fetched_at, report.problem = header.fetched_at, header.problem
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
        # One staging at a time per folder (a spawn and an instructor's re-run may meet).
        with file_lock("lock", dir_fd=fds[1], wait=LOCK_WAIT_SECONDS):
            manifest = load_manifest(state_dir, course)
            if header.files is None:
                report.state = rep.UNAVAILABLE
                report.conflicts = still_open(root, manifest.conflicts)
                need: list[str] = []
            else:
                staging = Staging(header, root, report)
                actions = staging.prepare(manifest)
                need = staging.needed(actions)
            stdout.write(need_line(need))
            stdout.flush()
            need_sent = True
            if header.files is not None:
                # A transfer broken half-way leaves no manifest change: the files that did
                # arrive equal upstream, so the next run records them as unchanged.
                new = staging.apply(actions, need, stdin)
                save_manifest(fds[1], course, header.revision, new)
                report.state = report.final_state()
            report.finished_at = now()
            if report.needs_attention():
                atomic_write(REPORT_FILE, report.markdown(), 0o644, dir_fd=fds[0])
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(REPORT_FILE, dir_fd=fds[0])
    except ProtocolError as err:
        report.state, report.problem = rep.FAILED, f"staging protocol: {err}"
    except LockBusy:  # before OSError: a busy lock is not a failure of the folder
        report.state, report.problem = rep.FAILED, "another staging of this folder is still running"
    except (StageError, OSError) as err:
        report.state, report.problem = rep.FAILED, explain(err)
        if isinstance(err, OSError) and err.filename:
            shown = str(err.filename)
            for fd, path in zip(fds, (target, target / STATE_DIR), strict=False):
                shown = shown.replace(f"/proc/self/fd/{fd}", str(path))
            report.problem += f" ({shown})"
    finally:
        for fd in fds:
            os.close(fd)
    report.finished_at = report.finished_at or now()
    report.seconds = round(now() - started, 3)
    if not need_sent:
        _send(stdout, need_line([]))
    _send(stdout, json.dumps(report.data(), separators=(",", ":")).encode() + b"\n")
    return report


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
