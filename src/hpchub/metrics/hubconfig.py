"""The metrics' piece of the hub: /hub/metrics stays authenticated, scrapers get read:metrics."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from traitlets.config import Config

from ..config.models import SiteConfig
from ..core.files import UnsafePath, open_nofollow, opened_dir

METRICS_ROLE = "hpchub-metrics-scrapers"
MIN_TOKEN_LENGTH = 32


class TokenFileError(ValueError):
    """A scraper's token file is missing, unsafe or does not hold a usable token."""


def read_token_file(path: Path) -> str:
    """The token in ``path``: one line of at least 32 visible characters, in a file that is
    not a link and that others cannot read. TokenFileError naming the file otherwise."""
    try:
        with opened_dir(path.parent) as dir_fd:
            fd = open_nofollow(dir_fd, path.name, os.O_RDONLY)
            with os.fdopen(fd, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                raw = f.read(4097)
    except (UnsafePath, OSError) as err:
        raise TokenFileError(f"cannot read the scraper token file {path}: {err}") from None
    if not stat.S_ISREG(mode):
        raise TokenFileError(f"the scraper token file {path} is not a regular file")
    if mode & stat.S_IROTH or mode & stat.S_IWOTH:
        raise TokenFileError(
            f"the scraper token file {path} is readable or writable by others "
            f"(mode {stat.S_IMODE(mode):o}); make it mode 640 or 600"
        )
    token = raw.decode("ascii", "replace").strip()
    if len(token) < MIN_TOKEN_LENGTH or len(token) > 4096 or not token.isprintable():
        raise TokenFileError(
            f"the scraper token file {path} must hold one line of {MIN_TOKEN_LENGTH} to 4096 "
            "printable characters (e.g. from `openssl rand -hex 32`)"
        )
    if " " in token or "\n" in token:
        raise TokenFileError(f"the scraper token file {path} must hold a single token, no spaces")
    return token


def metrics_piece(site: SiteConfig, read_token=read_token_file) -> Config:
    """Metrics always need the read:metrics scope; each scraper is a service with only that."""
    c = Config()
    c.JupyterHub.authenticate_prometheus = True
    scrapers = site.monitoring.scrapers
    if scrapers:
        c.JupyterHub.services = [
            {"name": s.name, "api_token": read_token(s.token_file)} for s in scrapers
        ]
        c.JupyterHub.load_roles = [
            {
                "name": METRICS_ROLE,
                "scopes": ["read:metrics"],
                "services": [s.name for s in scrapers],
            }
        ]
    return c
