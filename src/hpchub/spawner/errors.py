"""Errors a user reads: plain words on the spawn page and in the API, never a bare 500."""

from __future__ import annotations

from jupyterhub.spawner import SpawnException

from ..metrics import registry as metrics


def spawn_error(message: str, *, reason: str, status_code: int = 400) -> SpawnException:
    """A SpawnException whose text is shown as is (JupyterHub would prefix its class name)."""
    exc = SpawnException(message, reason=reason, status_code=status_code)
    exc.jupyterhub_message = message
    metrics.spawn_failed(reason)
    return exc
