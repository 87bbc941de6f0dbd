"""Spawn latency: one user's sequential spawns, many users at once, and the floor without Slurm."""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import requests

from hpchub.singleuser.listen import LISTEN_FD_ENV

from . import slurmq, startup
from .hubapi import Hub, SpawnTiming
from .procstat import cpu_times, job_cpu_seconds


def _stop_and_settle(hub: Hub, users: list[str]) -> None:
    """Stop the servers and wait until Slurm has let their jobs go (fresh resources next)."""
    with ThreadPoolExecutor(max_workers=max(1, min(20, len(users)))) as ex:
        list(ex.map(hub.stop, users))
        list(ex.map(hub.wait_stopped, users))
    slurmq.wait_no_jobs(users)


def sequential(
    make_hub,
    user: str,
    options: dict,
    n: int,
    floors: dict[str, str] | None = None,
    port_range=(40000, 49999),
    floor_log: Path | None = None,
    log=print,
) -> tuple[list[dict], dict[str, list[dict]]]:
    """``n`` spawns of one user's server, one after the other, after one unrecorded warm-up.

    With ``floors`` (name -> server executable), each spawn is followed, while its server
    runs, by one direct start of each of those servers without Slurm (the floors: stock
    jupyterhub-singleuser and hpchub's), in an order that alternates spawn by spawn, so all
    see the same conditions on the machine. Each floor start: wall seconds and CPU seconds.
    """
    hub = make_hub()
    _stop_and_settle(hub, [user])
    warm = hub.timed_spawn(user, options)
    log(f"  warm-up (not counted): {_fmt(warm)}")
    _stop_and_settle(hub, [user])
    out: list[dict] = []
    measured: dict[str, list[dict]] = {name: [] for name in floors or {}}
    for i in range(n):
        t = hub.timed_spawn(user, options)
        line = f"  spawn {i + 1}/{n}: {_fmt(t)}"
        names = list(floors or {})
        for name in names if i % 2 == 0 else names[::-1]:
            if t.error:
                break
            took = floor_start(hub, user, floors[name], port_range, floor_log, log=log)
            measured[name].append(took)
            line += f"; floor {name} {took['wall']:.2f} s ({took['cpu']:.2f} CPU s)"
        if i == n - 1 and not t.error and floor_log:
            for name in names:  # one profiled start each, while the last spawn's server runs
                path = floor_log.with_name(f"startup-{name}.log")
                took = floor_start(
                    hub, user, floors[name], port_range, path, profiled=True, log=log
                )
                measured.setdefault(f"profile_{name}", []).append(took)
        log(line)
        out.append(asdict(t))
        _stop_and_settle(hub, [user])
        time.sleep(1)
    return out, measured


def concurrent(make_hub, users: list[str], options: dict, log=print) -> list[dict]:
    """All of ``users`` ask for their server at the same moment.

    Once all are up (or failed), each job's CPU seconds so far are read from its cgroup: what
    starting that server cost the nodes, whatever the spawner (its job script, launcher or
    callback, and the server), apart from the machine's other load.
    """
    hub = make_hub()
    _stop_and_settle(hub, users)
    barrier = threading.Barrier(len(users))

    def one(user: str) -> SpawnTiming:
        h = make_hub()
        barrier.wait()
        return h.timed_spawn(user, options)

    with ThreadPoolExecutor(max_workers=len(users)) as ex:
        timings = list(ex.map(one, users))
    cpu = {u: job_cpu_seconds(j) for u, j in slurmq.jobs_by_user(users).items()}
    for t in timings:
        if t.error:
            log(f"  {t.user}: {t.error}")
    ok = [t.proxy_ok for t in timings if t.proxy_ok is not None]
    known = [c for c in cpu.values() if c is not None]
    log(
        f"  {len(ok)}/{len(users)} up; slowest {max(ok, default=float('nan')):.2f} s; "
        f"node CPU per start {sum(known) / max(1, len(known)):.2f} s ({len(known)} jobs)"
    )
    _stop_and_settle(hub, users)
    return [{**asdict(t), "node_cpu_s": cpu.get(t.user)} for t in timings]


def _fmt(t: SpawnTiming) -> str:
    if t.error:
        return f"FAILED: {t.error}"
    return f"{t.proxy_ok:.2f} s (hub ready {t.hub_ready:.2f} s, HTTP {t.requested_status})"


# -- the floor ------------------------------------------------------------------------
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


# The server processes the hub may be running for a user: hpchub's (it adopts the socket its
# launcher holds, from the job's resolved release) or the stock one (batchspawner's).
SERVER_NAMES = frozenset({"hpchub-jupyterhub-singleuser", "jupyterhub-singleuser"})


def _server_pid(user: str) -> int | None:
    """The running single-user server of ``user`` (the benchmark's own user)."""
    uid = pwd.getpwnam(user).pw_uid
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and os.path.basename(argv[1].decode(errors="replace")) in SERVER_NAMES:
            return int(entry.name)
    return None


def job_environment(user: str) -> dict[str, str]:
    """The environment of ``user``'s running server: exactly what its Slurm job gave it (but
    the launcher's socket, which the direct start does not have)."""
    pid = _server_pid(user)
    if pid is None:
        raise RuntimeError(f"no running single-user server of {user}")
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    env.pop(LISTEN_FD_ENV, None)
    return env


def _free_port(low: int, high: int) -> int:
    for port in random.sample(range(low, high + 1), 200):
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class PortTaken(RuntimeError):
    """The port chosen for a floor start was taken before the server bound it."""


def floor_start(hub: Hub, user: str, exe: str, *args, log=print, tries: int = 3, **kw) -> dict:
    """:func:`floor_once`, again on another port when the chosen one was taken meanwhile (on a
    busy machine, seconds pass between choosing a free port and the server binding it, and
    the port range is shared with the jobs of every hub on the cluster)."""
    for i in range(tries):
        try:
            return floor_once(hub, user, exe, *args, **kw)
        except PortTaken as err:
            if i == tries - 1:
                raise
            log(f"  {err}; starting it again on another port")
    raise AssertionError("unreachable")


def floor_once(
    hub: Hub,
    user: str,
    exe: str,
    port_range=(40000, 49999),
    log_file: Path | None = None,
    profiled: bool = False,
) -> dict:
    """Start the same jupyterhub-singleuser directly as ``user``, without Slurm, once.

    The environment (API token included) is copied from the server that the hub is running
    for the same user, so the direct start does the same work: it talks to the same hub with
    a valid token. It goes in the process environment, never on a command line.
    Returns the wall seconds until it answered and the CPU seconds it had used by then (its
    own and its waited-for children's: nsenter and setpriv exec it, so the pid is its own).
    ``profiled``: with ``-X importtime`` and ``--debug``, its log (``log_file``, rewritten)
    read back into "profile" (bench/startup.py); slower, so never mixed into the floors.
    """
    env = job_environment(user)
    pw = pwd.getpwnam(user)
    port = _free_port(*port_range)
    run_env = {**env, "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:{port}{_prefix(env)}"}
    if profiled:
        run_env["PYTHONPROFILEIMPORTTIME"] = "1"
    status = f"http://127.0.0.1:{port}{_prefix(env)}api/status"
    out = open(log_file, "wb" if profiled else "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    t0 = time.perf_counter()
    # On the node (the machine's own network, which bench/run keeps open on a descriptor),
    # not on the hub's host where the benchmark runs; setpriv drops to the user there.
    fd = int(os.environ.get("HPCHUB_BENCH_MACHINE_NETNS_FD", "-1"))
    argv = [exe, "--debug"] if profiled else [exe]
    if fd >= 0:
        ids = [f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
        argv = ["nsenter", f"--net=/proc/self/fd/{fd}", "setpriv", *ids, *argv]
    proc = subprocess.Popen(
        argv,
        env=run_env,
        cwd=pw.pw_dir,
        **(
            {"pass_fds": (fd,)}
            if fd >= 0
            else {
                "user": pw.pw_uid,
                "group": pw.pw_gid,
                "extra_groups": os.getgrouplist(user, pw.pw_gid),
            }
        ),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )
    if log_file:
        out.close()
    cpu = None
    try:
        took = _wait_200(status, hub.s.headers["Authorization"], proc, t0)
        if took is not None:
            used = cpu_times(proc.pid)
            cpu = used.own + used.children
    finally:
        _kill_group(proc)
    if (took is None or cpu is None) and log_file and _port_taken(log_file, port):
        raise PortTaken(f"port {port} was taken before {os.path.basename(exe)} bound it")
    if took is None or cpu is None:
        raise RuntimeError(
            f"the directly started {exe} never answered /api/status (its log: {log_file})"
        )
    result: dict = {"wall": took, "cpu": cpu}
    if profiled and log_file:
        result["profile"] = startup.profile(log_file.read_text(errors="replace"))
    return result


def _port_taken(log_file: Path, port: int) -> bool:
    """Whether the server's log says that ``port`` was in use (the whole log: a profiled
    start goes on writing debug lines about language servers after the port error)."""
    text = log_file.read_text(errors="replace")
    return f"port {port} is not available" in text or f"The port {port} is already in use" in text


def _prefix(env: dict[str, str]) -> str:
    return env.get("JUPYTERHUB_SERVICE_PREFIX", "/")


def _wait_200(
    url: str, auth: str, proc: subprocess.Popen, t0: float, timeout: float = 120
) -> float | None:
    """Seconds from ``t0`` until ``url`` answers 200 (None if the process exits first).

    HTTP polling starts once the port listens (checked like the launcher does, from
    127.0.0.2): polling a port nobody listens on yet can connect to itself and steal it.
    """
    port = int(url.split(":")[2].split("/")[0])
    while not answers(port):
        if proc.poll() is not None or time.perf_counter() - t0 > timeout:
            return None
        time.sleep(0.02)
    s = requests.Session()
    s.trust_env = False
    while time.perf_counter() - t0 < timeout and proc.poll() is None:
        try:
            r = s.get(url, headers={"Authorization": auth}, timeout=5)
            if r.status_code == 200:
                return time.perf_counter() - t0
        except requests.RequestException:
            pass
        time.sleep(0.02)
    return None


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
