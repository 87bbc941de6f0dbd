"""The hub's REST API as the benchmark uses it: users, servers, readiness through the proxy."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import requests


class HubError(RuntimeError):
    """The hub answered something the benchmark cannot go on with."""


@dataclass
class SpawnTiming:
    """One spawn: seconds from the request to each milestone (None if never reached)."""

    user: str
    requested_status: int
    hub_ready: float | None = None
    proxy_ok: float | None = None
    error: str | None = None


class Hub:
    """A token-authenticated client of one hub, through its public (proxy) URL."""

    def __init__(self, base_url: str, token: str, timeout: float = 120):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.s = requests.Session()
        self.s.trust_env = False  # this machine sets REQUESTS_CA_BUNDLE and maybe proxies
        self.s.headers["Authorization"] = f"token {token}"

    def api(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        return self.s.request(method, f"{self.base}/hub/api{path}", **kw)

    def _ok(self, r: requests.Response, *codes: int) -> requests.Response:
        if r.status_code not in codes:
            raise HubError(f"{r.request.method} {r.url}: {r.status_code} {r.text[:300]}")
        return r

    # -- users ----------------------------------------------------------------------
    def create_users(self, names: list[str], chunk: int = 200) -> None:
        """Create the hub users in ``names`` that do not exist yet (batched)."""
        for i in range(0, len(names), chunk):
            part = names[i : i + chunk]
            r = self.api("POST", "/users", json={"usernames": part})
            # 409: all of them exist already; 201: created (existing ones are skipped).
            self._ok(r, 201, 409)

    def delete_user(self, name: str) -> None:
        self._ok(self.api("DELETE", f"/users/{name}"), 204, 404)

    def user(self, name: str) -> dict:
        return self._ok(self.api("GET", f"/users/{name}"), 200).json()

    def list_users(self, state: str = "", limit: int = 200) -> list[dict]:
        """Every user (paginated), optionally only those with servers in ``state``."""
        out: list[dict] = []
        offset = 0
        while True:
            params = {"offset": offset, "limit": limit, **({"state": state} if state else {})}
            r = self._ok(
                self.api(
                    "GET",
                    "/users",
                    params=params,
                    headers={"Accept": "application/jupyterhub-pagination+json"},
                ),
                200,
            )
            body = r.json()
            out.extend(body["items"])
            nxt = body["_pagination"]["next"]
            if not nxt:
                return out
            offset = nxt["offset"]

    # -- servers --------------------------------------------------------------------
    def start(self, user: str, options: dict | None = None) -> int:
        r = self.api("POST", f"/users/{user}/server", json=options or {})
        self._ok(r, 201, 202)
        return r.status_code

    def stop(self, user: str) -> None:
        r = self.api("DELETE", f"/users/{user}/server")
        self._ok(r, 202, 204, 400, 404)  # 400: not running

    def server(self, user: str) -> dict | None:
        return self.user(user).get("servers", {}).get("")

    def wait_stopped(self, user: str, timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.server(user) is None:
                return
            time.sleep(0.5)
        raise HubError(f"the server of {user} did not stop within {timeout:g} s")

    def wait_ready_event(self, user: str, timeout: float = 600) -> None:
        """Follow the spawn's progress stream until it says ready (raise if it failed)."""
        with self.s.get(
            f"{self.base}/hub/api/users/{user}/server/progress", stream=True, timeout=timeout
        ) as r:
            self._ok(r, 200)
            end = time.monotonic() + timeout
            for raw in r.iter_lines(decode_unicode=True):
                # The hub sends keep-alives every few seconds: a read never times out by itself.
                if time.monotonic() > end:
                    raise HubError(f"no ready event for {user} within {timeout:g} s")
                if not raw or not raw.startswith("data:"):
                    continue
                ev = json.loads(raw[5:])
                if ev.get("ready"):
                    return
                if ev.get("failed"):
                    raise HubError(f"spawn of {user} failed: {ev.get('message')}")
        server = self.server(user)
        if not (server and server.get("ready")):
            raise HubError(f"progress stream of {user} ended before the server was ready")

    def status_through_proxy(self, user: str) -> int:
        """HTTP status of GET /user/USER/api/status through the proxy (0 on a network error)."""
        try:
            r = self.s.get(f"{self.base}/user/{user}/api/status", timeout=10, allow_redirects=False)
        except requests.RequestException:
            return 0
        return r.status_code

    def timed_spawn(self, user: str, options: dict | None, timeout: float = 600) -> SpawnTiming:
        """Start ``user``'s server and time it until /api/status answers 200 through the proxy."""
        t0 = time.perf_counter()
        try:
            code = self.start(user, options)
        except (HubError, requests.RequestException) as err:
            return SpawnTiming(user, 0, error=str(err))
        timing = SpawnTiming(user, code)
        try:
            if code == 202:
                self.wait_ready_event(user, timeout)
            timing.hub_ready = time.perf_counter() - t0
            end = time.monotonic() + 60
            while time.monotonic() < end:
                if self.status_through_proxy(user) == 200:
                    timing.proxy_ok = time.perf_counter() - t0
                    break
                time.sleep(0.02)
            else:
                timing.error = "the server never answered 200 through the proxy"
        except (HubError, requests.RequestException) as err:
            timing.error = str(err)
        return timing
