"""What jupyterhub_config.py calls: the site file onto the hub, then the admin's config.d."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .config.apply import apply_site
from .config.loader import load_site, site_path


def configure(c, load_subconfig: Callable[[str], None] | None = None, path: str | None = None):
    """Apply the site file to ``c`` and load ``config_d/*.py`` in name order."""
    site_file = path or os.environ.get("HPCHUB_CONFIG") or None
    site = load_site(site_file)
    apply_site(site, c, site_file=str(site_path(site_file)))
    folder = Path(site.hub.config_d)
    if load_subconfig is not None and folder.is_dir():
        for f in sorted(folder.glob("*.py")):
            load_subconfig(str(f))
    return site
