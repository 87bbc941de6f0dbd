"""The hub's database as the hub, the upgrade and the backup see it: SQLite or PostgreSQL.

For PostgreSQL every client (the hub through SQLAlchemy and alembic, `jupyterhub upgrade-db`,
pg_dump, pg_restore) gets the URL with libpq's passfile parameter and reads the password file
itself, as the hub user: the password is never in a URL, an environment or on a command line.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from traitlets.config import Config

from ..config.database import DatabaseSettings
from ..config.models import SiteConfig

Run = Callable[..., subprocess.CompletedProcess]
DUMP = "jupyterhub.pgdump"


def db_url(site: SiteConfig) -> str:
    """JupyterHub's db_url: PostgreSQL with the driver installed with hpchub named (SQLAlchemy
    2.1 would pick psycopg 3) and the password file as passfile, or SQLite in data_dir."""
    if site.hub.database is not None:
        url = site.hub.database.libpq_url()
        return url.replace("postgresql://", "postgresql+psycopg2://", 1)
    return f"sqlite:///{site.hub.data_dir / 'jupyterhub.sqlite'}"


SQLITE_SIDE_FILES = ("-wal", "-shm")
"""SQLite's write-ahead log and its index, next to the database in WAL mode."""


def _sqlite_wal(dbapi_conn, _record) -> None:
    """Each hub connection to SQLite: write-ahead logging, synced at checkpoints.

    In the default rollback mode every commit syncs the journal and the database several times
    while the hub's one event loop waits (23% of its loop at scale: docs/benchmarks.md). In WAL
    mode a commit appends to the log; with synchronous=NORMAL it is not synced at each commit, so
    a power cut of the hub's host can lose the last commits, never the database's consistency.
    """
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        finally:
            cur.close()


def use_sqlite_wal() -> None:
    """Every SQLite engine the hub process creates (JupyterHub's own) runs in WAL mode."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_wal):
        event.listen(Engine, "connect", _sqlite_wal)


def database_piece(site: SiteConfig) -> Config:
    """The hub's PostgreSQL connection (nothing for SQLite: hub_piece sets that)."""
    c = Config()
    if site.hub.database is not None:
        c.JupyterHub.db_url = db_url(site)
    return c


def pg_env() -> dict[str, str]:
    """Our environment without libpq's PG* variables (root's own must not steer the tools)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _as(user: str, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if os.geteuid() == 0 else argv


def pg_dump(db: DatabaseSettings, user: str, run: Run = subprocess.run) -> bytes:
    """A custom-format dump of the hub's database (one snapshot), taken as ``user``."""
    argv = _as(user, ["pg_dump", "--format=custom", "--no-owner", "--dbname", db.libpq_url()])
    r = run(argv, capture_output=True, env=pg_env(), cwd="/", timeout=3600)
    if r.returncode != 0:
        raise OSError(f"pg_dump failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def pg_check(dump: Path, run: Run = subprocess.run) -> None:
    """OSError unless pg_restore can read the dump's table of contents."""
    r = run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise OSError(f"{dump} is not a readable dump: {r.stderr.strip()}")


def pg_restore(db: DatabaseSettings, user: str, dump: bytes, run: Run = subprocess.run) -> None:
    """Replace the database's objects with the dump's, as ``user`` (the dump on stdin)."""
    argv = _as(
        user,
        ["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname", db.libpq_url()],
    )
    r = run(argv, input=dump, capture_output=True, env=pg_env(), cwd="/", timeout=3600)
    if r.returncode != 0:
        raise OSError(f"pg_restore failed: {r.stderr.decode(errors='replace').strip()}")
