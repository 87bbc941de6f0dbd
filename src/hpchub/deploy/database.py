"""The hub's database as the hub, the upgrade and the backup see it: SQLite or PostgreSQL.

The PostgreSQL password is read from its file when needed and handed to the client library
(the hub: SQLAlchemy's connect_args) or to libpq's tools (PGPASSWORD in their environment,
which only their own user and root can read), never put on a command line or in a URL.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from traitlets.config import Config

from ..config.database import DatabaseSettings, read_password
from ..config.models import SiteConfig

Run = Callable[..., subprocess.CompletedProcess]
DUMP = "jupyterhub.pgdump"


def db_url(site: SiteConfig) -> str:
    """JupyterHub's db_url: the PostgreSQL URL (no password), or SQLite in data_dir."""
    if site.hub.database is not None:
        return site.hub.database.url
    return f"sqlite:///{site.hub.data_dir / 'jupyterhub.sqlite'}"


def database_piece(site: SiteConfig) -> Config:
    """The hub's PostgreSQL connection, the password from its file (read by the hub user)."""
    c = Config()
    db = site.hub.database
    if db is None:
        return c
    c.JupyterHub.db_url = db.url
    password = read_password(db.password_file)
    if password:
        c.JupyterHub.db_kwargs = {"connect_args": {"password": password}}
    return c


def pg_env(password: str) -> dict[str, str]:
    """The environment for libpq's tools: ours, with the password and nothing read from ~."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password:
        env["PGPASSWORD"] = password
    return env


def pg_dump(db: DatabaseSettings, password: str, run: Run = subprocess.run) -> bytes:
    """A custom-format dump of the hub's database (consistent: one snapshot)."""
    argv = ["pg_dump", "--format=custom", "--no-owner", "--dbname", db.url]
    r = run(argv, capture_output=True, env=pg_env(password), timeout=3600)
    if r.returncode != 0:
        raise OSError(f"pg_dump failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def pg_check(dump: Path, run: Run = subprocess.run) -> None:
    """OSError unless pg_restore can read the dump's table of contents."""
    r = run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise OSError(f"{dump} is not a readable dump: {r.stderr.strip()}")


def pg_restore(db: DatabaseSettings, password: str, dump: Path, run: Run = subprocess.run) -> None:
    """Replace the database's objects with the dump's."""
    argv = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname", db.url, str(dump)]
    r = run(argv, capture_output=True, text=True, env=pg_env(password), timeout=3600)
    if r.returncode != 0:
        raise OSError(f"pg_restore failed: {r.stderr.strip()}")
