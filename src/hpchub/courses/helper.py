"""The hub's side of the staging protocol: run the helper as the student, send it what it asks
for, and read back its report (see ``protocol``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from . import report as rep
from .folder import Snapshot, open_file
from .protocol import CHUNK, MAX_LINE, MISSING, Header, ProtocolError, frame_header, parse_need

HELPER_TIMEOUT = 600


async def run_helper(
    argv: list[str], header: Header, snap: Snapshot | None, user: str
) -> rep.Report:
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
            return rep.Report.parse(data, header.course, user)
    return rep.Report(
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
                # The file shrank meanwhile: pad; the helper's hash check says so.
                data = os.read(fd, min(CHUNK, left)) or b"\0" * min(CHUNK, left)
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
