"""Slurm accounting, as a site runs it: MariaDB, slurmdbd, accounts, a QOS, a private queue.

MariaDB (Debian's) listens on its Unix socket only and knows slurmdbd's Unix user through
unix_socket authentication, so there is no database password to keep. Every demo user has an
association (user, account): alice and bob in the research account `research` (alice, who also
teaches, in `course101` too), carol in the course account `course101`; the QOS `jupyter` is their
accounts' default QOS, so Jupyter jobs run in it. slurm.conf enforces associations and
sets PrivateData=jobs,usage,users, so the hub's user is made a Slurm operator with hpchub's own
rendered script (deploy/render.py slurm_operator), as a site's Slurm admin would.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hpchub.core.templates import render_from

from . import procs
from .system import sh

MARIADB_RUN = Path("/run/mysqld")
MARIADB_SOCKET = MARIADB_RUN / "mysqld.sock"
SLURMDBD_PIDFILE = Path("/run/slurm/slurmdbd.pid")
SLURMDBD_CONF = Path("/etc/slurm/slurmdbd.conf")
CLUSTER = "hpchub-testbed"
QOS = "jupyter"
RESEARCH, COURSE = "research", "course101"
ACCOUNTS = {RESEARCH: "a research group", COURSE: "a course's students"}
COURSE_USERS = frozenset({"carol"})
BOTH_USERS = frozenset({"alice"})  # research first (her default), the course second


MODES = ("slurmdbd", "none")


def default_mode(debian_version: str | None = None) -> str:
    """'slurmdbd', except on Debian 13, where slurmdbd 24.11.5 cannot start today: Debian's
    libmariadb3 1:11.8.9 makes its first query fail ('Number of columns in result (=1) set
    execeeds maxmimum allowed number of columns (=0)', then `_check_mysql_concat_is_sane`).
    See docs/testing.md; HPCHUB_TESTBED_ACCOUNTING=slurmdbd tries anyway."""
    if debian_version is None:
        try:
            debian_version = Path("/etc/debian_version").read_text()
        except OSError:
            debian_version = ""
    major = debian_version.strip().split(".")[0]
    newer = (major.isdigit() and int(major) >= 13) or debian_version.startswith("trixie")
    return "none" if newer else "slurmdbd"


def mode(environ: dict[str, str] | None = None) -> str:
    """HPCHUB_TESTBED_ACCOUNTING: 'slurmdbd' (like a site) or 'none' (a cluster without
    accounting, and so without PrivateData: the hub could never be an operator); the default
    is default_mode(). It is the cluster's, so shared by every named testbed on the machine."""
    env = os.environ if environ is None else environ
    value = env.get("HPCHUB_TESTBED_ACCOUNTING") or default_mode()
    if value not in MODES:
        raise SystemExit(
            f"HPCHUB_TESTBED_ACCOUNTING must be one of {', '.join(MODES)}, not {value!r}"
        )
    return value


def enabled() -> bool:
    return mode() == "slurmdbd"


def accounts_of(user: str) -> tuple[str, ...]:
    """The accounts of a demo or benchmark user, the default first."""
    if user in BOTH_USERS:
        return (RESEARCH, COURSE)
    return (COURSE,) if user in COURSE_USERS else (RESEARCH,)


def _mariadb_up() -> bool:
    return sh("mariadb", "-N", "-e", "SELECT 1", check=False).returncode == 0


def ensure_database(log=print) -> None:
    """MariaDB on its socket only, with slurmdbd's user allowed in by its Unix identity."""
    if not _mariadb_up():
        log("starting MariaDB (socket only)")
        MARIADB_RUN.mkdir(parents=True, exist_ok=True)
        sh("chown", "mysql:mysql", str(MARIADB_RUN))
        procs.start(
            "hpchub-testbed-mariadbd",
            [
                "/usr/sbin/mariadbd",
                "--user=mysql",
                "--skip-networking",
                f"--socket={MARIADB_SOCKET}",
            ],
            MARIADB_RUN,
            Path("/var/log/slurm/mariadbd.log"),
        )
        procs.wait_for(_mariadb_up, 30, "MariaDB")
    sh(
        "mariadb",
        "-e",
        "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED VIA unix_socket; "
        "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';",
    )


def write_config() -> bool:
    """slurmdbd.conf (slurm's, mode 600: slurmdbd refuses anything wider); True if it changed."""
    text = render_from(
        "hpchub_testbed", "slurmdbd.conf.j2", log_dir="/var/log/slurm", run_dir="/run/slurm"
    )
    if SLURMDBD_CONF.exists() and SLURMDBD_CONF.read_text() == text:
        return False
    SLURMDBD_CONF.write_text(text)
    sh("chown", "slurm:slurm", str(SLURMDBD_CONF))
    SLURMDBD_CONF.chmod(0o600)
    return True


def _dbd_answers() -> bool:
    return (
        sh("sacctmgr", "-n", "-P", "show", "cluster", "format=cluster", check=False).returncode == 0
    )


def start_slurmdbd(restart: bool, log=print) -> None:
    """slurmdbd (before slurmctld, which registers with it), and the cluster's record."""
    pid = procs.read_pid(SLURMDBD_PIDFILE)
    if pid and restart:
        log("restarting slurmdbd (configuration changed)")
        sh("kill", str(pid))
        procs.wait_for(lambda: not procs.alive(pid), 20, "slurmdbd to stop")
        pid = None
    if not pid:
        log("starting slurmdbd")
        sh("/usr/sbin/slurmdbd")
        procs.wait_for(lambda: procs.read_pid(SLURMDBD_PIDFILE), 15, "slurmdbd")
    procs.wait_for(_dbd_answers, 60, "slurmdbd to answer sacctmgr")
    _ensure("cluster", CLUSTER, ["sacctmgr", "-i", "add", "cluster", CLUSTER])


def _names(kind: str, field: str) -> set[str]:
    out = sh("sacctmgr", "-n", "-P", "show", kind, f"format={field}").stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def _ensure(kind: str, name: str, argv: list[str]) -> None:
    if name not in _names(kind, kind if kind != "qos" else "name"):
        sh(*argv)


def ensure_associations(users: Iterable[str], log=print) -> None:
    """The QOS, the accounts and one association per user (only what is missing is added)."""
    if not enabled():
        return
    _ensure(
        "qos",
        QOS,
        ["sacctmgr", "-i", "add", "qos", QOS, "MaxJobsPerUser=20", "Description=Jupyter servers"],
    )
    for account, words in ACCOUNTS.items():
        _ensure(
            "account",
            account,
            [
                "sacctmgr", "-i", "add", "account", account,
                f"Description={words}", "Organization=testbed", f"QOS=normal,{QOS}",
            ],
        )  # fmt: skip
    # Jupyter jobs of these accounts run in the jupyter QOS by default (inherited by users).
    out = sh("sacctmgr", "-n", "-P", "show", "assoc", "where", "user=", "format=account,defaultqos")
    for line in out.stdout.splitlines():
        account, _, default_qos = line.partition("|")
        if account in ACCOUNTS and default_qos != QOS:
            sh(
                "sacctmgr", "-i", "modify", "account", "where", f"name={account}",
                "set", f"DefaultQOS={QOS}",
            )  # fmt: skip
    out = sh("sacctmgr", "-n", "-P", "show", "assoc", "format=user,account").stdout
    have = {tuple(line.split("|")) for line in out.splitlines() if line.count("|") == 1}
    missing: dict[tuple[str, str], list[str]] = {}
    for user in users:
        mine = accounts_of(user)
        for account in mine:
            if (user, account) not in have:
                missing.setdefault((account, mine[0]), []).append(user)
    for (account, default), names in missing.items():
        log(f"adding {len(names)} user(s) to Slurm account {account}")
        sh(
            "sacctmgr", "-i", "add", "user", ",".join(names),
            f"Account={account}", f"DefaultAccount={default}",
        )  # fmt: skip


def ensure_operator(script: Path, log=print) -> None:
    """Run hpchub's rendered sacctmgr script: the hub user becomes a Slurm operator."""
    if not enabled():
        return
    r = sh("sh", str(script), check=False)
    if r.returncode != 0:
        raise SystemExit(f"hpchub-testbed: {script} failed: {r.stderr.strip() or r.stdout.strip()}")


def stop(log=print) -> None:
    """slurmdbd and MariaDB (after slurmctld)."""
    pid = procs.read_pid(SLURMDBD_PIDFILE)
    if pid:
        log("stopping slurmdbd")
        sh("kill", str(pid), check=False)
        procs.wait_for(lambda: not procs.alive(pid), 20, "slurmdbd to stop")
    if procs.stop("hpchub-testbed-mariadbd", MARIADB_RUN, timeout=30):
        log("stopped MariaDB")


def status() -> dict[str, bool]:
    if not enabled():
        return {}
    return {
        "mariadb": _mariadb_up(),
        "slurmdbd": procs.read_pid(SLURMDBD_PIDFILE) is not None,
    }
