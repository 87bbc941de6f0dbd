"""Doing one thing with a less privileged user's rights, from root.

Root reads files in folders the hub user can write (its database, its secrets). Instead of
checking each path for planted links, root forks a child that becomes that user and reads: a
link can then lead only to what that user could read anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable


class AsUserError(OSError):
    """The work failed in the child running as the user; the message says why."""


def run_as(uid: int, gid: int, work: Callable[[], bytes]) -> bytes:
    """``work()`` run in a child process with only ``uid``/``gid``'s rights (no other groups);
    its bytes. Called by anyone but root, or for one's own uid, it runs in this process."""
    if os.geteuid() != 0 or uid == 0:
        return work()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, work, report, exit without cleanup
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            payload = b"ok" + work()
        except BaseException as err:  # noqa: BLE001 - reported to the parent as text
            payload = b"er" + f"{type(err).__name__}: {err}".encode(errors="replace")
        try:
            with os.fdopen(w, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        payload = inp.read()
    os.waitpid(pid, 0)
    if payload[:2] != b"ok":
        raise AsUserError(payload[2:].decode(errors="replace") or "the child died")
    return payload[2:]
