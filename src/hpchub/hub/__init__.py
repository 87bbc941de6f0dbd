"""Hub wiring: the site file onto JupyterHub, from one piece per feature (the top layer)."""

from .wiring import configure

__all__ = ["configure"]
