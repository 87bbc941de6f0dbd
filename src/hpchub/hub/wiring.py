"""What jupyterhub_config.py calls: the site file onto the hub, then the admin's config.d."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from traitlets.config import Config

from ..auth.hubconfig import auth_piece
from ..config.loader import load_site, site_path
from ..config.models import SiteConfig
from ..courses.hubconfig import courses_piece
from ..culling.hubconfig import culling_piece
from ..deploy.database import database_piece, use_sqlite_wal
from ..deploy.hubconfig import deploy_piece
from ..metrics.hubconfig import metrics_piece
from ..spawner.callback import callback_piece
from ..spawner.timeleft import time_piece
from .merge import merge
from .pieces import environment_piece, hub_piece, servers_piece, spawner_piece


def site_config(site: SiteConfig, site_file: str | None = None) -> Config:
    """Every feature's piece of the hub's configuration, merged (their order does not matter)."""
    return merge(
        [
            hub_piece(site),
            auth_piece(site),
            spawner_piece(site),
            environment_piece(site),
            servers_piece(site),
            culling_piece(site, site_file),
            deploy_piece(site),
            database_piece(site),
            callback_piece(),
            time_piece(),
            courses_piece(site),
            metrics_piece(site),
        ]
    )


def configure(c, load_subconfig: Callable[[str], None] | None = None, path: str | None = None):
    """Apply the site file to ``c``, then load ``config_d/*.py`` in name order.

    The site's own files come last and may set any trait; hooks they set (``pre_spawn_hook``)
    run in addition to hpchub's own, which live in ``SlurmSpawner.internal_pre_spawn_hooks``.
    """
    site_file = path or os.environ.get("HPCHUB_CONFIG") or None
    site = load_site(site_file)
    c.merge(site_config(site, site_file=str(site_path(site_file))))
    if site.hub.database is None:
        use_sqlite_wal()
    folder = Path(site.hub.config_d)
    if load_subconfig is not None and folder.is_dir():
        for f in sorted(folder.glob("*.py")):
            load_subconfig(str(f))
    return site
