"""Reading a course folder by descriptors, the way the hub reads every source.

Reading never follows a symbolic link (a course folder that an instructor can write must not
lead the hub to its own secrets), never enters the hub's own folders, and stages only regular
files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from ..core.clock import now
from ..core.coursepaths import RESERVED_TOP
from ..core.files import UnsafePath, atomic_write, open_dir, open_nofollow, sha256_fd
from .plan import Upstream

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
Identity = tuple[int, int]  # (device, inode): a link or a bind mount cannot disguise it


@dataclass(frozen=True)
class Snapshot:
    """The materials of one course as they are staged now."""

    root: Path
    revision: str
    fetched_at: float | None
    files: dict[str, Upstream]
    problem: str | None = None
    root_id: Identity | None = None  # ``root`` as it was read


def excluded(rel: str, name: str, is_dir: bool, patterns: list[str]) -> bool:
    """Whether an exclude pattern (see CourseSource.exclude) matches this file or folder."""
    for raw in patterns:
        pattern = raw.strip("/")
        if raw.endswith("/") and not is_dir:
            continue
        if fnmatchcase(rel if "/" in pattern else name, pattern):
            return True
    return False


def _usable_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes came in as surrogates
        return False
    return not any(ord(c) < 32 or c == "\x7f" for c in name)


def _identity(st: os.stat_result) -> Identity:
    return st.st_dev, st.st_ino


def protected_ids(folders: Iterable[Path]) -> dict[Identity, Path]:
    """The hub's own folders by identity."""
    out = {}
    for folder in folders:
        with contextlib.suppress(OSError):
            out[_identity(os.stat(folder))] = Path(folder)
    return out


def open_source(root: Path, protected: dict[Identity, Path] | None = None) -> int:
    """A descriptor of the folder ``root``, reached without following a link that a user could
    have planted (UnsafePath), and neither one of the ``protected`` folders nor inside one."""
    fd = open_dir(root)
    try:
        # Up through '..' to '/', by descriptors (O_PATH: no read permission needed on the way).
        probe = os.open(".", _PATH_FLAGS, dir_fd=fd)
        try:
            while protected:
                here = _identity(os.fstat(probe))
                if here in protected:
                    raise UnsafePath(
                        f"{root} is or lies inside {protected[here]}, one of the hub's own "
                        "folders: it can never be a course source"
                    )
                parent = os.open("..", _PATH_FLAGS, dir_fd=probe)
                os.close(probe)
                probe = parent
                if _identity(os.fstat(probe)) == here:
                    break
        finally:
            os.close(probe)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _walk(dir_fd: int, prefix: str, patterns: list[str], protected: frozenset) -> Iterator:
    """Every regular file below ``dir_fd`` as (relative path, lstat). Links are never followed;
    names with control characters or undecodable bytes, ``.git`` and the ``protected`` folders
    are never entered or staged."""
    with os.scandir(dir_fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix + entry.name
        if entry.name == ".git" or (not prefix and entry.name in RESERVED_TOP):
            continue
        st = entry.stat(follow_symlinks=False)
        is_dir = stat.S_ISDIR(st.st_mode)
        if excluded(rel, entry.name, is_dir, patterns) or not _usable_name(entry.name):
            continue
        if stat.S_ISREG(st.st_mode):
            yield rel, st
        elif is_dir and _identity(st) not in protected:  # the hub's own folders: never read
            try:
                sub = open_nofollow(dir_fd, entry.name, _DIR_FLAGS)
            except OSError:
                continue
            try:
                yield from _walk(sub, rel + "/", patterns, protected)
            finally:
                os.close(sub)


def open_file(root: Path, rel: str, root_id: Identity | None = None) -> int:
    """An fd on the regular file ``root/rel``, reached without following any link planted by a
    user; with ``root_id``, ``root`` must still be the folder that was scanned."""
    fd = open_dir(root)
    try:
        if root_id is not None and _identity(os.fstat(fd)) != root_id:
            raise UnsafePath(f"{root} was replaced since it was read")
        parts = rel.split("/")
        for part in parts[:-1]:
            nxt = open_nofollow(fd, part, _DIR_FLAGS)
            os.close(fd)
            fd = nxt
        out = open_nofollow(fd, parts[-1])
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(out).st_mode):
        os.close(out)
        raise OSError(f"{rel} is not a regular file")
    os.set_blocking(out, True)
    return out


def scan(
    root: Path,
    patterns: list[str],
    cache_file: Path | None = None,
    protected: dict[Identity, Path] | None = None,
) -> Snapshot:
    """The files below ``root`` with their sha256 (see ``_walk``). ``cache_file`` remembers
    hashes by (size, mtime, inode) so an unchanged folder is not read again."""
    cache: dict[str, list] = {}
    if cache_file is not None:
        with contextlib.suppress(OSError, ValueError):
            cache = json.loads(cache_file.read_text())
    files: dict[str, Upstream] = {}
    fresh: dict[str, list] = {}
    top = open_source(root, protected)
    try:
        root_id = _identity(os.fstat(top))
        entries = list(_walk(top, "", patterns, frozenset(protected or ())))
    finally:
        os.close(top)
    for rel, st in entries:
        key = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = cache.get(rel)
        if hit and hit[:3] == key:
            digest = hit[3]
        else:
            try:
                fd = open_file(root, rel, root_id)
            except OSError:
                continue  # gone or replaced since the walk: not staged this time
            try:
                digest = sha256_fd(fd)
            finally:
                os.close(fd)
        fresh[rel] = [*key, digest]
        files[rel] = Upstream(digest, st.st_size, bool(st.st_mode & 0o100))
    if cache_file is not None and fresh != cache:
        atomic_write(cache_file, json.dumps(fresh), 0o600)
    revision = hashlib.sha256(
        json.dumps(sorted((p, u.sha256, u.executable) for p, u in files.items())).encode()
    ).hexdigest()[:12]
    return Snapshot(root, revision, now(), files, None, root_id)
