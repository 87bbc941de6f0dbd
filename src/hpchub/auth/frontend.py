"""Did a request come through the web server in front of the hub?

Compute nodes (and so users' jobs) must reach the hub's own port for the API and the port
callback. A request sent there directly skips Apache, and with it the gate. Apache therefore
adds a secret header that only it and the hub know. The only other requests that may skip the
secret are those whose connection itself comes from a network the gate exempts; a client's own
``X-Forwarded-For`` is believed only when the connection comes from this machine (Apache or
the proxy), so a process on the hub node itself is trusted as far as loopback is exempt.
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

GATE_REFUSAL = "Log in through the web server"
"""The reason phrase of the 403 that refuses a login sent around the gate (doctor looks for it)."""


class FrontendSecret:
    """The secret Apache adds to every request it forwards to /hub/, read once from its file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._value: str | None = None

    def value(self) -> str:
        if self._value is None:
            text = self.path.read_text().strip()
            if len(text) < 32:
                raise RuntimeError(f"{self.path} holds no usable secret")
            self._value = text
        return self._value

    def sent_in(self, headers, header: str) -> bool:
        """Whether ``headers`` carry the secret under ``header`` (compared in constant time)."""
        sent = headers.get(header) or ""
        return hmac.compare_digest(sent.encode(), self.value().encode())


def _local_address(request) -> str:
    """The address of this machine that the connection reached ('' if unknown)."""
    stream = getattr(getattr(request, "connection", None), "stream", None)
    try:
        return stream.socket.getsockname()[0]
    except (AttributeError, OSError, IndexError, TypeError):
        return ""


def _from_this_machine(peer: str, request) -> bool:
    try:
        if ipaddress.ip_address(peer).is_loopback:
            return True
    except ValueError:
        return True  # a Unix socket: only this machine can connect
    return peer == _local_address(request)


def client_address(request) -> str:
    """The client's address: the connection's own peer, unless that is this machine (Apache
    and the proxy forward from here; a forwarded request names its client in X-Forwarded-For,
    which tornado read into ``remote_ip``; one with none came from this machine: loopback)."""
    context = getattr(getattr(request, "connection", None), "context", None)
    address = getattr(context, "address", None)
    peer = address[0] if isinstance(address, tuple) and address else ""
    if peer and not _from_this_machine(peer, request):
        return peer
    if request.remote_ip and request.remote_ip != peer:
        return request.remote_ip
    return "127.0.0.1"


def in_networks(address: str, networks) -> bool:
    """Whether ``address`` lies in one of ``networks`` (CIDR strings)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        network = ipaddress.ip_network(str(net), strict=False)
        if ip.version == network.version and ip in network:
            return True
    return False
