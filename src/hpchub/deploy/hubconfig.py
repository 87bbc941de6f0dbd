"""The deploy section's piece of the hub: log hygiene behind the web server."""

from __future__ import annotations

from traitlets.config import Config

from ..config.models import SiteConfig
from .paths import SECRET_HEADER, USER_HEADER


def scrubbed_log_request(handler) -> None:
    """JupyterHub's request log, without our headers (it dumps all headers on a 500)."""
    from jupyterhub.log import log_request

    for name in (SECRET_HEADER, USER_HEADER):
        handler.request.headers.pop(name, None)
    log_request(handler)


def deploy_piece(site: SiteConfig) -> Config:
    """Behind Apache: a request log that keeps the web server's headers out."""
    c = Config()
    if site.deploy.web.enabled:
        c.JupyterHub.tornado_settings = {"log_function": scrubbed_log_request}
    return c
