"""The deploy section's piece of the hub: log hygiene behind the web server, and what the
request log sees (the idle culler's stops, for the metrics)."""

from __future__ import annotations

from traitlets.config import Config

from ..config.models import SiteConfig
from ..metrics import registry as metrics
from .paths import SECRET_HEADER, USER_HEADER


def scrubbed_log_request(handler) -> None:
    """JupyterHub's request log, without our headers (it dumps all headers on a 500)."""
    from jupyterhub.log import log_request

    metrics.request_finished(handler)
    for name in (SECRET_HEADER, USER_HEADER):
        handler.request.headers.pop(name, None)
    log_request(handler)


def deploy_piece(site: SiteConfig) -> Config:
    """A request log that keeps the web server's headers out (behind Apache) and counts the
    culler's stops (always)."""
    c = Config()
    c.JupyterHub.tornado_settings = {"log_function": scrubbed_log_request}
    return c
