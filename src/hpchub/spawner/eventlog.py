"""The spawner's events, one line each: what happened, the user, the server and the job id."""

from __future__ import annotations

import logging

from ..core.logline import event_line

INFO, WARNING, ERROR = logging.INFO, logging.WARNING, logging.ERROR


def log_event(spawner, level: int, what: str, **details: object) -> None:
    """``what`` for ``spawner``'s server, through its (JupyterHub's) logger; never a secret."""
    spawner.log.log(
        level,
        event_line(
            what,
            user=spawner.user.name,
            server=spawner.name,
            job=spawner.job_id or "-",
            **details,
        ),
        stacklevel=2,  # the line names the caller's module and line, not this helper's
    )
