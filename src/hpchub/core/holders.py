"""Which processes hold a socket or a file open, from the /proc/PID/fd links.

Only the processes whose descriptors we may read are seen: all of them as root, one's own
otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path


def fd_holders(links: set[str], proc: Path = Path("/proc")) -> dict[str, list[int]]:
    """link text ('socket:[123]', '/var/lib/x.sqlite') -> the pids that hold it open."""
    found: dict[str, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(entry / "fd" / fd)
            except OSError:
                continue
            if link in links:
                found.setdefault(link, []).append(int(entry.name))
    return found
