"""A metrics scraper service for the testbed: its token file, which the site file names."""

from __future__ import annotations

import pwd
import secrets
from pathlib import Path

from hpchub.core.files import atomic_write, set_owner_mode

from .layout import Layout

SCRAPER = "metrics-scraper"


def token_file(layout: Layout) -> Path:
    return layout.etc / f"{SCRAPER}.token"


def ensure_token(layout: Layout, hub_user: str | None = None) -> Path:
    """root:<the hub user's group> 640, as docs/monitoring.md tells admins; kept across `up`s.
    ``hub_user``: the user the hub runs as, when not the testbed's own (the benchmark's)."""
    path = token_file(layout)
    layout.etc.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        atomic_write(path, secrets.token_hex(32) + "\n", 0o600)
    set_owner_mode(path, 0o640, 0, pwd.getpwnam(hub_user or layout.hub_user).pw_gid)
    return path


def token(layout: Layout) -> str | None:
    """The scraper's token, for tests and scrapers on this machine (None if not readable)."""
    try:
        return token_file(layout).read_text().strip()
    except OSError:
        return None
