"""Secrets generated once on the hub node: the cookie secret, the proxy token, the frontend secret.

Each lives in its own file, mode 600, owned by the user that reads it. They are never
rendered into a file others can read, never printed, and never regenerated once they exist
(a new cookie secret would log everyone out; a new proxy token would orphan the proxy).

The hub user can write the folder that holds its secrets, so root never follows a link there:
a planted link makes the install refuse (UnsafePath) instead of chowning the link's target.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from ..core.accounts import owner_ids
from ..core.files import UnsafePath, atomic_write, set_owner_mode
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


def _lstat(path: Path) -> os.stat_result | None:
    """The secret file's own status (None if missing); UnsafePath if it is a link."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(f"{path} is a symbolic link; refusing to follow it")
    return st


def ensure_secrets(paths: DeployPaths, *, chown: bool = True, dry_run: bool = False) -> list[str]:
    """Create missing secrets and fix the owner and mode of existing ones; what was done.

    Never follows a link: UnsafePath when a secret (or a folder above it) is one.
    """
    done = []
    specs = secret_files(paths)
    # The two copies of the frontend secret must hold the same value.
    shared = secrets.token_hex(32)
    frontend = [s for s in specs if s.path in (paths.frontend_secret, paths.apache_secret_conf)]
    present = [_lstat(s.path) is not None for s in frontend]
    if any(present) and not all(present):
        # One copy was lost: start both afresh rather than guess.
        if not dry_run:
            for s in frontend:
                s.path.unlink(missing_ok=True)  # removes a link itself, never its target
        done.append("renew the frontend secret (one of its two copies was missing)")
    for spec in specs:
        value = shared if spec in frontend else secrets.token_hex(32)
        uid, gid = owner_ids(spec.owner, spec.group, chown)
        st = _lstat(spec.path)
        if st is None:
            done.append(f"create {spec.path} ({spec.what}, mode 600, owner {spec.owner})")
            if dry_run:
                continue
            spec.path.parent.mkdir(parents=True, exist_ok=True)
            # A link planted meanwhile is replaced by the rename, not followed.
            atomic_write(spec.path, spec.fresh_text(value), 0o600, uid, gid)
            continue
        if st.st_mode & 0o777 != 0o600:
            done.append(f"fix the mode of {spec.path} ({st.st_mode & 0o777:o} -> 600)")
        if not dry_run:
            set_owner_mode(spec.path, 0o600, uid, gid)
    return done
