#!/usr/bin/env python3
"""A light stand-in for jupyterhub-singleuser, for holding many idle servers in a benchmark.

It answers every path below the server's prefix with 200 (``api/status`` with a small JSON
body, as Jupyter Server does) and nothing else. It takes its port the way the real server
does: from ``JUPYTERHUB_SERVICE_URL`` (set by hpchub-singleuser and by
batchspawner-singleuser), or from ``--port=N``. Other arguments are ignored. The standard
library and hpchub's socket adoption only, so it starts in tens of milliseconds and holds a
few MB. Under hpchub it serves on the socket its launcher holds (HPCHUB_LISTEN_FD).

It checks no token: it serves nothing but these fixed answers.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from hpchub.singleuser.listen import LISTEN_FD_ENV, adopt


def port_and_prefix(argv: list[str], environ: dict[str, str]) -> tuple[int, str]:
    """The port to listen on and the URL prefix to answer, from the arguments or environment."""
    service = urlparse(environ.get("JUPYTERHUB_SERVICE_URL", ""))
    port = service.port or 0
    for arg in argv:
        if arg.startswith("--port="):
            port = int(arg.split("=", 1)[1])
    prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    if "--any-prefix" in argv:
        prefix = "/"
    if not port:
        raise SystemExit("standin: no port (JUPYTERHUB_SERVICE_URL or --port=N)")
    return port, prefix


def make_handler(prefix: str, started: str) -> type[BaseHTTPRequestHandler]:
    """A request handler answering below ``prefix``."""
    status = json.dumps(
        {"started": started, "last_activity": started, "connections": 0, "kernels": 0}
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            path = urlparse(self.path).path
            if not path.startswith(prefix) and path + "/" != prefix:
                self.send_error(404)
                return
            body = status if path.rstrip("/").endswith("/api/status") else b"stand-in\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args):  # quiet: thousands of health checks
            return

    return Handler


class _Server(ThreadingHTTPServer):
    # One loopback stand-in answers for up to thousands of servers at once (a hub restart
    # checks them all together). socketserver's listen backlog of 5 dropped most of those
    # connections, whose SYN retries (1, 3, 7, 15 s ...) then made the restart look slow.
    request_queue_size = 4096


def serve(port: int, handler) -> ThreadingHTTPServer:
    """The server on the socket hpchub's launcher holds and passed (HPCHUB_LISTEN_FD), as the
    real server adopts it; on ``port`` itself under batchspawner."""
    fd = os.environ.get(LISTEN_FD_ENV)
    if not fd:
        return _Server(("0.0.0.0", port), handler)  # noqa: S104
    server = _Server(("0.0.0.0", port), handler, bind_and_activate=False)  # noqa: S104
    server.socket.close()
    server.socket = adopt(fd)
    server.socket.setblocking(True)
    return server


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    port, prefix = port_and_prefix(argv, dict(os.environ))
    started = datetime.now(UTC).isoformat()
    server = serve(port, make_handler(prefix, started))
    print(f"standin: serving {prefix} on port {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
