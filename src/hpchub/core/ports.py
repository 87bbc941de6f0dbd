"""Who holds the ports of a range on this node, from the kernel's socket tables.

/proc/net/tcp and tcp6 list every listening socket with its owner's uid (readable by all);
/proc/PID/fd links name the process that holds each socket (readable for one's own processes,
or for all as root).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .holders import fd_holders
from .names import user_name

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket."""

    port: int
    uid: int
    inode: str


def read_tables(proc: Path = Path("/proc")) -> list[str]:
    """The text of /proc/net/tcp and tcp6 (whichever exist)."""
    tables = []
    for name in ("tcp", "tcp6"):
        try:
            tables.append((proc / "net" / name).read_text())
        except OSError:
            continue
    return tables


def listeners(tables: Iterable[str], low: int = 0, high: int = 65535) -> list[Listener]:
    """The sockets in LISTEN state on a port of [low, high], from /proc/net/tcp-format tables."""
    found = []
    for text in tables:
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != TCP_LISTEN:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if low <= port <= high:
                found.append(Listener(port, int(fields[7]), fields[9]))
    return found


def by_user(found: Iterable[Listener]) -> dict[str, list[int]]:
    """Ports held per user name, most ports first."""
    ports: dict[str, set[int]] = {}
    for listener in found:
        ports.setdefault(user_name(listener.uid), set()).add(listener.port)
    return dict(sorted(((u, sorted(p)) for u, p in ports.items()), key=lambda kv: -len(kv[1])))


def summary(held: dict[str, list[int]], limit: int = 3) -> str:
    """``bob holds 9990 ports (40000, 40001, 40002, ...), alice 10 (...)``."""
    parts = []
    for i, (user, ports) in enumerate(held.items()):
        shown = ", ".join(str(p) for p in ports[:limit]) + (", ..." if len(ports) > limit else "")
        count = f"{len(ports)} port{'s' if len(ports) != 1 else ''}"
        parts.append(f"{user} {'holds ' if i == 0 else ''}{count} ({shown})")
    return ", ".join(parts)


def holding_processes(inodes: set[str], proc: Path = Path("/proc")) -> dict[str, list[int]]:
    """inode -> pids holding that socket, for the processes whose fds we may read."""
    held = fd_holders({f"socket:[{i}]" for i in inodes}, proc)
    return {link[8:-1]: pids for link, pids in held.items()}
