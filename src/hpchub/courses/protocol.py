"""How the hub and the staging helper talk, over the helper's stdin and stdout.

The student never reads the hub's copy of the materials: the hub sends exactly the files the
helper asks for, so a course stays private to its members and the hub's data folder stays 700.

1. hub -> helper: one JSON line, the header (course, revision, every file with its sha256).
2. helper -> hub: one JSON line, ``{"need": [paths]}``: what it will write.
3. hub -> helper: for each needed path in that order, 8 bytes of big-endian length, then the
   bytes (length ``MISSING`` means the hub could not read it any more).
4. helper -> hub: one JSON line, the report.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from .plan import Upstream

VERSION = 1
MAX_LINE = 64 * 1024 * 1024
MISSING = 2**64 - 1
_LEN = struct.Struct(">Q")
CHUNK = 1024 * 1024


_TEXTS = ("course", "title", "source", "revision", "problem")  # the first three required


class ProtocolError(Exception):
    """The other side sent something that does not follow the protocol."""


@dataclass(frozen=True)
class Header:
    """What the hub tells the helper before anything is written."""

    course: str
    title: str
    source: str
    revision: str | None
    fetched_at: float | None
    problem: str | None
    files: Mapping[str, Upstream] | None

    def to_line(self) -> bytes:
        data = {"version": VERSION, **{k: getattr(self, k) for k in _TEXTS + ("fetched_at",)}}
        if self.files is not None:
            data["files"] = {
                p: [u.sha256, u.size, int(u.executable)] for p, u in self.files.items()
            }
        return json.dumps({"files": None, **data}, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Header:
        data = parse_line(line, "header")
        if data.get("version") != VERSION:
            raise ProtocolError(f"unsupported protocol version {data.get('version')!r}")
        raw = data.get("files")
        if raw is not None and not isinstance(raw, dict):
            raise ProtocolError("files must be an object")
        files = None if raw is None else {p: _upstream(p, e) for p, e in raw.items()}
        for n, key in enumerate(_TEXTS):
            if not isinstance(data.get(key, ""), str if n < 3 else str | None):
                raise ProtocolError(f"{key} must be text")
        fetched_at = data.get("fetched_at")
        return cls(
            course=data.get("course", ""),
            title=data.get("title", ""),
            source=data.get("source", ""),
            revision=data.get("revision"),
            fetched_at=fetched_at if isinstance(fetched_at, int | float) else None,
            problem=data.get("problem"),
            files=files,
        )


def _upstream(path: str, entry: Any) -> Upstream:
    if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
        raise ProtocolError(f"bad file entry for {path!r}")
    if len(entry[0]) != 64 or not isinstance(entry[1], int) or entry[1] < 0:
        raise ProtocolError(f"bad file entry for {path!r}")
    return Upstream(entry[0], entry[1], bool(entry[2]))


def parse_line(line: bytes, what: str) -> dict[str, Any]:
    """A JSON object from one protocol line."""
    if not line.endswith(b"\n"):
        raise ProtocolError(f"the {what} ended early")
    try:
        data = json.loads(line)
    except ValueError:
        raise ProtocolError(f"the {what} is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"the {what} must be a JSON object")
    return data


def need_line(paths: list[str]) -> bytes:
    """The helper's answer: the paths whose content it wants, in the order it wants them."""
    return json.dumps({"need": paths}, separators=(",", ":")).encode() + b"\n"


def parse_need(line: bytes, announced: Mapping[str, Upstream]) -> list[str]:
    """The needed paths, each of which the hub announced."""
    data = parse_line(line, "list of needed files")
    need = data.get("need")
    if not isinstance(need, list) or not all(isinstance(p, str) for p in need):
        raise ProtocolError("need must be a list of paths")
    unknown = [p for p in need if p not in announced]
    if unknown:
        raise ProtocolError(f"the helper asked for files that were not announced: {unknown[:3]}")
    return need


def frame_header(size: int) -> bytes:
    """The 8 bytes before a file's content."""
    return _LEN.pack(size)


def read_frame_size(stream: IO[bytes]) -> int:
    """The length of the next file (or MISSING); ProtocolError at the end of the stream."""
    raw = stream.read(_LEN.size)
    if len(raw) != _LEN.size:
        raise ProtocolError("the hub stopped sending files")
    return _LEN.unpack(raw)[0]
