"""Packages and accounts on the testbed machine (idempotent ensure_* steps)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from hpchub.core.files import atomic_write, set_owner_mode

from .layout import Layout

APT_PACKAGES = (
    "slurmctld",
    "slurmd",
    "slurm-client",
    "slurmdbd",
    "mariadb-server",
    "iproute2",
    "munge",
    "lmod",
    "sudo",
    "python3-venv",
    "python3-dev",
    "nodejs",
    "npm",
    "git",
    "util-linux",
    "apache2",
    "apache2-utils",
    "ssl-cert",
    "logrotate",
    # The hub's host: its firewall (nft; iproute2 above makes its namespace and link).
    "nftables",
    # Not in a minimal Debian: pgrep, TLS roots (and ip, above).
    "procps",
    "ca-certificates",
    # The desktop app (config/apps.py): Xfce on TigerVNC, the least that draws a desktop.
    "tigervnc-standalone-server",
    "xfce4-session",
    "xfwm4",
    "xfce4-panel",
    "xfdesktop4",
    "dbus-x11",
    # R for the R module kernel (hpchub_testbed.testmodules): Debian's R and IRkernel.
    "r-base-core",
    "r-cran-irkernel",
)
NPM_PROXY = "configurable-http-proxy@5.3.0"
CODE_SERVER_VERSION = "4.100.3"
"""The newest code-server for Node.js 20 (later ones need Node.js 22 or 24)."""
CODE_SERVER_ROOT = Path("/opt/hpchub-code-server")
"""Versioned, shared by every testbed on the machine: building it takes minutes."""
CODE_SERVER_BUILD_PACKAGES = ("g++", "make", "pkg-config", "libkrb5-dev", "ripgrep")
"""What npm needs to build code-server's native modules (kerberos needs gssapi.h), and the
ripgrep that @vscode/ripgrep would otherwise download from outside the package registries."""
NODE_GYP = "node-gyp@11.4.2"
"""The newest node-gyp for Node.js 20, for the native modules' builds."""
RIPGREP_ASSET = ("1.15.11", "ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz")
"""The @vscode/ripgrep version code-server 4.100.3 pins, and the file its install looks for
in its download cache: we put Debian's rg there."""


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a fixed command (no shell), capturing output."""
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)  # noqa: S603


def _installed(pkg: str) -> bool:
    r = sh("dpkg-query", "-W", "-f=${Status}", pkg, check=False)
    return r.returncode == 0 and "install ok installed" in r.stdout


def ensure_packages(packages=APT_PACKAGES, log=print) -> None:
    """apt-get install whatever is missing (no recommends; services are not started by apt)."""
    missing = [p for p in packages if not _installed(p)]
    if shutil.which("node") and shutil.which("npm"):
        missing = [p for p in missing if p not in ("nodejs", "npm")]
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sh("apt-get", "update", "-qq", env=env)
    sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def proxy_path() -> str | None:
    for cand in (shutil.which("configurable-http-proxy"), "/usr/local/bin/configurable-http-proxy"):
        if cand and Path(cand).exists():
            return cand
    return None


def ensure_proxy(log=print) -> str:
    """configurable-http-proxy from npm (installed globally)."""
    found = proxy_path()
    if found:
        return found
    log(f"installing {NPM_PROXY}")
    sh("npm", "install", "-g", "--no-audit", "--no-fund", NPM_PROXY)
    found = proxy_path()
    if not found:
        raise RuntimeError("configurable-http-proxy did not install")
    return found


def ensure_code_server(log=print) -> Path:
    """code-server from npm, once per version: built in a private folder beside its place,
    made root-owned and world-readable, then renamed into place (a half-built one is never
    found; a second run finds it and returns at once). Returns the program."""
    home = CODE_SERVER_ROOT / CODE_SERVER_VERSION
    program = home / "node_modules" / ".bin" / "code-server"
    if program.exists():
        return program
    ensure_packages(CODE_SERVER_BUILD_PACKAGES, log=log)
    log(f"installing code-server {CODE_SERVER_VERSION} into {home} (a few minutes, once)")
    CODE_SERVER_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    build = CODE_SERVER_ROOT / f".build-{CODE_SERVER_VERSION}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(mode=0o700)
    # npm's scripts run as root: their temporary files (the ripgrep cache among them) go to a
    # folder of ours, never to /tmp where another user could have planted one.
    tmp = build / "tmp"
    version, asset = RIPGREP_ASSET
    cache = tmp / f"vscode-ripgrep-cache-{version}"
    cache.mkdir(parents=True)
    rg = shutil.which("rg") or "/usr/bin/rg"
    sh("tar", "czf", str(cache / asset), "-C", str(Path(rg).parent), Path(rg).name)
    # unsafe_perm: code-server's postinstall refuses root without it; yes: npx may fetch.
    env = {**os.environ, "TMPDIR": str(tmp), "npm_config_unsafe_perm": "true"}
    env["npm_config_yes"] = "true"
    # Debian's Node.js headers (nodejs or libnode-dev): node-gyp would otherwise download them.
    env["npm_config_nodedir"] = "/usr"
    # Installed as dependencies of a package of our own, in its folder (not --prefix: npm 9,
    # Debian 13's, then takes it for a global prefix and fails). node-gyp comes first: node-pty's
    # install runs `npx node-gyp`, which finds this one up the tree instead of fetching the
    # newest, which needs Node.js 22.
    (build / "package.json").write_text('{"name": "hpchub-code-server", "private": true}\n')
    for package in (NODE_GYP, f"code-server@{CODE_SERVER_VERSION}"):
        r = sh(
            "npm", "install", "--no-audit", "--no-fund", package,
            check=False, env=env, cwd=str(build),
        )  # fmt: skip
        if r.returncode != 0:
            break
    if r.returncode != 0 or not (build / "node_modules" / ".bin" / "code-server").exists():
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
        raise RuntimeError(
            f"code-server did not install (the build is in {build}; npm's own log is named "
            f"at the end):\n{tail}"
        )
    shutil.rmtree(tmp)
    sh("chown", "-R", "root:root", str(build))
    sh("chmod", "-R", "go-w,a+rX", str(build))
    os.rename(build, home)
    return program


def ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        sh("groupadd", name)


def ensure_user(
    name: str, *, system: bool = False, groups: tuple[str, ...] = (), home: bool = True
) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        argv = ["useradd", "--shell", "/bin/bash" if not system else "/usr/sbin/nologin"]
        if system:
            argv += ["--system", "--home-dir", "/nonexistent", "--no-create-home"]
        elif home:
            argv += ["--create-home"]
        sh(*argv, name)
    for g in groups:
        ensure_group(g)
        sh("usermod", "-aG", g, name)


def ensure_demo_users(layout: Layout, log=print) -> dict[str, str]:
    """Demo users in the allowed group (and one outsider), with random passwords kept root-only."""
    ensure_group(layout.group)
    layout.state.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.state, 0o755)  # noqa: S103 - secrets inside are 600
    layout.secrets_file.parent.mkdir(parents=True, exist_ok=True)
    stored: dict[str, str] = {}
    if layout.secrets_file.exists():
        stored = json.loads(layout.secrets_file.read_text())
    changed = False
    for name in (*layout.users, layout.outsider):
        groups = (layout.group,) if name in layout.users else ()
        ensure_user(name, groups=groups)
        if name not in stored:
            stored[name] = secrets.token_urlsafe(12)
            changed = True
            log(f"setting a new password for {name}")
        # Always re-apply: users may have been recreated since.
        subprocess.run(["chpasswd"], input=f"{name}:{stored[name]}\n", text=True, check=True)  # noqa: S603,S607
    if changed or not layout.secrets_file.exists():
        atomic_write(layout.secrets_file, json.dumps(stored, indent=2), 0o600)
    set_owner_mode(layout.secrets_file, 0o600)
    return stored


SCRATCH = Path("/scratch")


def ensure_scratch(users: tuple[str, ...]) -> None:
    """A stand-in for a cluster's scratch filesystem: /scratch (root's, 755) with a private
    folder per demo user (theirs, 700), laid out as sites do. Shared by every testbed."""
    SCRATCH.mkdir(mode=0o755, exist_ok=True)
    os.chown(SCRATCH, 0, 0)
    os.chmod(SCRATCH, 0o755)  # noqa: S103 - the top is readable, each user's folder is not
    for name in users:
        pw = pwd.getpwnam(name)
        folder = SCRATCH / name
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chown(folder, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
        os.chmod(folder, 0o700, follow_symlinks=False)


def ensure_hub_user(layout: Layout) -> None:
    """The unprivileged user the hub runs as; in 'shadow' so that PAM can check passwords."""
    ensure_user(layout.hub_user, system=True, groups=("shadow",))
