"""The hub runs on its own host (a network namespace, `hpchub-testbed info`: hub_netns): what
the tests do there, as an admin on the hub VM would."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import requests

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def hub_cmd(testbed, *argv: str) -> list[str]:
    """``argv`` run on the hub's host (its network; the machine's files and mounts)."""
    return [*testbed["hub_exec"], *argv]


def join_hub_host(testbed) -> None:
    """Move the calling thread (only it) into the hub host's network namespace."""
    fd = os.open(testbed["hub_netns"], os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({testbed['hub_netns']}): {os.strerror(err)}")
    finally:
        os.close(fd)


def on_hub_host(testbed, fn: Callable[..., T], *args, **kw) -> T:
    """``fn(*args, **kw)`` in a thread on the hub's host: the sockets it opens are the hub's
    (they stay so: a requests session keeps using them afterwards)."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            join_hub_host(testbed)
            out["value"] = fn(*args, **kw)
        except BaseException as err:  # noqa: BLE001 - raised again in the caller
            out["error"] = err

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["value"]  # type: ignore[return-value]


class HubHostSession(requests.Session):
    """A requests session whose connections are opened on the hub's host (for the test
    virtual hosts on ports that the hub's firewall keeps closed to the machine)."""

    def __init__(self, testbed, verify: str | bool = True):
        super().__init__()
        self.trust_env = False  # this machine sets REQUESTS_CA_BUNDLE
        self.verify = verify
        self._testbed = testbed

    def send(self, request, **kw):
        return on_hub_host(self._testbed, super().send, request, **kw)
