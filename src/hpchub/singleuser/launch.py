"""`hpchub-singleuser`: hold a port of the site's range, start Jupyter on it, tell the hub.

Runs on the compute node as the user. The hub learns the port through a callback that accepts
exactly one integer and authenticates with this server's own API token.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse, urlunparse

from ..core.ports import by_user, listeners, read_tables, summary
from .listen import LISTEN_FD_ENV, PortsExhausted, answer_ended, http_answers, open_listener


def tell_hub(api_url: str, token: str, message: dict, deadline_s: float = 120) -> None:
    """POST ``message`` to the hub's callback; retry while the hub is unreachable, stop on a
    refusal or at the deadline."""
    url = api_url.rstrip("/") + "/hpchub/port"
    body = json.dumps(message).encode()
    delay = 0.5
    end = time.monotonic() + deadline_s
    while True:
        req = urllib.request.Request(  # noqa: S310 - the hub API URL from the spawner
            url,
            data=body,
            method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        left = end - time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=max(1, min(10, left))) as resp:  # noqa: S310
                resp.read()
            return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                detail = e.read().decode(errors="replace")[:500]
                raise SystemExit(
                    f"hpchub: the hub refused {message} ({e.code}): {detail}"
                ) from None
        except (urllib.error.URLError, OSError) as e:
            if time.monotonic() > end:
                raise SystemExit(f"hpchub: cannot reach the hub at {url}: {e}") from None
        if time.monotonic() > end:
            raise SystemExit(f"hpchub: the hub did not answer {message} in {deadline_s} s")
        time.sleep(min(delay, max(0.1, end - time.monotonic())))
        delay = min(delay * 2, 10)


def exhausted_message(low: int, high: int, tables: list[str] | None = None) -> str:
    """Why no port of the range is free, for the job log's last lines (the hub shows them)."""
    held = by_user(listeners(read_tables() if tables is None else tables, low, high))
    who = f": {summary(held)}" if held else " (by sockets we cannot see)"
    return (
        f"hpchub: the server cannot start: every port of singleuser.port_range {low}-{high} on "
        f"{socket.gethostname()} is in use{who}. Ask the administrators to stop what holds "
        "them (`hpchub doctor` on the node names the processes) or to widen the range; "
        "choosing another node or partition may work meanwhile."
    )


def wait_serving(proc: subprocess.Popen, port: int, poll_s: float = 0.1) -> bool:
    """Wait until the server answers HTTP on ``port``; False if it exited first.

    We hold the listening socket, so whatever answers on it is our own server: a probe
    connection waits in the backlog until the server has adopted the socket and accepts it.
    """
    while proc.poll() is None:
        if http_answers(port):
            return True
        time.sleep(poll_s)
    return False


def main(argv: list[str] | None = None) -> None:
    """Entry point of `hpchub-singleuser --port-range=LO-HI -- COMMAND...`.

    The launcher binds the port (both IP families) and passes the socket to the server in
    ``HPCHUB_LISTEN_FD``; the port is reported only once the server answers on it, so a
    server that dies while starting is explained by Slurm's state, not by a timeout. When the
    server ends, for any reason, the launcher answers 503 on the port it keeps
    bound, tells the hub, and exits only once the hub has removed the route (or after a
    bounded wait): a freed port is never routed to.
    """
    parser = argparse.ArgumentParser(prog="hpchub-singleuser")
    parser.add_argument("--port-range", required=True, help="LOW-HIGH")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        low, high = (int(x) for x in args.port_range.split("-", 1))
    except ValueError:
        parser.error("--port-range must be LOW-HIGH")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    api_url = os.environ.get("JUPYTERHUB_API_URL")
    if not token or not api_url:
        raise SystemExit("hpchub: JUPYTERHUB_API_TOKEN and JUPYTERHUB_API_URL must be set")

    try:
        sock = open_listener(low, high)
    except PortsExhausted:
        raise SystemExit(exhausted_message(low, high)) from None
    port = sock.getsockname()[1]
    service = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0/"))
    env = dict(os.environ)
    env["JUPYTERHUB_SERVICE_URL"] = urlunparse(service._replace(netloc=f"0.0.0.0:{port}"))
    env[LISTEN_FD_ENV] = str(sock.fileno())
    proc = subprocess.Popen(command, env=env, pass_fds=(sock.fileno(),))  # noqa: S603 - argv list
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
    reported = wait_serving(proc, port)
    if reported:
        tell_hub(api_url, token, {"port": port})
        print(f"hpchub: serving on {socket.gethostname()}:{port}", flush=True)
    code = proc.wait()
    if reported:
        answer_ended(sock)
        # Slurm's KillWait (often 30 s, at least a few) bounds the time after a SIGTERM.
        with contextlib.suppress(SystemExit):
            tell_hub(api_url, token, {"ended": True}, deadline_s=8)
    sock.close()
    sys.exit(code if code >= 0 else 128 - code)
