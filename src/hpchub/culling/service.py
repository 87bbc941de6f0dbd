"""The culler as a hub-managed service, with a role that can do nothing else."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config.culling import CULLER_SERVICE, CullingSettings
from ..config.models import SiteConfig
from .policy import IdlePolicy

CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def culler_service(
    site: SiteConfig, python: str | None = None, site_file: str | None = None
) -> dict:
    """The JupyterHub service entry that runs jupyterhub-idle-culler with our arbiter."""
    s: CullingSettings = site.culling
    config_file = Path(__file__).with_name("culler_config.py")
    env = {"HPCHUB_CONFIG": site_file} if site_file else {}
    return {
        "name": CULLER_SERVICE,
        "command": [
            python or sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={IdlePolicy.from_site(site).shortest}",
            f"--cull-every={s.every}",
            f"--concurrency={s.concurrency}",
            f"--api-page-size={s.page_size}",
            f"--config={config_file}",
        ],
        "environment": env,
    }


def culler_role() -> dict:
    """Least privilege: list users, read activity and servers, stop servers. Nothing else."""
    return {"name": CULLER_SERVICE, "scopes": list(CULLER_SCOPES), "services": [CULLER_SERVICE]}


def activity_environment(site: SiteConfig) -> dict[str, str]:
    """What the job needs to report activity (busy kernels and terminals included) often
    enough for the shortest idle timeout to be judged fairly."""
    return {
        "JUPYTERHUB_ACTIVITY_INTERVAL": str(site.culling.activity_interval),
        "HPCHUB_BUSY_CHECK": str(site.culling.busy_check),
    }
