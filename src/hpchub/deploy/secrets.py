"""Secrets generated once on the hub node: the cookie secret, the proxy token, the frontend secret.

Each lives in its own file, mode 600, owned by the user that reads it. They are never
rendered into a file others can read, never printed, and never regenerated once they exist
(a new cookie secret would log everyone out; a new proxy token would orphan the proxy).
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from .paths import DeployPaths
from .render import apache_secret_conf


@dataclass(frozen=True)
class SecretFile:
    """A secret's file, who owns it, and how a new value is written."""

    path: Path
    owner: str
    group: str
    what: str
    kind: str  # "hex" | "proxy-env" | "apache"

    def fresh_text(self, value: str) -> str:
        if self.kind == "proxy-env":
            return f"CONFIGPROXY_AUTH_TOKEN={value}\n"
        if self.kind == "apache":
            return apache_secret_conf(value)
        return value + "\n"


def secret_files(paths: DeployPaths) -> list[SecretFile]:
    """The secrets this deployment needs."""
    user = paths.deploy.hub_user
    out = [
        SecretFile(paths.cookie_secret, user, user, "the hub's cookie secret", "hex"),
        SecretFile(paths.proxy_env, user, user, "the proxy's API token", "proxy-env"),
    ]
    if paths.uses_frontend_secret:
        out += [
            SecretFile(paths.frontend_secret, user, user, "the frontend secret (hub)", "hex"),
            SecretFile(
                paths.apache_secret_conf, "root", "root", "the frontend secret (Apache)", "apache"
            ),
        ]
    return out


def read_proxy_token(path: Path) -> str:
    """The token in a proxy.env file ('' if there is none)."""
    for line in path.read_text().splitlines():
        if line.startswith("CONFIGPROXY_AUTH_TOKEN="):
            return line.split("=", 1)[1].strip()
    return ""


def _write_new(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def ensure_secrets(paths: DeployPaths, *, chown: bool = True, dry_run: bool = False) -> list[str]:
    """Create missing secrets and fix the owner and mode of existing ones; what was done."""
    done = []
    specs = secret_files(paths)
    # The two copies of the frontend secret must hold the same value.
    shared = secrets.token_hex(32)
    frontend = [s for s in specs if s.path in (paths.frontend_secret, paths.apache_secret_conf)]
    present = [s.path.exists() for s in frontend]
    if any(present) and not all(present):
        # One copy was lost: start both afresh rather than guess.
        if not dry_run:
            for s in frontend:
                s.path.unlink(missing_ok=True)
        done.append("renew the frontend secret (one of its two copies was missing)")
    for spec in specs:
        value = shared if spec in frontend else secrets.token_hex(32)
        if not spec.path.exists():
            done.append(f"create {spec.path} ({spec.what}, mode 600, owner {spec.owner})")
            if dry_run:
                continue
            _write_new(spec.path, spec.fresh_text(value))
        elif dry_run:
            continue
        st = spec.path.stat()
        if st.st_mode & 0o777 != 0o600:
            done.append(f"fix the mode of {spec.path} ({st.st_mode & 0o777:o} -> 600)")
        os.chmod(spec.path, 0o600)
        if chown:
            shutil.chown(spec.path, spec.owner, spec.group)
    return done
