"""A hub restart at scale: many users, many running servers, and the time until the hub
answers and has checked every route.

The running servers are real Slurm jobs (``sleep`` in the hidden bench partition, one per
server) whose state the benchmark writes into the hub's database while the hub is stopped, as
hpchub's spawner would have left it: the job id, the node address and the port. Every server's
address is one stand-in on the hub host's loopback (as in the culling phase), since a
thousand real servers do not fit on this machine; the hub still polls Slurm for every job
(hpchub: one batched squeue), checks every server over HTTP and adds every route.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from . import slurmq
from .hubapi import Hub
from .scale import BENCH_PARTITION

SLEEP_JOB = "hpchub-bench-restart"
PREFIX = "hpcbr"
"""The restart run's hub-only users: hpcbr0001..."""


def hub_names(count: int) -> list[str]:
    return [f"{PREFIX}{i:04d}" for i in range(1, count + 1)]


def submit_jobs(count: int, log=print) -> list[str]:
    """``count`` tiny ``sleep`` jobs of root's in the bench partition (root's association has
    no per-user job limit); their ids."""

    def one(_i: int) -> str:
        out = subprocess.run(
            [
                "sbatch", "--parsable", "-p", BENCH_PARTITION, "-J", SLEEP_JOB,
                "--mem=1M", "-c1", "-t", "60", "-o", "/dev/null", "--wrap", "exec sleep 3600",
            ],
            capture_output=True, text=True, check=True, cwd="/",
        )  # fmt: skip
        return out.stdout.strip().split(";")[0]

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as ex:
        ids = list(ex.map(one, range(count)))
    log(f"  {count} sleep jobs submitted in {time.monotonic() - t0:.0f} s")
    return ids


def wait_running(ids: list[str], timeout: float = 600, log=print) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = slurmq.sh("squeue", "-h", "-n", SLEEP_JOB, "-t", "RUNNING", "-o", "%i")
        n = len(set(out.split()) & set(ids))
        if n == len(ids):
            log(f"  all {n} jobs run")
            return
        time.sleep(3)
    raise RuntimeError(f"only {n} of {len(ids)} sleep jobs run after {timeout:g} s")


def cancel_jobs() -> None:
    """Every job of the restart run (root's, by its name), and no one else's."""
    subprocess.run(["scancel", "-u", "root", "-n", SLEEP_JOB], capture_output=True)


def fabricate(db_url: str, users: list[str], job_ids: list[str], port: int) -> None:
    """Write a running server for each of ``users`` into the (stopped) hub's database."""
    from jupyterhub import orm

    db = orm.new_session_factory(db_url)()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        by_name = {u.name: u for u in db.query(orm.User).filter(orm.User.name.in_(users))}
        for name, job in zip(users, job_ids, strict=True):
            u = by_name[name]
            srv = orm.Server(ip="127.0.0.1", port=port, base_url=f"/user/{name}/")
            db.add(srv)
            sp = next((s for s in u._orm_spawners if s.name == ""), None)
            if sp is None:
                sp = orm.Spawner(user=u, name="")
                db.add(sp)
            sp.server = srv
            sp.started = now
            sp.last_activity = now
            sp.state = {
                "job_id": job,
                "token_sha256": "0" * 64,
                "job_host": "127.0.0.1",
                "job_port": port,
                "resources": {},
            }
            u.last_activity = now
        db.commit()
    finally:
        db.close()


def user_routes(proxy_api: str, token: str) -> int:
    """How many user routes the proxy holds (its REST API)."""
    r = requests.get(
        f"{proxy_api}/api/routes", headers={"Authorization": f"token {token}"}, timeout=10
    )
    r.raise_for_status()
    return sum(1 for path in r.json() if path.startswith("/user/"))


def _init_spawners_s(log_text: str) -> float | None:
    """JupyterHub's own time for checking the running servers at start, from its log."""
    m = re.search(r"Initialized \d+ spawners in ([0-9.]+) seconds", log_text)
    return float(m.group(1)) if m else None


def forget(db_url: str, users: list[str]) -> None:
    """Remove the restart run's users and their servers from the (stopped) hub's database."""
    from jupyterhub import orm

    db = orm.new_session_factory(db_url)()
    try:
        found = db.query(orm.User).filter(orm.User.name.in_(users)).all()
        for u in found:
            for sp in u._orm_spawners:
                if sp.server is not None:
                    db.delete(sp.server)
        db.commit()
        for u in found:
            db.delete(u)  # its spawners go with it
        db.commit()
    finally:
        db.close()


def measure(
    start_hub,
    hub: Hub,
    proxy_api: str,
    proxy_token: str,
    log_file: Path,
    hub_user: str,
    servers: int,
    log=print,
) -> dict:
    """Start the hub (``start_hub()``) and time it until it answers, the proxy holds a route
    for every server and the hub says it runs; then count the ready servers and its RPCs."""
    offset = log_file.stat().st_size if log_file.exists() else 0
    slurmq.sdiag_reset()
    t0 = time.monotonic()
    start_hub()
    answers = routes = running = None
    end = t0 + 600
    while time.monotonic() < end and None in (answers, routes, running):
        if answers is None:
            with contextlib.suppress(requests.RequestException):
                if hub.api("GET", "/", timeout=5).status_code == 200:
                    answers = time.monotonic() - t0
        if routes is None:
            with contextlib.suppress(requests.RequestException):
                if user_routes(proxy_api, proxy_token) >= servers:
                    routes = time.monotonic() - t0
        if running is None:
            with open(log_file, errors="replace") as f:
                f.seek(offset)
                if "JupyterHub is now running" in f.read():
                    running = time.monotonic() - t0
        time.sleep(0.05)
    done = max(x for x in (answers, routes, running, 0.0) if x is not None)
    st = slurmq.sdiag()
    ready = hub.list_users(state="ready")
    with open(log_file, errors="replace") as f:
        f.seek(offset)
        text = f.read()
    out = {
        "servers": servers,
        "answers_s": answers,
        "routes_s": routes,
        "now_running_s": running,
        "ready_s": done,
        "ready_after": len(ready),
        "lost": servers - len(ready),
        "rpc_this_hub": st.users_total([hub_user]),
        "init_spawners_s": _init_spawners_s(text),
        "stopped_while_down": text.count("appears to have stopped while the Hub was down"),
    }
    log(
        f"  restart with {servers} servers: answers after {answers or float('nan'):.1f} s, "
        f"every route after {routes or float('nan'):.1f} s, 'now running' after "
        f"{running or float('nan'):.1f} s, {len(ready)} ready "
        f"({out['lost']} lost), {out['rpc_this_hub']} RPCs from the hub"
    )
    return out
