"""Doctor: who holds ports of ``singleuser.port_range`` on this node."""

from __future__ import annotations

from ..core.ports import by_user, holding_processes, listeners, read_tables, summary
from .findings import Finding, error, info, ok, warning


def _commands(pids: list[int], proc) -> str:
    names = []
    for pid in pids[:3]:
        try:
            argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
            names.append(f"{pid} {argv[0].decode(errors='replace')}")
        except OSError:
            names.append(str(pid))
    return ", ".join(names)


def check_port_range(d) -> list[Finding]:
    """How much of the range is in use here, by whom, and (as root) by which processes."""
    low, high = d.paths.site.singleuser.port_range
    size = high - low + 1
    found = listeners(read_tables(d.proc), low, high)
    held = by_user(found)
    used = len({listener.port for listener in found})
    if not held:
        return [ok("port range", f"no port of {low}-{high} is in use on this node")]
    what = f"{used} of the {size} ports of {low}-{high} are in use on this node: {summary(held)}"
    pids = holding_processes({listener.inode for listener in found}, d.proc)
    if pids:
        by_port = {}
        for listener in found:
            if listener.inode in pids:
                by_port.setdefault(listener.port, pids[listener.inode])
        shown = sorted(by_port.items())[:5]
        what += "; held by " + "; ".join(f"{p}: {_commands(ps, d.proc)}" for p, ps in shown)
    fix = (
        "stop the programs that hold them (users' own servers are normal), or widen "
        "singleuser.port_range"
    )
    if used >= size:
        return [error("port range", what + ". No server can start here.", fix)]
    if used >= size * 0.8:
        return [warning("port range", what, fix)]
    return [info("port range", what)]
