"""The benchmark's own Unix users (bench001...), in the allowed group, with root-only passwords.

Created idempotently and kept between runs (creating a user with a home folder is slow); the
shared demo users (alice, bob, carol) are never touched.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
from pathlib import Path

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
            subprocess.run(
                ["useradd", "--create-home", "--shell", "/bin/bash", "--groups", group, name],
                check=True,
                capture_output=True,
            )
            stored.pop(name, None)
        if name not in stored:
            stored[name] = secrets.token_urlsafe(12)
            new_passwords.append(f"{name}:{stored[name]}")
    if new_passwords:
        subprocess.run(["chpasswd"], input="\n".join(new_passwords) + "\n", text=True, check=True)
        secrets_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = secrets_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f, indent=2)
        os.replace(tmp, secrets_file)
    return names
