"""`bench/run --scale`: many users on one hub (logins, spawns and the API under load) and a hub
restart with many running servers.

The load run holds ``servers`` stand-in servers (jobs in the hidden bench partition, started
by hpchub's real launcher) for ``users`` real Unix accounts, and for ``minutes`` logs users in
(PAM, through the proxy's login form), starts servers (stopping as many, so the count holds)
and asks the hub's REST API, at fixed rates. The accounts are the benchmark's own
(``PREFIX``), created in one ``newusers`` batch and removed at the end.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from hpchub_testbed import accounting

from . import slurmq
from .hubapi import HubError
from .load import SETTLE_S, start_servers, stop_servers
from .procstat import cpu_times, memory_kib
from .stats import summary

PREFIX = "hpcbs"
"""The scale run's Unix accounts: hpcbs0001...; never anyone else's."""
BENCH_PARTITION = "hpchub-bench"
"""The testbed's hidden partition for many tiny jobs (testbed cluster.BENCH_PARTITION)."""
PROFILE = "bench-scale"
SPAWN_TIMEOUT_S = 300
"""A spawn of the churn that is not ready by then counts as failed."""


def account_names(count: int) -> list[str]:
    return [f"{PREFIX}{i:04d}" for i in range(1, count + 1)]


def scale_profile(memory: str) -> dict:
    return {
        "key": PROFILE,
        "display_name": "Benchmark, stand-in at scale",
        "partitions": [BENCH_PARTITION],
        "memory": memory,
        "cpus": 1,
        "time": "1h",
        "idle_timeout": "4h",
        "users": [],
        "groups": [],
    }


# -- accounts -----------------------------------------------------------------------------
def create_accounts(count: int, group: str, log=print) -> dict[str, str]:
    """``count`` accounts (home folder, primary group ``group``, random password) in one
    ``newusers`` batch; returns name -> password. Leftovers of an earlier run are removed first."""
    remove_accounts(log=log)
    names = account_names(count)
    passwords = {n: secrets.token_urlsafe(12) for n in names}
    t0 = time.monotonic()
    lines = "".join(
        f"{n}:{passwords[n]}::{group}:hpchub scale benchmark:/home/{n}:/bin/bash\n" for n in names
    )
    subprocess.run(["newusers"], input=lines, text=True, check=True, capture_output=True)
    accounting.ensure_associations(names, log=log)
    log(f"  {count} accounts created in {time.monotonic() - t0:.0f} s (newusers, associations)")
    return passwords


def existing_accounts() -> list[str]:
    out = []
    with open("/etc/passwd") as f:
        for line in f:
            name = line.split(":", 1)[0]
            if name.startswith(PREFIX) and name[len(PREFIX) :].isdigit():
                out.append(name)
    return out


def remove_accounts(log=print) -> None:
    """Every account of the scale run (its jobs cancelled, its associations and homes gone)."""
    names = existing_accounts()
    if not names:
        return
    slurmq.cancel_all(names)
    if accounting.enabled():
        for i in range(0, len(names), 200):
            subprocess.run(
                ["sacctmgr", "-i", "delete", "user", "name=" + ",".join(names[i : i + 200])],
                capture_output=True,
            )

    def one(name: str) -> None:
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True)

    with ThreadPoolExecutor(max_workers=4) as ex:
        list(ex.map(one, names))
    log(f"  removed {len(names)} accounts of the scale run")


# -- the load run ---------------------------------------------------------------------------
def login(base: str, user: str, password: str) -> tuple[float, str | None]:
    """One login through the proxy's form (the hub checks the password with PAM): seconds of
    the POST, and an error or None."""
    s = requests.Session()
    s.trust_env = False
    try:
        s.get(f"{base}/hub/login", timeout=60)
        data = {"username": user, "password": password, "_xsrf": s.cookies.get("_xsrf", "")}
        t0 = time.perf_counter()
        r = s.post(f"{base}/hub/login", data=data, allow_redirects=False, timeout=120)
        took = time.perf_counter() - t0
    except requests.RequestException as err:
        return float("nan"), str(err)
    if r.status_code != 302 or "/login" in r.headers.get("Location", ""):
        return took, f"HTTP {r.status_code}"
    return took, None


class Sampler(threading.Thread):
    """Peak resident memory of the hub and the proxy, every second."""

    def __init__(self, hub_pid: int, proxy_pid: int):
        super().__init__(daemon=True)
        self.pids = {"hub": hub_pid, "proxy": proxy_pid}
        self.peak = {"hub": 0, "proxy": 0}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for k, pid in self.pids.items():
                with contextlib.suppress(OSError):
                    self.peak[k] = max(self.peak[k], memory_kib(pid)[0])
            self.stop.wait(1.0)


def _every(rate_per_min: float, until: float, stop: threading.Event, fn) -> None:
    """Call ``fn`` ``rate_per_min`` times a minute until ``until`` (monotonic)."""
    step = 60.0 / rate_per_min
    nxt = time.monotonic()
    while not stop.is_set() and nxt < until:
        fn()
        nxt += step
        stop.wait(max(0.0, nxt - time.monotonic()))


def rpc_window(hub_pid: int, hub_user: str, running: int, minutes: float, log=print) -> dict:
    """A quiet window (no logins, no spawns): this hub's RPCs a minute with ``running`` servers."""
    meter = slurmq.RpcMeter()
    cpu0, t0 = cpu_times(hub_pid), time.monotonic()
    time.sleep(minutes * 60)
    meter.stop()
    cpu1 = cpu_times(hub_pid)
    elapsed = time.monotonic() - t0
    out = {
        "servers": running,
        "seconds": elapsed,
        "rpc_per_min": meter.users_total([hub_user]) * 60 / elapsed,
        "hub_cpu_s_per_min": (cpu1.own - cpu0.own + cpu1.children - cpu0.children) * 60 / elapsed,
        "sdiag_resets_by_others": meter.resets,
        "disturbed": False,
    }
    log(
        f"  quiet window with {running} servers: {out['rpc_per_min']:.1f} RPC/min from the hub, "
        f"hub CPU {out['hub_cpu_s_per_min']:.2f} s/min"
    )
    return out


@dataclass(frozen=True)
class Rig:
    """The hub under test: a client factory, its public URL, its and the proxy's processes,
    and the user it runs as (whose RPCs sdiag counts)."""

    make_hub: object
    base: str
    hub_pid: int
    proxy_pid: int
    hub_user: str


def churn(
    rig: Rig,
    passwords: dict[str, str],
    running: set[str],
    options: dict,
    logins_per_min: float,
    spawns_per_min: float,
    minutes: float,
    probe_interval: float = 0.25,
    log=print,
) -> dict:
    """Logins, spawns (each with the stop of another server) and API probes at fixed rates."""
    make_hub, base, hub_pid, hub_user = rig.make_hub, rig.base, rig.hub_pid, rig.hub_user
    users = list(passwords)
    idle = [u for u in users if u not in running]
    lock = threading.Lock()
    logins: list[dict] = []
    spawns: list[dict] = []
    api: list[float] = []
    api_errors: list[str] = []
    stop = threading.Event()
    rng = random.Random(17)  # noqa: S311 - a benchmark's choice of users, not a secret

    def do_login():
        u = rng.choice(users)
        took, err = login(base, u, passwords[u])
        with lock:
            logins.append({"user": u, "seconds": took, "error": err})

    def do_spawn():
        with lock:
            if not idle or not running:
                return
            start_user = idle.pop(rng.randrange(len(idle)))
            stop_user = rng.choice(sorted(running))
            running.discard(stop_user)
        h = make_hub()
        try:
            h.stop(stop_user)
        except (HubError, requests.RequestException) as err:
            log(f"  stop of {stop_user} failed: {err}")
        t = h.timed_spawn(start_user, options, timeout=SPAWN_TIMEOUT_S)
        with lock:
            spawns.append(asdict(t))
            if t.error is None:
                running.add(start_user)
            else:
                log(f"  spawn of {start_user} FAILED: {t.error}")
        with contextlib.suppress(HubError, requests.RequestException):
            h.wait_stopped(stop_user, timeout=120)
        with lock:
            idle.append(stop_user)

    def probe_loop(until: float):
        h = make_hub()
        while not stop.is_set() and time.monotonic() < until:
            u = rng.choice(users)
            t0 = time.perf_counter()
            try:
                r = h.api("GET", f"/users/{u}", timeout=60)
                ok = r.status_code == 200
            except requests.RequestException as err:
                ok, r = False, err
            took = time.perf_counter() - t0
            with lock:
                api.append(took)
                if not ok:
                    api_errors.append(str(getattr(r, "status_code", r)))
            stop.wait(max(0.0, probe_interval - took))

    sampler = Sampler(hub_pid, rig.proxy_pid)
    sampler.start()
    meter = slurmq.RpcMeter()
    cpu0 = cpu_times(hub_pid)
    t0 = time.monotonic()
    until = t0 + minutes * 60
    log(
        f"  churn for {minutes:g} min: {logins_per_min:g} logins/min, {spawns_per_min:g} "
        f"spawns/min, API probe every {probe_interval:g} s, {len(running)} servers running"
    )
    with (
        ThreadPoolExecutor(max_workers=30) as login_pool,
        ThreadPoolExecutor(max_workers=40) as spawn_pool,
    ):
        threads = [
            threading.Thread(
                target=_every,
                args=(logins_per_min, until, stop, lambda: login_pool.submit(do_login)),
                daemon=True,
            ),
            threading.Thread(
                target=_every,
                args=(spawns_per_min, until, stop, lambda: spawn_pool.submit(do_spawn)),
                daemon=True,
            ),
            threading.Thread(target=probe_loop, args=(until,), daemon=True),
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed_load = time.monotonic() - t0
        meter.stop()
        cpu1 = cpu_times(hub_pid)
    # The pools have finished every spawn and login they were given; CPU and RPCs were
    # measured over the window itself (elapsed_load), the latencies over everything.
    drain = time.monotonic() - t0 - elapsed_load
    sampler.stop.set()
    sampler.join()
    login_ok = [x["seconds"] for x in logins if not x["error"]]
    spawn_ok = [x["proxy_ok"] for x in spawns if x.get("proxy_ok") is not None]
    mine = meter.users_total([hub_user, *users])
    result = {
        "users": len(users),
        "servers_target": len(running) + sum(1 for x in spawns if x.get("error")),
        "servers_at_end": len(running),
        "minutes": elapsed_load / 60,
        "logins": len(logins),
        "login_failures": sum(1 for x in logins if x["error"]),
        "login_errors": sorted({x["error"] for x in logins if x["error"]})[:5],
        "login_s": summary(login_ok),
        "spawns": len(spawns),
        "spawn_failures": sum(1 for x in spawns if x.get("error")),
        "spawn_errors": sorted({x["error"] for x in spawns if x.get("error")})[:5],
        "spawn_s": summary(spawn_ok),
        "api_requests": len(api),
        "api_failures": len(api_errors),
        "api_s": summary(api),
        "hub_cpu_s": cpu1.own - cpu0.own,
        "hub_children_cpu_s": cpu1.children - cpu0.children,
        "hub_cpu_pct": (cpu1.own - cpu0.own) / elapsed_load * 100,
        "drain_minutes": drain / 60,
        "hub_rss_peak_mib": sampler.peak["hub"] / 1024,
        "proxy_rss_peak_mib": sampler.peak["proxy"] / 1024,
        "rpc_this_hub_per_min": mine * 60 / elapsed_load,
        "rpc_hub_only_per_min": meter.users_total([hub_user]) * 60 / elapsed_load,
        "rpc_all_per_min": meter.total * 60 / elapsed_load,
        "rpc_by_type_all_users": meter.by_type,
        "sdiag_resets_by_others": meter.resets,
        "disturbed": False,
    }
    log(
        f"  {result['logins']} logins ({result['login_failures']} failed, p95 "
        f"{result['login_s']['p95']:.2f} s), {result['spawns']} spawns "
        f"({result['spawn_failures']} failed, p95 {result['spawn_s']['p95']:.2f} s), API p50/p95 "
        f"{result['api_s']['p50'] * 1000:.0f}/{result['api_s']['p95'] * 1000:.0f} ms, hub CPU "
        f"{result['hub_cpu_pct']:.0f}%, hub RSS {result['hub_rss_peak_mib']:.0f} MiB, proxy RSS "
        f"{result['proxy_rss_peak_mib']:.0f} MiB, {result['rpc_this_hub_per_min']:.1f} RPC/min"
    )
    return result


def load_run(
    rig: Rig,
    passwords: dict[str, str],
    servers: int,
    logins_per_min: float,
    spawns_per_min: float,
    minutes: float,
    quiet_minutes: float,
    log=print,
) -> dict:
    """Bring ``servers`` up (a quiet window at a fifth of them and at all), then churn."""
    make_hub, hub_pid, hub_user = rig.make_hub, rig.hub_pid, rig.hub_user
    users = list(passwords)
    options = {"profile": PROFILE}
    out: dict = {"quiet": []}
    running: set[str] = set()
    try:
        first = max(1, servers // 5)
        for target in (first, servers):
            batch = [u for u in users[:target] if u not in running]
            log(f"  starting servers {len(running) + 1}..{target}")
            t0 = time.monotonic()
            start_servers(make_hub, batch, options, workers=20, log=log)
            running.update(batch)
            out.setdefault("ramp_s", []).append(time.monotonic() - t0)
            time.sleep(SETTLE_S)  # past the monitor's fast polls after each start
            out["quiet"].append(rpc_window(hub_pid, hub_user, len(running), quiet_minutes, log))
        out["churn"] = churn(
            rig,
            passwords,
            running,
            options,
            logins_per_min,
            spawns_per_min,
            minutes,
            log=log,
        )
    finally:
        log(f"  stopping {len(running)} servers")
        stop_servers(make_hub, users, workers=20)
    return out


def proxy_pid(run_dir: Path) -> int:
    """The configurable-http-proxy process (a child of the runuser that started it)."""
    from hpchub_testbed import procs

    from .procstat import children_of

    outer = procs.read_pid(run_dir / "proxy.pid")
    if outer is None:
        raise RuntimeError("the proxy is not running")
    kids = children_of(outer)
    return kids[0] if kids else outer


def cleanup_hub_users(make_hub, names: list[str]) -> None:
    """Delete the scale run's users from the hub (ten requests at a time)."""

    def one(part: list[str]) -> None:
        hub = make_hub()
        for n in part:
            with contextlib.suppress(HubError, requests.RequestException):
                hub.delete_user(n)

    with ThreadPoolExecutor(max_workers=10) as ex:
        list(ex.map(one, [names[i::10] for i in range(10)]))
