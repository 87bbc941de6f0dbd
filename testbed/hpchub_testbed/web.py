"""Apache in front of the test bed: a self-signed certificate, the gate's users, start/reload.

Each test bed has its own Apache instance on its hub's host (Debian's multi-instance layout:
configuration in /etc/apache2-hpchub[-NAME], pid file in /run/apache2-hpchub[-NAME]), started
and reloaded through its apachectl wrapper, which enters the hub's network namespace. It shares
the machine's modules and global configuration (mods-*, conf-*) and has its own sites and ports.
"""

from __future__ import annotations

import contextlib
import grp
import os
import subprocess
from pathlib import Path

from hpchub.core.files import atomic_write, set_owner_mode

from . import hubhost, procs
from .layout import Layout
from .system import sh

SHARED = Path("/etc/apache2")
SHARED_PID = Path("/run/apache2/apache2.pid")
SHARED_SITES_ENABLED = SHARED / "sites-enabled"
# The machine's modules and global configuration, used as they are by every instance.
SHARED_PARTS = ("mods-available", "mods-enabled", "conf-available", "conf-enabled")
COPIED_PARTS = ("apache2.conf", "envvars", "magic")


def ensure_tls(layout: Layout, log=print) -> tuple[Path, Path]:
    """A self-signed certificate for the hub host's address (and localhost), renewed before it
    expires."""
    d = layout.tls_dir
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)  # noqa: S103 - the key inside is 600
    cert, key = d / "cert.pem", d / "key.pem"
    names = f"IP:{layout.hub_addr},DNS:localhost,IP:127.0.0.1"
    if cert.exists() and key.exists() and _valid_for_30_days(cert) and _names(cert) == names:
        return cert, key
    log(f"creating a self-signed TLS certificate for {layout.hub_addr}")
    sh(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
        "-subj", f"/CN={layout.hub_addr}",
        "-addext", f"subjectAltName={names}",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return cert, key


def _names(cert: Path) -> str:
    """The certificate's subjectAltName, written as openssl -addext takes it."""
    r = sh("openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(cert), check=False)
    lines = [line.strip() for line in r.stdout.splitlines()[1:] if line.strip()]
    return ",".join(lines).replace("IP Address:", "IP:").replace(", ", ",")


def _valid_for_30_days(cert: Path) -> bool:
    r = sh("openssl", "x509", "-checkend", str(30 * 86400), "-noout", "-in", str(cert), check=False)
    return r.returncode == 0


def gate_identities(layout: Layout, passwords: dict[str, str]) -> dict[str, str]:
    """Who the gate knows, with their passwords: each demo user, by name and as a directory
    gives the name in the site's realm and in a foreign one (alice, alice@EXAMPLE.ORG...)."""
    out = {}
    for user in layout.users:
        for name in (user, f"{user}@{layout.realm}", f"{user}@{layout.foreign_realm}"):
            out[name] = passwords[user]
    return out


def ensure_gate_users(layout: Layout, passwords: dict[str, str]) -> None:
    """The gate's (basic authentication) accounts: the demo users, with their passwords."""
    path = layout.gate_htpasswd
    if path.exists() and all(_htpasswd_ok(path, u, p) for u, p in passwords.items()):
        return
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    for i, user in enumerate(sorted(passwords)):
        # -i: the password comes on stdin, never on a command line.
        subprocess.run(  # noqa: S603
            ["htpasswd", "-ciB" if i == 0 else "-iB", str(tmp), user],  # noqa: S607
            input=passwords[user] + "\n",
            text=True,
            capture_output=True,
            check=True,
        )
    set_owner_mode(tmp, 0o640, 0, grp.getgrnam("www-data").gr_gid)
    os.replace(tmp, path)


def _htpasswd_ok(path: Path, user: str, password: str) -> bool:
    r = subprocess.run(  # noqa: S603
        ["htpasswd", "-iv", str(path), user],  # noqa: S607
        input=password + "\n",
        text=True,
        capture_output=True,
    )
    return r.returncode == 0


def pid_file(layout: Layout) -> Path:
    """Where this testbed's Apache instance keeps its pid (Debian's envvars: apache2$SUFFIX)."""
    return Path("/run") / layout.apache_confdir.name / "apache2.pid"


def log_dir(layout: Layout) -> Path:
    """This testbed's Apache logs (Debian's envvars: /var/log/apache2$SUFFIX)."""
    return Path("/var/log") / layout.apache_confdir.name


def apache_pid(layout: Layout) -> int | None:
    """The pid of this testbed's running Apache, if any."""
    return procs.read_pid(pid_file(layout))


def ensure_instance(layout: Layout, log=print) -> None:
    """This testbed's Apache configuration root and its apachectl wrapper (idempotent)."""
    root = layout.apache_confdir
    if not (root / "apache2.conf").exists():
        log(f"creating this testbed's Apache instance in {root}")
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    for part in COPIED_PARTS:
        text = (SHARED / part).read_text()
        if not (root / part).exists() or (root / part).read_text() != text:
            atomic_write(root / part, text, 0o644)
    for part in SHARED_PARTS:
        link = root / part
        if not link.is_symlink():
            link.symlink_to(SHARED / part)
    for part in ("sites-available", "sites-enabled"):
        (root / part).mkdir(mode=0o755, exist_ok=True)
    ports = root / "ports.conf"
    if not ports.exists():
        # The virtual host says Listen for its own ports; nothing else listens.
        atomic_write(ports, "# The testbed's virtual host has its own Listen lines.\n", 0o644)
    log_dir(layout).mkdir(mode=0o750, exist_ok=True)
    wrapper = (
        "#!/bin/sh\n"
        "# Written by hpchub-testbed: this testbed's Apache instance, on its hub's host.\n"
        f"export APACHE_CONFDIR={root}\n"
        f'exec {" ".join(hubhost.inside(layout, "/usr/sbin/apachectl"))} "$@"\n'
    )
    layout.etc.mkdir(parents=True, exist_ok=True)
    if not layout.apachectl.exists() or layout.apachectl.read_text() != wrapper:
        atomic_write(layout.apachectl, wrapper, 0o755)


def ensure_apache(layout: Layout, changed: bool, log=print) -> None:
    """Start this testbed's Apache, or reload it gracefully when its virtual host changed;
    then wait until it answers."""
    ctl = str(layout.apachectl)
    pid = apache_pid(layout)
    if pid is not None and not hubhost.runs_inside(layout, pid):
        log("stopping this testbed's Apache: it runs outside the hub's host")
        with contextlib.suppress(subprocess.CalledProcessError):
            sh(ctl, "stop")
        procs.wait_for(lambda: not procs.alive(pid), 20, "Apache to stop")
        pid = None
    if pid is None:
        log(f"starting Apache on the hub's host ({layout.apache_confdir})")
        sh(ctl, "start")
        procs.wait_for(lambda: apache_pid(layout), 15, "Apache")
    elif changed or not site_answers(layout):
        log("reloading Apache (graceful)")
        sh(ctl, "graceful")
    procs.wait_for(lambda: site_answers(layout), 30, f"Apache on {layout.https_url}")


def stop_apache(layout: Layout, log=print) -> None:
    """Stop this testbed's Apache instance."""
    pid = apache_pid(layout)
    if pid is None:
        return
    log("stopping Apache")
    with contextlib.suppress(subprocess.CalledProcessError):
        sh(str(layout.apachectl), "stop")
    procs.wait_for(lambda: not procs.alive(pid), 20, "Apache to stop")


def leave_shared_apache(layout: Layout, log=print) -> None:
    """Before its own instance, every testbed had a virtual host in the machine's shared
    Apache: remove this testbed's, and stop that Apache when no testbed's is left."""
    for path in (SHARED_SITES_ENABLED / f"{layout.unit_prefix}.conf",
                 SHARED / "sites-available" / f"{layout.unit_prefix}.conf"):  # fmt: skip
        if not path.exists() and not path.is_symlink():
            continue
        path.unlink()
        log(f"removed {path} from the machine's shared Apache")
        if procs.read_pid(SHARED_PID) is None or path.parent != SHARED_SITES_ENABLED:
            continue
        if any(SHARED_SITES_ENABLED.glob("hpchub*.conf")):
            sh("apachectl", "graceful")
        else:
            log("stopping the machine's shared Apache (no testbed uses it any more)")
            with contextlib.suppress(subprocess.CalledProcessError):
                sh("apachectl", "stop")


def site_answers(layout: Layout) -> bool:
    """Whether this test bed's HTTPS address answers (with its own certificate)."""
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(layout.tls_dir / "cert.pem"))
    try:
        with urllib.request.urlopen(layout.https_url + "/hub/login", timeout=3, context=ctx) as r:  # noqa: S310
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except (OSError, ssl.SSLError):
        return False
