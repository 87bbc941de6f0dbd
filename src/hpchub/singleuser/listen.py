"""The server's listening socket, bound by the launcher and held for the server's whole life.

The launcher binds the port itself, on IPv6 and IPv4 at once where the node has IPv6, and
passes the socket to Jupyter. The port therefore stays held (by the launcher) after Jupyter
exits, until the hub has removed the route to it: no other user can bind it in between.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import threading

LISTEN_FD_ENV = "HPCHUB_LISTEN_FD"


class PortsExhausted(RuntimeError):
    """Every port of the range is held (or refused)."""


def _bound(family: int, host: str, port: int) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR only lets us past our own old connections in TIME_WAIT; a socket that
        # listens, or another user's, still refuses the bind (and SO_REUSEPORT is per uid).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((host, port))
        s.listen(128)
    except BaseException:
        s.close()
        raise
    return s


def bind_port(port: int) -> socket.socket:
    """A socket listening on ``port`` on every address, IPv6 and IPv4 (IPv4 alone without IPv6).

    One dual-stack socket holds both families, so nobody can listen beside it on the other.
    """
    if socket.has_ipv6:
        try:
            return _bound(socket.AF_INET6, "::", port)
        except OSError as e:
            if e.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
                raise
    return _bound(socket.AF_INET, "0.0.0.0", port)  # noqa: S104 - the proxy reaches us from the hub node


def open_listener(low: int, high: int, rng: random.Random | None = None) -> socket.socket:
    """A listening socket on a free port of [low, high], tried in random order."""
    rng = rng or random.SystemRandom()
    ports = list(range(low, high + 1))
    rng.shuffle(ports)
    for port in ports:
        try:
            return bind_port(port)
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
    raise PortsExhausted(f"every port of {low}-{high} is in use on {socket.gethostname()}")


def answer_ended(sock: socket.socket) -> threading.Thread:
    """Answer every connection with 503 from now on, in a thread, keeping the port held.

    (shutdown() of a listening socket would refuse connections, but it also unbinds the port.)
    """

    sock.settimeout(0.2)

    def serve() -> None:
        while sock.fileno() >= 0:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError), conn:
                conn.sendall(_ENDED)

    thread = threading.Thread(target=serve, name="answer-ended", daemon=True)
    thread.start()
    return thread


_ENDED = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 23\r\n\r\nThis server has ended.\n"
)


def adopt(fd_text: str) -> socket.socket:
    """The listening socket whose descriptor the launcher passed (``HPCHUB_LISTEN_FD``)."""
    fd = int(fd_text)
    sock = socket.socket(fileno=fd)
    if (
        sock.type != socket.SOCK_STREAM
        or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 1
    ):
        raise ValueError(f"{LISTEN_FD_ENV}={fd_text} is not a listening TCP socket")
    os.set_inheritable(fd, False)  # kernels and terminals do not get it
    sock.setblocking(False)
    return sock


def http_answers(port: int, timeout: float = 1.0) -> bool:
    """Whether an HTTP server answers on the port (it can only be ours: we hold the port)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(5) == b"HTTP/"
    except OSError:
        return False
