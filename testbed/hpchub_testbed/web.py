"""Apache in front of the test bed: a self-signed certificate, the gate's users, start/reload.

One Apache serves every test bed on the machine, one virtual host file each
(sites-enabled/hpchub.conf, sites-enabled/hpchub-NAME.conf), each on its own ports.
"""

from __future__ import annotations

import contextlib
import grp
import os
import subprocess
from pathlib import Path

from hpchub.core.files import set_owner_mode

from . import procs
from .layout import Layout
from .system import sh

APACHE_PID = Path("/run/apache2/apache2.pid")
SITES_ENABLED = Path("/etc/apache2/sites-enabled")


def ensure_tls(layout: Layout, log=print) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (and 127.0.0.1), renewed before it expires."""
    d = layout.tls_dir
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)  # noqa: S103 - the key inside is 600
    cert, key = d / "cert.pem", d / "key.pem"
    if cert.exists() and key.exists() and _valid_for_30_days(cert):
        return cert, key
    log("creating a self-signed TLS certificate for localhost")
    sh(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
        "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return cert, key


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


def apache_pid() -> int | None:
    """The running Apache's pid, if any."""
    return procs.read_pid(APACHE_PID)


def ensure_apache(layout: Layout, changed: bool, log=print) -> None:
    """Start Apache, or reload it gracefully when this test bed's virtual host changed (or was
    enabled again after a `down`); then wait until it answers."""
    if apache_pid() is None:
        log("starting Apache")
        sh("apachectl", "start")
        procs.wait_for(apache_pid, 15, "Apache")
    elif changed or not site_answers(layout):
        log("reloading Apache (graceful)")
        sh("apachectl", "graceful")
    procs.wait_for(lambda: site_answers(layout), 30, f"Apache on {layout.https_url}")


def disable_site(layout: Layout, log=print) -> None:
    """Remove this test bed's virtual host; stop Apache when no test bed's is left."""
    link = SITES_ENABLED / f"{layout.unit_prefix}.conf"
    if not link.exists() and not link.is_symlink():
        return
    link.unlink()
    log(f"disabled {link.name}")
    if apache_pid() is None:
        return
    if any(SITES_ENABLED.glob("hpchub*.conf")):
        sh("apachectl", "graceful")
    else:
        log("stopping Apache")
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
