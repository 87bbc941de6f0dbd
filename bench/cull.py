"""One idle-culling pass over thousands of users, and the hub's API latency while it runs.

The users exist only in the hub and their servers are one loopback stand-in (see the
``loopback`` phase of config_d.py.j2): a pass costs the hub the same listing, arbiter and
DELETE handling as with real servers, and nothing else on the machine competes.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from jupyterhub_idle_culler import cull_idle

from hpchub.config.models import SiteConfig
from hpchub.culling.arbiter import arbiter_for
from hpchub.culling.policy import IdlePolicy

from .stats import summary

CULL_USER = "cullbench"


def cull_users(n: int) -> list[str]:
    return [f"{CULL_USER}{i:04d}" for i in range(1, n + 1)]


def start_loopback(port: int, python: str, standin: Path) -> subprocess.Popen:
    """The one stand-in every loopback server points at (as nobody, on the loopback)."""
    return subprocess.Popen(
        ["runuser", "-u", "nobody", "--", python, str(standin), f"--port={port}", "--any-prefix"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class LatencyProbe(threading.Thread):
    """GET /hub/api/user every ``interval`` s through the proxy; latencies tagged by phase."""

    def __init__(self, base_url: str, token: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.url = base_url.rstrip("/") + "/hub/api/user"
        self.token = token
        self.interval = interval
        self.phase = "idle"
        self.samples: dict[str, list[float]] = {}
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"token {self.token}"
        while not self._halt.is_set():
            phase = self.phase
            t0 = time.perf_counter()
            try:
                ok = s.get(self.url, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            took = time.perf_counter() - t0
            if ok and phase == self.phase:
                self.samples.setdefault(phase, []).append(took)
            elif not ok:
                self.errors += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=60)


def run_pass(
    make_hub,
    internal_api: str,
    base_url: str,
    token: str,
    culler_token: str,
    site: SiteConfig,
    n_users: int,
    keep_profile: str,
    cull_profile: str,
    cull_every: int,
    idle_s: float,
    log=print,
) -> dict:
    """Create users with servers, wait until some are idle past their timeout, time one pass."""
    users = cull_users(n_users)
    hub = make_hub()
    t0 = time.monotonic()
    hub.create_users(users)
    doomed = {u for i, u in enumerate(users) if i % cull_every == 0}

    def start(u: str) -> None:
        make_hub().start(u, {"profile": cull_profile if u in doomed else keep_profile})

    with ThreadPoolExecutor(max_workers=10) as ex:
        list(ex.map(start, users))
    ready = len(hub.list_users(state="ready"))
    setup_s = time.monotonic() - t0
    log(f"  {n_users} users, {ready} ready servers, set up in {setup_s:.0f} s")
    time.sleep(idle_s + 2)  # the doomed ones are now idle past their profile's timeout

    probe = LatencyProbe(base_url, token)
    probe.start()
    time.sleep(15)
    logger = logging.getLogger("bench.culler")
    logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.setLevel(logging.WARNING)
    probe.phase = "pass"
    policy = IdlePolicy.from_site(site)
    p0 = time.perf_counter()
    asyncio.run(
        cull_idle(
            url=internal_api,
            api_token=culler_token,
            inactive_limit=policy.shortest,
            logger=logger,
            concurrency=site.culling.concurrency,
            api_page_size=site.culling.page_size,
            cull_arbiter=arbiter_for(policy),
        )
    )
    pass_s = time.perf_counter() - p0
    probe.phase = "after"
    time.sleep(1)
    probe.stop()
    remaining = {u["name"] for u in hub.list_users(state="ready")}
    culled = len(set(users) - remaining)
    wrong = len(doomed & remaining) + len((set(users) - doomed) - remaining)
    idle, during = summary(probe.samples.get("idle", [])), summary(probe.samples.get("pass", []))
    log(
        f"  pass over {n_users} users: {pass_s:.1f} s, culled {culled} (expected {len(doomed)}); "
        f"/hub/api/user p50 {idle['p50'] * 1000:.0f} ms idle, {during['p50'] * 1000:.0f} ms during"
    )
    return {
        "users": n_users,
        "servers": ready,
        "expected_culls": len(doomed),
        "culled": culled,
        "wrong_decisions": wrong,
        "page_size": site.culling.page_size,
        "concurrency": site.culling.concurrency,
        "setup_s": setup_s,
        "pass_s": pass_s,
        "latency_idle": idle,
        "latency_pass": during,
        "probe_errors": probe.errors,
    }


def cleanup(make_hub, n_users: int, log=print) -> None:
    """Stop the loopback servers and delete the culling benchmark's hub users."""
    users = cull_users(n_users)
    hub = make_hub()

    def gone(u: str) -> None:
        h = make_hub()
        h.stop(u)
        for _ in range(60):
            if h.api("DELETE", f"/users/{u}").status_code in (204, 404):
                return
            time.sleep(0.5)

    with ThreadPoolExecutor(max_workers=10) as ex:
        list(ex.map(gone, users))
    left = [u["name"] for u in hub.list_users() if u["name"].startswith(CULL_USER)]
    log(f"  removed the culling benchmark's users ({len(left)} left)")
