"""The hub's read-only copy of each course's materials, and a safe way to read it.

- git: fetched by the hub user (never on a compute node) into a bare repository under the hub's
  data folder, then exported once per revision into an immutable tree. A fetch runs at most
  once per ``refresh_interval``; when it fails, the last good revision is used and said so.
- folder: read where it is.

Reading never follows a symbolic link (a course folder that an instructor can write must not
lead the hub to its own secrets), and only regular files are staged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.courses import local_source
from ..core.coursepaths import RESERVED_TOP
from ..core.files import UnsafePath, open_dir
from .plan import Upstream

if TYPE_CHECKING:
    from ..config.courses import Course, CourseSource

GIT = "/usr/bin/git"
REF = "refs/hpchub/fetched"
KEEP_TREES = 3
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


class SourceUnavailable(Exception):
    """The materials cannot be read, and there is no earlier copy to use."""


@dataclass(frozen=True)
class Snapshot:
    """The materials of one course as they are staged now."""

    root: Path
    revision: str
    fetched_at: float | None
    files: dict[str, Upstream]
    problem: str | None = None
    skipped: list[str] = field(default_factory=list)
    root_id: tuple[int, int] | None = None  # (device, inode) of ``root`` as it was read


# -- reading without following links ---------------------------------------------------------
def excluded(rel: str, name: str, is_dir: bool, patterns: list[str]) -> bool:
    """Whether an exclude pattern (see CourseSource.exclude) matches this file or folder."""
    for raw in patterns:
        dir_only = raw.endswith("/")
        pattern = raw.strip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pattern:
            if fnmatchcase(rel, pattern):
                return True
        elif fnmatchcase(name, pattern):
            return True
    return False


def _usable_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes came in as surrogates
        return False
    return not any(ord(c) < 32 or c == "\x7f" for c in name)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def protected_ids(folders: Iterable[Path]) -> dict[tuple[int, int], Path]:
    """The hub's own folders by (device, inode): a link or a bind mount cannot disguise them."""
    out = {}
    for folder in folders:
        with contextlib.suppress(OSError):
            out[_identity(os.stat(folder))] = Path(folder)
    return out


def open_source(root: Path, protected: dict[tuple[int, int], Path] | None = None) -> int:
    """A descriptor of the folder ``root``, reached without following a link that a user could
    have planted (UnsafePath), and neither one of the ``protected`` folders nor inside one."""
    fd = open_dir(root)
    try:
        if protected:
            _refuse_inside(fd, root, protected)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _refuse_inside(fd: int, root: Path, protected: dict[tuple[int, int], Path]) -> None:
    # Up through '..' to '/', by descriptors (O_PATH: no read permission needed on the way).
    probe = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    try:
        while True:
            here = _identity(os.fstat(probe))
            if here in protected:
                raise UnsafePath(
                    f"{root} is or lies inside {protected[here]}, one of the hub's own folders: "
                    "it can never be a course source"
                )
            parent = os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=probe)
            os.close(probe)
            probe = parent
            if _identity(os.fstat(probe)) == here:
                return
    finally:
        os.close(probe)


def walk(
    root: Path, patterns: list[str], protected: dict[tuple[int, int], Path] | None = None
) -> Iterator[tuple[str, os.stat_result | None]]:
    """Every regular file below ``root`` as (relative path, lstat); skipped entries come with
    None. Links are never followed; ``.git`` folders and the hub's ``protected`` folders are
    never entered."""
    top = open_source(root, protected)
    try:
        yield from _walk(top, "", patterns, frozenset(protected or ()))
    finally:
        os.close(top)


def _walk(dir_fd: int, prefix: str, patterns: list[str], protected: frozenset):
    with os.scandir(dir_fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix + entry.name
        if entry.name == ".git" or (not prefix and entry.name in RESERVED_TOP):
            continue
        st = entry.stat(follow_symlinks=False)
        is_dir = stat.S_ISDIR(st.st_mode)
        if excluded(rel, entry.name, is_dir, patterns):
            continue
        if not _usable_name(entry.name):
            yield rel.encode("utf-8", "replace").decode(), None
        elif is_dir:
            if _identity(st) in protected:
                yield rel + "/", None  # one of the hub's own folders: never read
                continue
            try:
                sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError:
                yield rel + "/", None
                continue
            try:
                yield from _walk(sub, rel + "/", patterns, protected)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            yield rel, st
        else:
            yield rel, None  # a link, a device, a pipe: never staged


def open_file(root: Path, rel: str, root_id: tuple[int, int] | None = None) -> int:
    """An fd on the regular file ``root/rel``, reached without following any link planted by a
    user; with ``root_id``, ``root`` must still be the folder that was scanned."""
    fd = open_dir(root)
    try:
        if root_id is not None and _identity(os.fstat(fd)) != root_id:
            raise UnsafePath(f"{root} was replaced since it was read")
        parts = rel.split("/")
        for part in parts[:-1]:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(out).st_mode):
        os.close(out)
        raise OSError(f"{rel} is not a regular file")
    os.set_blocking(out, True)
    return out


def _hash_fd(fd: int) -> str:
    h = hashlib.sha256()
    while chunk := os.read(fd, 1024 * 1024):
        h.update(chunk)
    return h.hexdigest()


def scan(
    root: Path,
    patterns: list[str],
    cache_file: Path | None = None,
    protected: dict[tuple[int, int], Path] | None = None,
) -> Snapshot:
    """The files below ``root`` with their sha256 (see ``walk``). ``cache_file`` remembers
    hashes by (size, mtime, inode) so an unchanged folder is not read again."""
    cache: dict[str, list] = {}
    if cache_file is not None:
        with contextlib.suppress(OSError, ValueError):
            cache = json.loads(cache_file.read_text())
    files: dict[str, Upstream] = {}
    skipped: list[str] = []
    fresh: dict[str, list] = {}
    top = open_source(root, protected)
    try:
        root_id = _identity(os.fstat(top))
        entries = list(_walk(top, "", patterns, frozenset(protected or ())))
    finally:
        os.close(top)
    for rel, st in entries:
        if st is None:
            skipped.append(rel)
            continue
        key = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = cache.get(rel)
        if hit and hit[:3] == key:
            digest = hit[3]
        else:
            try:
                fd = open_file(root, rel, root_id)
            except OSError:
                skipped.append(rel)
                continue
            try:
                digest = _hash_fd(fd)
            finally:
                os.close(fd)
        fresh[rel] = [*key, digest]
        files[rel] = Upstream(digest, st.st_size, bool(st.st_mode & 0o100))
    if cache_file is not None and fresh != cache:
        _write_json(cache_file, fresh)
    revision = hashlib.sha256(
        json.dumps(sorted((p, u.sha256, u.executable) for p, u in files.items())).encode()
    ).hexdigest()[:12]
    return Snapshot(root, revision, time.time(), files, None, skipped, root_id)


def _write_json(path: Path, data: object) -> None:
    _write_text(path, json.dumps(data))


# -- git ---------------------------------------------------------------------------------------
class GitError(Exception):
    """A git command failed; the message is git's own last line."""


def git_env(source: CourseSource, home: Path) -> dict[str, str]:
    """A fixed environment for git: no prompts, only safe transports, batch-mode ssh."""
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
    ssh += ["-o", f"UserKnownHostsFile={home / 'known_hosts'}"]
    if source.ssh_key is not None:
        ssh += ["-i", str(source.ssh_key), "-o", "IdentitiesOnly=yes"]
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
        "GIT_SSH_COMMAND": " ".join(ssh),
        "GIT_CONFIG_NOSYSTEM": "0",
    }


def _trust_local_repository(source: CourseSource, home: Path) -> None:
    """Let git read the local repository the site file names, whoever owns it.

    git refuses repositories owned by another user ("dubious ownership"), and only trusts an
    exception from protected configuration: the global file in the HOME we give git. Only the
    exact path from the site file is trusted.
    """
    url = source.git or ""
    local = url.removeprefix("file://") if url.startswith(("/", "file:///")) else None
    lines = ["# Written by hpchub: the course repository named in the site file.\n"]
    if local:
        base = local.rstrip("/")
        lines.append("[safe]\n")
        lines += [f"\tdirectory = {base}\n", f"\tdirectory = {base}/.git\n"]
    _write_text(home / ".gitconfig", "".join(lines))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _git(args: list[str], env: dict[str, str], timeout: float, **kw) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(  # noqa: S603 - fixed argv, validated URL and ref
            [GIT, *args], env=env, capture_output=True, timeout=timeout, **kw
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {timeout:g} s") from None
    if r.returncode != 0:
        raise GitError(git_reason(r.stderr.decode(errors="replace"), args[0], r.returncode))
    return r


def git_reason(stderr: str, command: str, code: int) -> str:
    """git's own reason, from its first 'fatal:' or 'error:' line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line.removeprefix(prefix)
    return lines[-1] if lines else f"git {command} failed ({code})"


@dataclass
class SourceCache:
    """Per-course cache folders below ``root`` (in the hub's data folder, owned by the hub)."""

    root: Path
    clock: Callable[[], float] = time.time
    # The hub's own folders (data, configuration, logs): never read as a course folder.
    protected: tuple[Path, ...] = ()

    def folder(self, course: str) -> Path:
        return self.root / course

    def snapshot(self, course: Course, fetch: bool = True) -> Snapshot:
        """The materials to stage now. Blocking: the hub runs it in a worker thread."""
        src = course.source
        home = self.folder(course.name)
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if src.path is not None:
            root = src.path / src.subdir if src.subdir else src.path
            try:
                guard = protected_ids((*self.protected, self.root))
                return scan(root, src.exclude, home / "hashes.json", guard)
            except OSError as err:
                raise SourceUnavailable(
                    f"the course folder {root} cannot be read: {err.strerror or err}"
                ) from None
        with self._locked(home):
            return self._git_snapshot(course, home, fetch)

    @contextlib.contextmanager
    def _locked(self, home: Path):
        # One fetch per course at a time, across the hub and `hpchub course` runs.
        fd = os.open(home / "lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _git_snapshot(self, course: Course, home: Path, fetch: bool) -> Snapshot:
        src = course.source
        key = src.describe()
        current = self._current(home, key)
        now = self.clock()
        fresh = current is not None and now - current["fetched_at"] < src.refresh_interval
        problem = None
        if fetch and not fresh:
            try:
                current = self._fetch(course, home, now)
            except GitError as err:
                if current is None:
                    raise SourceUnavailable(f"git could not fetch {src.git}: {err}") from None
                problem = (
                    f"the materials could not be updated ({err}); you have the version of "
                    f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(current['fetched_at']))}"
                )
        if current is None:
            raise SourceUnavailable(f"{src.git} has not been fetched yet")
        tree = home / current["tree"]
        snap = scan(tree, src.exclude, home / "hashes.json")
        return Snapshot(
            tree,
            current["revision"][:12],
            current["fetched_at"],
            snap.files,
            problem,
            snap.skipped,
            snap.root_id,
        )

    def _current(self, home: Path, key: str) -> dict | None:
        try:
            data = json.loads((home / "current.json").read_text())
        except (OSError, ValueError):
            return None
        if data.get("source") != key or not (home / str(data.get("tree"))).is_dir():
            return None  # the site file now names another repository, ref or sub-folder
        return data

    def _fetch(self, course: Course, home: Path, now: float) -> dict:
        src = course.source
        env = git_env(src, home)
        local = local_source(src)
        if local is not None:  # git would follow any link: refuse them first, as for folders
            try:
                os.close(open_source(local, protected_ids((*self.protected, self.root))))
            except OSError as err:
                raise GitError(str(err)) from None
        _trust_local_repository(src, home)
        repo = home / "repo.git"
        if not (repo / "HEAD").exists():
            shutil.rmtree(repo, ignore_errors=True)
            _git(["init", "--quiet", "--bare", str(repo)], env, 30)
        git = ["--git-dir", str(repo)]
        # Into a ref: the next fetch tells the server what we have, and gets only what changed.
        _git(
            [
                *git,
                "fetch",
                "--quiet",
                "--depth=1",
                "--no-tags",
                "--",
                src.git,
                f"+{src.ref}:{REF}",
            ],
            env,
            src.fetch_timeout,
        )
        rev = _git([*git, "rev-parse", "--verify", f"{REF}^{{commit}}"], env, 30)
        revision = rev.stdout.decode().strip()
        suffix = hashlib.sha256((src.subdir or "").encode()).hexdigest()[:8]
        tree_name = f"tree-{revision}-{suffix}"
        tree = home / tree_name
        if not tree.is_dir():
            self._export(git, env, revision, src.subdir, tree)
        data = {
            "source": src.describe(),
            "revision": revision,
            "tree": tree_name,
            "fetched_at": now,
        }
        _write_json(home / "current.json", data)
        self._prune(home, keep=tree_name)
        return data

    def _export(self, git: list[str], env: dict, revision: str, subdir: str | None, tree: Path):
        treeish = f"{revision}:{subdir}" if subdir else revision
        tmp = tree.with_name(tree.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        with subprocess.Popen(  # noqa: S603 - fixed argv
            [GIT, *git, "archive", "--format=tar", treeish],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            failure = None
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                    extract_plain(tar, tmp)
            except tarfile.TarError as err:
                failure = str(err)
                proc.kill()
            errors = proc.stderr.read().decode(errors="replace")
            code = proc.wait()
            if code != 0 or failure:
                shutil.rmtree(tmp, ignore_errors=True)
                raise GitError(git_reason(errors, "archive", code) if errors.strip() else failure)
        os.replace(tmp, tree)

    def _prune(self, home: Path, keep: str) -> None:
        """Drop old exported trees (an hour after they stopped being current)."""
        trees = sorted(
            (p for p in home.glob("tree-*") if p.is_dir() and p.name != keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in trees[KEEP_TREES - 1 :]:
            if self.clock() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)


def extract_plain(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract only folders and regular files with plain relative names (links, devices and
    anything that would land outside ``dest`` are dropped: they are never staged anyway)."""
    for member in tar:
        parts = member.name.strip("/").split("/")
        if (
            member.name.startswith("/")
            or any(p in ("", ".", "..") for p in parts)
            or not (member.isdir() or member.isreg())
        ):
            continue
        path = dest.joinpath(*parts)
        for parent in reversed(path.relative_to(dest).parents[:-1]):
            (dest / parent).mkdir(mode=0o700, exist_ok=True)
        if member.isdir():
            path.mkdir(mode=0o700, exist_ok=True)
            continue
        src = tar.extractfile(member)
        mode = 0o700 if member.mode & 0o100 else 0o600
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)


def read_chunks(root: Path, rel: str, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """The content of ``root/rel`` (no links followed), in chunks."""
    fd = open_file(root, rel)
    try:
        while data := os.read(fd, chunk):
            yield data
    finally:
        os.close(fd)
