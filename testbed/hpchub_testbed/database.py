"""PostgreSQL for a testbed's hub, when asked (HPCHUB_TESTBED_DB=postgresql).

Debian's postgresql is installed and its cluster started by hand (no systemd here). Each
testbed gets its own role and database (hpchub_NAME) and a password file owned by its hub
user, mode 600, which the site file names (the password never appears in it).

The hub runs on its own host (a network namespace), where 127.0.0.1 is that host's loopback,
not this machine's: it reaches PostgreSQL at this machine's address on the hub's link, where
the cluster also listens, and pg_hba.conf lets in that testbed's role from the hub's address
only (scram-sha-256), as a site's database server would.
"""

from __future__ import annotations

import pwd
import secrets
import time
from pathlib import Path

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
        "url": f"postgresql://{role}@{layout.machine_addr}:{port or 5432}/{role}",
        "password_file": str(pw_file),
    }


HBA_MARK = "# hpchub-testbed"


def open_to_hub(layout: Layout, log=print) -> None:
    """Let the testbed's hub reach its database over the hub's link (after the link exists):
    PostgreSQL also listens on this machine's address there, and pg_hba.conf admits the
    testbed's role to its own database from the hub's address only."""
    if layout.db != "postgresql":
        return
    role = f"hpchub_{layout.name or 'main'}"
    version, name, _ = _cluster()
    conf = ("pg_conftool", "-s", version, name)
    listen = sh(*conf, "show", "listen_addresses", check=False).stdout.strip().strip("'")
    addrs = [a.strip() for a in (listen or "localhost").split(",") if a.strip()]
    restart = layout.machine_addr not in addrs and "*" not in addrs
    if restart:
        sh(*conf, "set", "listen_addresses", ",".join([*addrs, layout.machine_addr]))
    hba = Path(sh(*conf, "show", "hba_file").stdout.strip().strip("'"))
    line = f"host {role} {role} {layout.hub_addr}/32 scram-sha-256 {HBA_MARK}-{layout.name}\n"
    text = hba.read_text()
    if line not in text:
        # Before the package's own host lines: pg_hba.conf takes the first line that matches.
        hba.write_text(line + text)
    if restart:
        log(f"restarting PostgreSQL {version}/{name} to listen on {layout.machine_addr} too")
        sh("pg_ctlcluster", version, name, "restart")
    elif line not in text:
        sh("pg_ctlcluster", version, name, "reload")
