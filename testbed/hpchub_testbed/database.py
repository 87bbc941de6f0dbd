"""PostgreSQL for a testbed's hub, when asked (HPCHUB_TESTBED_DB=postgresql).

Debian's postgresql is installed and its cluster started by hand (no systemd here). Each
testbed gets its own role and database (hpchub_NAME) and a password file owned by its hub
user, mode 600, which the site file names (the password never appears in it).
"""

from __future__ import annotations

import pwd
import secrets
import time

from hpchub.core.files import atomic_write

from .layout import Layout
from .system import ensure_packages, sh


def _cluster() -> tuple[str, str, bool]:
    """(version, name, online) of the first PostgreSQL cluster."""
    out = sh("pg_lsclusters", "-h").stdout.split()
    if not out:
        raise SystemExit("postgresql is installed but has no cluster (pg_createcluster)")
    return out[0], out[1], out[3] == "online"


def _psql(sql: str, *params: str) -> str:
    argv = ["runuser", "-u", "postgres", "--", "psql", "-qAtX", "-v", "ON_ERROR_STOP=1"]
    for i, p in enumerate(params, start=1):
        argv += ["-v", f"p{i}={p}"]
    return sh(*argv, input=sql).stdout.strip()


def ensure_postgresql(layout: Layout, log=print) -> dict | None:
    """The site file's hub.database for this testbed (None unless PostgreSQL was asked for)."""
    if layout.db != "postgresql":
        return None
    ensure_packages(("postgresql",), log=log)
    role = f"hpchub_{layout.name or 'main'}"
    version, name, online = _cluster()
    if not online:
        log(f"starting PostgreSQL {version}/{name}")
        sh("pg_ctlcluster", version, name, "start")
        for _ in range(50):
            if _cluster()[2]:
                break
            time.sleep(0.2)
    pw_file = layout.etc / "db-password"
    layout.etc.mkdir(parents=True, exist_ok=True)
    old = pw_file.read_text().strip().rsplit(":", 1)[-1] if pw_file.exists() else ""
    password = old or secrets.token_hex(24)
    hub = pwd.getpwnam(layout.hub_user)
    # libpq's password file format: host:port:database:user:password.
    atomic_write(pw_file, f"*:*:*:{role}:{password}\n", 0o600, hub.pw_uid, hub.pw_gid)
    # psql variables keep the password off every command line (:'p2' quotes it as a literal).
    _psql(
        "SELECT format('CREATE ROLE %I LOGIN', :'p1') WHERE NOT EXISTS "
        "(SELECT 1 FROM pg_roles WHERE rolname = :'p1') \\gexec\n"
        "SELECT format('ALTER ROLE %I PASSWORD %L', :'p1', :'p2') \\gexec\n"
        "SELECT format('CREATE DATABASE %I OWNER %I', :'p1', :'p1') WHERE NOT EXISTS "
        "(SELECT 1 FROM pg_database WHERE datname = :'p1') \\gexec\n",
        role,
        password,
    )
    port = sh("pg_conftool", "-s", version, name, "show", "port", check=False).stdout.strip()
    return {
        "url": f"postgresql://{role}@127.0.0.1:{port or 5432}/{role}",
        "password_file": str(pw_file),
    }
