"""Parse `sdiag`: the controller's RPC counts by message type and by user (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SINCE = re.compile(r"^Data since\s+.*\((\d+)\)\s*$", re.M)
_AT = re.compile(r"^sdiag output at\s+.*\((\d+)\)\s*$", re.M)
_ROW = re.compile(r"^\s+(\S.*?)\s*\(\s*(\d+)\)\s+count:(\d+)\s+ave_time:(\d+)\s+total_time:(\d+)")


@dataclass(frozen=True)
class RpcStats:
    """One `sdiag` report: when its counters were reset, and the RPCs since then."""

    at: int
    since: int
    by_type: dict[str, int] = field(default_factory=dict)
    by_user: dict[str, int] = field(default_factory=dict)
    time_by_type_us: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_type.values())

    def users_total(self, users) -> int:
        """RPCs sent by any of ``users``."""
        wanted = set(users)
        return sum(n for u, n in self.by_user.items() if u in wanted)


def parse_sdiag(text: str) -> RpcStats:
    """The RPC sections of `sdiag` output; ValueError if it is not sdiag output."""
    at, since = _AT.search(text), _SINCE.search(text)
    if not at or not since:
        raise ValueError("not sdiag output (no 'sdiag output at' / 'Data since' lines)")
    by_type: dict[str, int] = {}
    by_user: dict[str, int] = {}
    times: dict[str, int] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("Remote Procedure Call statistics by message type"):
            section = "type"
            continue
        if line.startswith("Remote Procedure Call statistics by user"):
            section = "user"
            continue
        if line and not line[0].isspace():
            section = None
            continue
        m = _ROW.match(line)
        if not m or section is None:
            continue
        name, count, total_time = m.group(1), int(m.group(3)), int(m.group(5))
        if section == "type":
            by_type[name] = count
            times[name] = total_time
        else:
            by_user[name] = count
    return RpcStats(int(at.group(1)), int(since.group(1)), by_type, by_user, times)
