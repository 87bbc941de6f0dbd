"""`hpchub backup` and `hpchub restore`: the hub's state in one private folder, and back.

A backup holds a consistent copy of the hub database (SQLite's online backup API, so a running
hub's half-written transaction is never copied), the secrets, the site file and the pending
cancels, each mode 600 in a folder of mode 700, with a manifest of their SHA-256 sums. Root
reads the hub user's files as the hub user (core.privileges.run_as): a link planted in the
data folder can lead only to what the hub user could read anyway. A restore checks every sum
and the database's integrity, refuses while the hub answers, and writes each file back
atomically with its owner and mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import socket
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..core.files import UnsafePath, atomic_write, open_nofollow, opened_dir
from ..core.holders import fd_holders
from ..core.privileges import AsUserError, run_as
from .database import DUMP, SQLITE_SIDE_FILES, pg_check, pg_dump, pg_restore
from .paths import DeployPaths
from .secrets import secret_files

MANIFEST = "manifest.json"
DATABASE = "jupyterhub.sqlite"


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class Item:
    """One file of a backup: its name there, where it lives, who owns it and its mode."""

    name: str
    path: Path
    owner: str
    mode: int
    what: str
    optional: bool = False


def items(paths: DeployPaths) -> list[Item]:
    """What a backup holds (the database comes first)."""
    hub = paths.deploy.hub_user
    db = paths.site.hub.database
    out = [] if db else [Item(DATABASE, paths.hub_db, hub, 0o600, "the hub database")]
    if db and db.password_file:
        out.append(Item("db-password", db.password_file, hub, 0o600, "the database password"))
    out += [
        Item("hpchub.yaml", paths.site_path, "root", 0o644, "the site file"),
        Item("pending-cancels.json", paths.pending_cancels, hub, 0o600, "pending cancels", True),
    ]
    out += [Item(s.path.name, s.path, s.owner, 0o600, s.what) for s in secret_files(paths)]
    return out


def _ids(owner: str) -> tuple[int, int]:
    pw = pwd.getpwnam(owner)
    return pw.pw_uid, pw.pw_gid


def _read_plain(path: Path) -> bytes:
    """A file's bytes, opened without following a link (UnsafePath if it is one)."""
    with opened_dir(path.parent) as dfd:
        fd = open_nofollow(dfd, path.name)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UnsafePath(f"{path} is not a regular file")
            return f.read()


def _sqlite_copy(path: Path) -> bytes:
    """A consistent copy of a live SQLite database, through its online backup API."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    mem = sqlite3.connect(":memory:")
    try:
        src.backup(mem)
        return mem.serialize()
    finally:
        # Both closed: Python 3.13 warns about (and the suite fails on) one left to the GC.
        mem.close()
        src.close()


def _read(item: Item, reader: Callable[[Path], bytes]) -> bytes:
    """Read ``item`` with its owner's rights (root reads root's own files directly)."""
    uid, gid = _ids(item.owner) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    return run_as(uid, gid, lambda: reader(item.path))


def _private_dir(path: Path) -> None:
    """Create ``path`` (mode 700) or accept it if only we own and may write it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with opened_dir(path) as fd:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise BackupError(
                f"{path} must belong to uid {os.geteuid()} and be private (mode 700); it is "
                f"uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}"
            )


def backup(paths: DeployPaths, out: Path, log: Callable[[str], None] = print) -> Path:
    """Write a new backup folder under ``out``; returns it."""
    out = Path(os.path.abspath(out))
    _private_dir(out)
    folder = out / f"hpchub-backup-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        raise BackupError(f"{folder} exists already; try again in a second") from None
    db = paths.site.hub.database
    kind = "postgresql" if db else "sqlite"
    manifest = {"hpchub": __version__, "created": time.time(), "database": kind, "files": {}}
    if db:
        try:
            data = pg_dump(db, paths.deploy.hub_user)
        except OSError as err:
            raise BackupError(f"cannot dump the hub database: {err}") from None
        atomic_write(folder / DUMP, data, 0o600)
        manifest["files"][DUMP] = hashlib.sha256(data).hexdigest()
        log(f"the hub database: pg_dump of {db.url} ({len(data)} bytes)")
    for item in items(paths):
        reader = _sqlite_copy if item.name == DATABASE else _read_plain
        try:
            data = _read(item, reader)
        except (OSError, sqlite3.Error) as err:
            if item.optional and "FileNotFoundError" in str(err):
                continue
            raise BackupError(f"cannot read {item.what} ({item.path}): {err}") from None
        atomic_write(folder / item.name, data, 0o600)
        manifest["files"][item.name] = hashlib.sha256(data).hexdigest()
        log(f"{item.what}: {item.path} ({len(data)} bytes)")
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n", 0o600)
    return folder


def hub_answers(paths: DeployPaths) -> bool:
    """Whether something listens where the hub listens (then it must not be restored under)."""
    host, port = paths.hub_local_url.removeprefix("http://").rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except OSError:
        return False


def database_holders(paths: DeployPaths, proc: Path = Path("/proc")) -> list[int]:
    """The processes that hold the hub's SQLite database open (none with PostgreSQL)."""
    if paths.site.hub.database:
        return []
    return sorted(fd_holders({str(paths.hub_db)}, proc).get(str(paths.hub_db), []))


def check_backup(folder: Path) -> dict:
    """The manifest of ``folder`` once every sum and the database's integrity are right."""
    try:
        manifest = json.loads(_read_plain(folder / MANIFEST))
    except (OSError, ValueError) as err:
        raise BackupError(f"{folder} is not an hpchub backup ({MANIFEST}: {err})") from None
    for name, digest in manifest.get("files", {}).items():
        try:
            data = _read_plain(folder / name)
        except OSError as err:
            raise BackupError(f"{folder / name}: {err}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise BackupError(f"{folder / name} does not match its sum in {MANIFEST}: damaged")
    if DUMP in manifest.get("files", {}):
        try:
            pg_check(folder / DUMP)
        except OSError as err:
            raise BackupError(str(err)) from None
    if DATABASE in manifest.get("files", {}):
        con = sqlite3.connect(f"file:{folder / DATABASE}?mode=ro", uri=True)
        try:
            verdict = con.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            con.close()
        if verdict != "ok":
            raise BackupError(f"{folder / DATABASE} fails SQLite's integrity check: {verdict}")
    return manifest


def _drop_sqlite_log(db: Path) -> None:
    """Remove the stopped hub's write-ahead log: SQLite would replay it onto the restored
    database. The names are unlinked in the opened folder (a planted link is removed, never
    followed)."""
    with opened_dir(db.parent) as dfd:
        for suffix in SQLITE_SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(db.name + suffix, dir_fd=dfd)


def restore(
    paths: DeployPaths,
    folder: Path,
    log: Callable[[str], None] = print,
    *,
    chown: bool = True,
) -> list[Path]:
    """Put a checked backup back while the hub is stopped; the files written."""
    folder = Path(os.path.abspath(folder))
    manifest = check_backup(folder)
    stop = f"stop it first (systemctl stop {paths.deploy.systemd.hub_unit}), then restore"
    if hub_answers(paths):
        raise BackupError(f"the hub answers at {paths.hub_local_url}: {stop}")
    # Its port may be out of reach from here (another network namespace, a firewall); a hub
    # that runs holds its SQLite database open.
    held = database_holders(paths)
    if held:
        raise BackupError(
            f"process(es) {', '.join(map(str, held))} hold {paths.hub_db} open: {stop}"
        )
    done = []
    for item in items(paths):
        if item.name not in manifest["files"]:
            if not item.optional:
                raise BackupError(f"{folder} lacks {item.what} ({item.name})")
            continue
        data = _read_plain(folder / item.name)
        uid, gid = _ids(item.owner) if chown else (-1, -1)
        try:
            if item.name == DATABASE:
                _drop_sqlite_log(item.path)
            atomic_write(item.path, data, item.mode, uid, gid)
        except (OSError, AsUserError) as err:
            raise BackupError(f"cannot restore {item.path}: {err}") from None
        log(f"restored {item.what}: {item.path}")
        done.append(item.path)
    db = paths.site.hub.database
    if (DUMP in manifest["files"]) != (db is not None):
        raise BackupError(
            f"{folder} holds a {manifest.get('database')} database; this site uses "
            f"{'postgresql' if db else 'sqlite'}: restore it by hand"
        )
    if db is not None:
        try:
            pg_restore(db, paths.deploy.hub_user, _read_plain(folder / DUMP))
        except OSError as err:
            raise BackupError(f"cannot restore the hub database: {err}") from None
        log(f"restored the hub database: {db.url}")
    return done


DEFAULT_OUT = Path("/var/backups/hpchub")
"""Where backups go unless --out says otherwise."""
