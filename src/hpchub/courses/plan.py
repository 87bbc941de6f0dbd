"""The decision for each file of a course, from three versions: upstream, last staged, local.

Pure data in, pure data out, so every rule is tested without a filesystem:

- a new upstream file is added; a staged file the student deleted comes back fresh;
- upstream changes reach files the student has not touched;
- a file the student changed is never overwritten: when upstream changed it too, that is a
  conflict, and the upstream version goes beside it under another name;
- a file removed upstream goes only if the student never touched it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Upstream:
    """One file of the materials, as the hub announces it."""

    sha256: str
    size: int
    executable: bool = False


@dataclass(frozen=True)
class Staged:
    """What the student's manifest remembers of a file: the upstream version last staged, and
    the student's copy as last seen (hash, size, mtime) so unchanged copies need no re-reading."""

    sha256: str
    local_sha256: str
    local_size: int
    local_mtime_ns: int


class Kind(StrEnum):
    """What happens to one path."""

    ADD = "added"  # new upstream, nothing local
    RESTORE = "restored"  # staged before, the student deleted it: a fresh copy
    UPDATE = "updated"  # the student's copy is untouched, upstream changed
    SAME = "unchanged"  # the student's copy already equals upstream
    KEEP = "kept"  # the student changed it, upstream did not
    CONFLICT = "conflict"  # both changed: keep theirs, put upstream beside it
    BLOCKED = "blocked"  # a folder or link is where the file should go
    REMOVE = "removed"  # gone upstream, untouched locally: removed
    ORPHAN = "left"  # gone upstream, changed locally: left alone, no longer tracked
    GONE = "forgotten"  # gone upstream and locally

    @property
    def writes_upstream(self) -> bool:
        """Whether the upstream content is needed for this action."""
        return self in (Kind.ADD, Kind.RESTORE, Kind.UPDATE, Kind.CONFLICT)


# The student's copy of a path: a file's sha256, or one of these.
MISSING = "missing"
BLOCKED = "blocked"


@dataclass(frozen=True)
class Action:
    """The decision for one path."""

    kind: Kind
    path: str


def decide(path: str, up: Upstream | None, staged: Staged | None, local: str) -> Action:
    """The action for one path; ``local`` is the copy's sha256, MISSING or BLOCKED."""
    if up is None:
        if staged is None:
            raise ValueError(f"{path}: neither upstream nor staged")
        if local == MISSING:
            return Action(Kind.GONE, path)
        if local == staged.sha256:
            return Action(Kind.REMOVE, path)
        return Action(Kind.ORPHAN, path)
    if local == BLOCKED:
        return Action(Kind.BLOCKED, path)
    if local == MISSING:
        return Action(Kind.ADD if staged is None else Kind.RESTORE, path)
    if local == up.sha256:
        return Action(Kind.SAME, path)
    if staged is not None and local == staged.sha256:
        return Action(Kind.UPDATE, path)
    if staged is not None and up.sha256 == staged.sha256:
        return Action(Kind.KEEP, path)
    return Action(Kind.CONFLICT, path)


def plan(
    upstream: Mapping[str, Upstream], staged: Mapping[str, Staged], local: Mapping[str, str]
) -> list[Action]:
    """One action per path known upstream or staged, sorted by path.

    ``local`` maps each such path to the student's copy (sha256, MISSING or BLOCKED).
    """
    paths = sorted(set(upstream) | set(staged))
    return [decide(p, upstream.get(p), staged.get(p), local.get(p, MISSING)) for p in paths]


def sidecar_name(path: str, taken: set[str] | frozenset[str]) -> str:
    """Where the upstream version of a conflicting ``path`` goes: ``lab1.upstream.ipynb``,
    then ``lab1.upstream-2.ipynb``... the first name not in ``taken``."""
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension, or a dot file such as .bashrc
        stem, dot, ext = name, "", ""
    n = 1
    while True:
        mark = "upstream" if n == 1 else f"upstream-{n}"
        candidate = f"{stem}.{mark}{dot}{ext}"
        full = f"{folder}/{candidate}" if folder else candidate
        if full not in taken:
            return full
        n += 1
