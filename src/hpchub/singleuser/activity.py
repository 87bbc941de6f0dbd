"""A single-user server extension: busy kernels and running terminal commands are activity.

jupyter-server counts a kernel's messages, not its work: a silent hour-long computation
looks idle and would be culled. Every ``HPCHUB_BUSY_CHECK`` seconds this marks the server
active while any kernel is busy or any terminal runs a command.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

SETTING = "hpchub_busy_last_activity"  # jupyter-server counts settings ending in _last_activity


def _jupyter_server_extension_points():
    return [{"module": "hpchub.singleuser.activity"}]


def _has_children(pid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            return True
    return False


def busy(serverapp) -> bool:
    """Whether a kernel is executing, or a terminal's shell runs a command."""
    km = serverapp.kernel_manager
    for kid in list(km.list_kernel_ids()):
        if getattr(km.get_kernel(kid), "execution_state", "") == "busy":
            return True
    terms = serverapp.web_app.settings.get("terminal_manager")
    for term in getattr(terms, "terminals", {}).values() if terms else ():
        pid = getattr(getattr(term, "ptyproc", None), "pid", None)
        if pid and _has_children(pid):
            return True
    return False


def _load_jupyter_server_extension(serverapp):
    from tornado.ioloop import PeriodicCallback

    interval_s = float(os.environ.get("HPCHUB_BUSY_CHECK", "60"))

    def check():
        try:
            if busy(serverapp):
                serverapp.web_app.settings[SETTING] = dt.datetime.now(dt.UTC)
        except Exception:  # never let a check break the server
            serverapp.log.debug("hpchub busy check failed", exc_info=True)

    pc = PeriodicCallback(check, interval_s * 1000)
    # Started from inside the server's own loop: while extensions load, tornado's "current"
    # loop can be another one, which never runs (with files.root set it was, and silent busy
    # kernels were culled).
    serverapp.io_loop.add_callback(pc.start)
    serverapp.hpchub_busy_check = pc
    serverapp.log.info(
        "hpchub: busy kernels and terminals count as activity (every %gs)", interval_s
    )
