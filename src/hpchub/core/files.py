"""Writing and changing files safely: one atomic write, and no link followed where a user writes.

Root and the hub user run code here in folders that less trusted users can write (the hub's
data folder, a student's home, a shared /scratch). Such code opens every path component with
``O_NOFOLLOW`` from a trusted directory and then changes what it opened (``fchmod``/``fchown``),
so a link or a folder planted by a user cannot redirect it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .names import user_name

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path leads through a link or a folder that an untrusted user controls."""


class LockBusy(TimeoutError):
    """Another process held a lock for longer than we would wait (see ``file_lock``)."""


def _trusted_link(parent_fd: int, name: str) -> bool:
    """A link that only root could have made: owned by root, in a folder only root writes."""
    link = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    folder = os.fstat(parent_fd)
    return link.st_uid == 0 and folder.st_uid == 0 and not folder.st_mode & 0o022


def open_dir(path: str | os.PathLike, *, trust_root_links: bool = True, _depth: int = 0) -> int:
    """A descriptor of the folder ``path``, opened component by component without following
    a link, except (with ``trust_root_links``) a link that root made in a folder only root can
    write, such as Debian's /var/run. UnsafePath for any other link.
    """
    if _depth > 20:
        raise UnsafePath(f"{path}: too many levels of links")
    p = Path(os.path.abspath(path))
    fd = os.open("/", _DIR_FLAGS)
    try:
        for i, part in enumerate(p.parts[1:], start=1):
            try:
                new = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                is_link = (
                    stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
                    if err.errno in (40, 20)
                    else False
                )  # ELOOP, ENOTDIR
                if not is_link:
                    raise
                if not (trust_root_links and _trusted_link(fd, part)):
                    raise UnsafePath(
                        f"{Path(*p.parts[: i + 1])} is a symbolic link; refusing to follow it"
                    ) from None
                target = os.readlink(part, dir_fd=fd)
                base = Path(*p.parts[:i])
                rest = Path(*p.parts[i + 1 :]) if i + 1 < len(p.parts) else Path()
                os.close(fd)
                fd = -1
                return open_dir(
                    (base / target / rest), trust_root_links=trust_root_links, _depth=_depth + 1
                )
            os.close(fd)
            fd = new
        return fd
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


@contextlib.contextmanager
def opened_dir(path: str | os.PathLike, **kw) -> Iterator[int]:
    """``open_dir`` as a context manager."""
    fd = open_dir(path, **kw)
    try:
        yield fd
    finally:
        os.close(fd)


def open_nofollow(dir_fd: int, name: str, flags: int = _FILE_FLAGS) -> int:
    """Open ``name`` in the folder ``dir_fd``; UnsafePath when it is a symbolic link."""
    if "/" in name or name in ("", ".", ".."):
        raise UnsafePath(f"{name!r} is not a plain file name")
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP or (
            err.errno == errno.ENOTDIR
            and stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        ):  # the last component is a link
            raise UnsafePath(f"{name} is a symbolic link; refusing to follow it") from None
        raise


def owned_subdir(dir_fd: int, name: str, uid: int, mode: int = 0o700, shown: str = "") -> int:
    """A descriptor of the folder ``name`` in ``dir_fd``, created with ``mode`` if missing.

    UnsafePath when it is a link, not a folder, or not owned by ``uid`` (someone else made it
    first in a folder they can write too). ``shown`` is the path used in messages.
    """
    shown = shown or name
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, mode, dir_fd=dir_fd)
    try:
        fd = open_nofollow(dir_fd, name, _DIR_FLAGS)
    except UnsafePath:
        owner = user_name(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_uid)
        raise UnsafePath(
            f"{shown} is a symbolic link made by {owner}; refusing to follow it"
        ) from None
    except NotADirectoryError:
        raise UnsafePath(f"{shown} exists and is not a folder") from None
    owner = os.fstat(fd).st_uid
    if owner != uid:
        os.close(fd)
        raise UnsafePath(f"{shown} belongs to {user_name(owner)}, not to {user_name(uid)}")
    return fd


def open_owned_dir(path: str | os.PathLike, uid: int, owned_from: int, mode: int = 0o700) -> int:
    """A descriptor of the folder ``path``, made where missing, that no one but ``uid`` controls.

    The folders above component ``owned_from`` (``Path(path).parts[owned_from]``, such as the
    ``{user}`` folder in /scratch/work/{user}/x) are opened like ``open_dir``; that one and
    every one below must be a real folder owned by ``uid`` (see ``owned_subdir``).
    """
    p = Path(os.path.abspath(path))
    if not 1 <= owned_from < len(p.parts):
        raise ValueError(f"owned_from {owned_from} is outside {p}")
    fd = open_dir(Path(*p.parts[:owned_from]))
    try:
        for i in range(owned_from, len(p.parts)):
            new = owned_subdir(fd, p.parts[i], uid, mode, str(Path(*p.parts[: i + 1])))
            os.close(fd)
            fd = new
        return fd
    except BaseException:
        os.close(fd)
        raise


def set_owner_mode(
    path: str | os.PathLike, mode: int, uid: int = -1, gid: int = -1, *, trust_root_links=True
) -> bool:
    """Change the mode (and owner) of the file or folder ``path`` without following a link.

    Returns False when ``path`` does not exist; UnsafePath when it, or a folder above it, is a
    link that an untrusted user could have planted, or it is neither a file nor a folder.
    """
    p = Path(os.path.abspath(path))
    try:
        parent = open_dir(p.parent, trust_root_links=trust_root_links)
    except FileNotFoundError:
        return False
    try:
        try:
            fd = open_nofollow(parent, p.name)
        except FileNotFoundError:
            return False
        except UnsafePath:
            raise UnsafePath(f"{p} is a symbolic link; refusing to follow it") from None
        try:
            st = os.fstat(fd)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise UnsafePath(f"{p} is neither a file nor a folder")
            if (uid, gid) != (-1, -1) and (st.st_uid, st.st_gid) != (uid, gid):
                os.fchown(fd, uid, gid)
            if stat.S_IMODE(st.st_mode) != mode:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
    finally:
        os.close(parent)
    return True


def atomic_write(
    path: str | os.PathLike,
    data: str | bytes,
    mode: int = 0o644,
    uid: int = -1,
    gid: int = -1,
    *,
    trust_root_links: bool = True,
    dir_fd: int | None = None,
) -> None:
    """Replace ``path`` with ``data`` at once: a unique temporary file in the same folder,
    written, given its owner and mode, fsynced and renamed over ``path``; removed on failure.
    The folder is opened without following a link planted by an untrusted user; with
    ``dir_fd``, ``path`` is a plain name in that already opened folder.
    """
    if dir_fd is not None:
        if "/" in str(path) or str(path) in ("", ".", ".."):
            raise UnsafePath(f"{path!r} is not a plain file name")
        _write_in(dir_fd, str(path), data, mode, uid, gid)
        return
    p = Path(os.path.abspath(path))
    with opened_dir(p.parent, trust_root_links=trust_root_links) as dfd:
        _write_in(dfd, p.name, data, mode, uid, gid)


def _write_in(dfd: int, name: str, data: str | bytes, mode: int, uid: int, gid: int) -> None:
    raw = data.encode() if isinstance(data, str) else data
    # mkstemp needs a path: the folder's own descriptor stands for it through /proc.
    fd, tmp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=f"/proc/self/fd/{dfd}")
    tmp = os.path.basename(tmp_path)
    with _renamed_over(dfd, tmp, name), os.fdopen(fd, "wb") as out:
        out.write(raw)
        out.flush()
        if (uid, gid) != (-1, -1):
            os.fchown(out.fileno(), uid, gid)
        os.fchmod(out.fileno(), mode)
        os.fsync(out.fileno())


@contextlib.contextmanager
def _renamed_over(dfd: int, tmp: str, name: str) -> Iterator[None]:
    """Prepare ``tmp`` in the block; then rename it over ``name`` (both in the folder
    ``dfd``) and sync the folder, or remove ``tmp`` if anything failed."""
    try:
        yield
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        raise
    with contextlib.suppress(OSError):
        os.fsync(dfd)


def atomic_symlink(path: str | os.PathLike, target: str) -> None:
    """Point the link ``path`` at ``target`` at once: a uniquely named new link in the same
    folder, renamed over ``path`` (readers see the old target or the new, never neither).
    The folder is opened without following a link planted by an untrusted user."""
    p = Path(os.path.abspath(path))
    with opened_dir(p.parent) as dfd:
        for _ in range(100):
            tmp = f".{p.name}.{os.urandom(6).hex()}.tmp"
            try:
                os.symlink(target, tmp, dir_fd=dfd)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free temporary name beside {p}")
        with _renamed_over(dfd, tmp, p.name):
            pass


def sha256_fd(fd: int, chunk: int = 1024 * 1024) -> str:
    """The sha256 of what is left to read from the open file ``fd``."""
    h = hashlib.sha256()
    while data := os.read(fd, chunk):
        h.update(data)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike, *, dir_fd: int | None = None, wait: float | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made with mode 600, never through a link).
    With ``wait``, LockBusy when it is still held by another process after that long."""
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
    )
    try:
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockBusy(f"{path} is locked by another process") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)
