"""`hpchub-singleuser`: pick a free port in the site's range, tell the hub, start Jupyter.

Runs on the compute node as the user. The hub learns the port through a callback that accepts
exactly one integer and authenticates with this server's own API token.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse, urlunparse


def pick_port(low: int, high: int, rng: random.Random | None = None, attempts: int = 200) -> int:
    """A port in [low, high] that nothing listens on right now."""
    rng = rng or random.SystemRandom()
    candidates = list(range(low, high + 1))
    rng.shuffle(candidates)
    for port in candidates[:attempts]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("", port))
            except OSError as e:
                if e.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def report_port(api_url: str, token: str, port: int, deadline_s: float = 120) -> None:
    """POST {"port": port} to the hub; retry while the hub is unreachable, stop on a refusal."""
    url = api_url.rstrip("/") + "/hpchub/port"
    body = json.dumps({"port": port}).encode()
    delay = 0.5
    end = time.monotonic() + deadline_s
    while True:
        req = urllib.request.Request(  # noqa: S310 - the hub API URL from the spawner
            url,
            data=body,
            method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the hub's own URL
                resp.read()
            return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                detail = e.read().decode(errors="replace")[:500]
                raise SystemExit(
                    f"hpchub: the hub refused the port report ({e.code}): {detail}"
                ) from None
        except (urllib.error.URLError, OSError) as e:
            if time.monotonic() > end:
                raise SystemExit(f"hpchub: cannot reach the hub at {url}: {e}") from None
        time.sleep(delay)
        delay = min(delay * 2, 10)


def listening_inodes(port: int, tables: list[str]) -> set[str]:
    """Inodes of the sockets in LISTEN state on ``port``, from /proc/net/tcp-format tables."""
    needle = f":{port:04X} "
    found = set()
    for text in tables:
        if needle not in text:  # the common case, without parsing a thousand lines
            continue
        for line in text.splitlines()[1:]:
            if needle not in line:
                continue
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A: TCP_LISTEN
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (a wrapper's server may be a grandchild)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def socket_inodes(pids: list[int]) -> set[str]:
    """Inodes of the sockets that ``pids`` hold open."""
    found = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                found.add(link[8:-1])
    return found


def serves(pid: int, port: int) -> bool:
    """Whether the process ``pid`` (or one of its descendants) listens on ``port``.

    Asking the kernel who holds the listening socket, rather than connecting to the port,
    is what makes the report trustworthy: a connection succeeds to whatever listens there,
    and to a port in the ephemeral range it can even reach itself (a TCP self-connect), so
    the hub would route the user to a server that is not theirs, or to none.
    """
    tables = []
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/net/{name}") as f:
                tables.append(f.read())
        except OSError:
            continue
    listening = listening_inodes(port, tables)
    if not listening:
        return False
    return bool(listening & socket_inodes([pid])) or bool(
        listening & socket_inodes(process_tree(pid))
    )


def answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` (a cheap first sign).

    The probe connects *from* 127.0.0.2: to a port in the ephemeral range on which nothing
    listens yet, a connection from 127.0.0.1 can be given that very port as its source and
    connect to itself (a TCP self-connect), which then holds the port the server wants.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        # Without 127.0.0.0/8 beyond .1 (rare), a self-connect is merely unlikely.
        with contextlib.suppress(OSError):
            s.bind(("127.0.0.2", 0))
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(proc: subprocess.Popen, port: int, poll_s: float = 0.1) -> bool:
    """Wait until the server itself listens on ``port``; False if it exited first.

    A connection attempt is the cheap first sign (microseconds); the kernel's socket tables
    then say whether the listener is really ours (milliseconds, so only when something answers).
    """
    while proc.poll() is None:
        if answers(port) and serves(proc.pid, port):
            return True
        time.sleep(poll_s)
    return False


def main(argv: list[str] | None = None) -> None:
    """Entry point of `hpchub-singleuser --port-range=LO-HI -- COMMAND...`.

    The server runs as a child; its port is reported only once it accepts connections, so
    the hub never routes to a server that is not there (and a server that dies while
    starting is reported by Slurm's state, not by a timeout).
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

    port = pick_port(low, high)
    service = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0/"))
    os.environ["JUPYTERHUB_SERVICE_URL"] = urlunparse(service._replace(netloc=f"0.0.0.0:{port}"))
    proc = subprocess.Popen(command)  # noqa: S603 - argv list from the job script
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
    if wait_listening(proc, port):
        report_port(api_url, token, port)
        print(f"hpchub: serving on {socket.gethostname()}:{port}", flush=True)
    code = proc.wait()
    sys.exit(code if code >= 0 else 128 - code)
