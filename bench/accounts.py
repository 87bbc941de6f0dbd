"""The benchmark's own Unix users (bench001...), in the allowed group, with root-only passwords.

Created idempotently and kept between runs (creating a user with a home folder is slow); the
shared demo users (alice, bob, carol) are never touched.
"""

from __future__ import annotations

import json
import pwd
import secrets
import subprocess
from pathlib import Path

from hpchub.core.files import atomic_write
from hpchub_testbed.system import ensure_user

PREFIX = "bench"


def bench_user(i: int) -> str:
    """The name of bench user number ``i`` (1-based)."""
    return f"{PREFIX}{i:03d}"


def ensure_users(count: int, group: str, secrets_file: Path, log=print) -> list[str]:
    """bench001..benchNNN in ``group`` with random passwords kept in ``secrets_file`` (600)."""
    stored: dict[str, str] = {}
    if secrets_file.exists():
        stored = json.loads(secrets_file.read_text())
    names = [bench_user(i) for i in range(1, count + 1)]
    new_passwords = []
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            log(f"creating user {name}")
            ensure_user(name, groups=(group,))
            stored.pop(name, None)
        if name not in stored:
            stored[name] = secrets.token_urlsafe(12)
            new_passwords.append(f"{name}:{stored[name]}")
    if new_passwords:
        subprocess.run(["chpasswd"], input="\n".join(new_passwords) + "\n", text=True, check=True)
        secrets_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(secrets_file, json.dumps(stored, indent=2), 0o600)
    return names
