"""The busy check of the single-user server (singleuser/activity.py) runs on the server's loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from types import SimpleNamespace

from tornado.ioloop import IOLoop

from hpchub.singleuser import activity


class _Kernels:
    def __init__(self, state: str) -> None:
        self.kernel = SimpleNamespace(execution_state=state)

    def list_kernel_ids(self):
        return ["k1"]

    def get_kernel(self, kid):
        return self.kernel


def _server(state: str, io_loop: IOLoop) -> SimpleNamespace:
    return SimpleNamespace(
        kernel_manager=_Kernels(state),
        web_app=SimpleNamespace(settings={}),
        io_loop=io_loop,
        log=logging.getLogger("test"),
    )


def _run_briefly(io_loop: IOLoop) -> None:
    io_loop.call_later(0.3, io_loop.stop)
    io_loop.start()


def test_a_busy_kernel_marks_activity_on_the_servers_loop_not_the_current_one(monkeypatch):
    """While extensions load, tornado's current loop may not be the one the server runs (it
    was not, with files.root set): the check must still run on the server's loop."""
    monkeypatch.setenv("HPCHUB_BUSY_CHECK", "0.05")
    server_loop = asyncio.new_event_loop()
    stray_loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(server_loop)
        io_loop = IOLoop.current()
        asyncio.set_event_loop(stray_loop)  # what IOLoop.current() finds at load time
        before = dt.datetime.now(dt.UTC)
        busy, idle = _server("busy", io_loop), _server("idle", io_loop)
        activity._load_jupyter_server_extension(busy)
        activity._load_jupyter_server_extension(idle)
        asyncio.set_event_loop(server_loop)
        _run_briefly(io_loop)
        assert busy.web_app.settings[activity.SETTING] >= before
        assert activity.SETTING not in idle.web_app.settings
    finally:
        asyncio.set_event_loop(None)
        server_loop.close()
        stray_loop.close()
