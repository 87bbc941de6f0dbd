"""A small client for the testbed hub: real login, real spawn, real kernel over websocket."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
import websocket

CA_FILE: str | None = None
"""The testbed's certificate (its front door is HTTPS): set by the ``testbed`` fixture."""


class HubClient:
    """One user's browser-like session against the hub (cookies, XSRF), plus an API token."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.s = requests.Session()
        self.s.trust_env = False  # this machine sets REQUESTS_CA_BUNDLE
        if CA_FILE:
            self.s.verify = CA_FILE
        self.user: str | None = None
        self.token: str | None = None

    def _xsrf(self) -> str:
        return self.s.cookies.get("_xsrf", path="/hub/") or ""

    def login(self, user: str, password: str) -> requests.Response:
        self.s.get(self.base + "/hub/login")
        r = self.s.post(
            self.base + "/hub/login",
            data={"username": user, "password": password, "_xsrf": self._xsrf()},
            allow_redirects=False,
        )
        if r.status_code == 302:
            self.user = user
        return r

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if self.token:
            headers.setdefault("Authorization", f"token {self.token}")
        else:
            headers.setdefault("X-XSRFToken", self._xsrf())
        return self.s.request(
            method, self.base + "/hub/api" + path, headers=headers, timeout=120, **kw
        )

    def make_token(self) -> str:
        r = self.api(
            "POST", f"/users/{self.user}/tokens", json={"note": "tests", "expires_in": 3600}
        )
        r.raise_for_status()
        self.token = r.json()["token"]
        return self.token

    def server_url(self, name: str = "") -> str:
        return f"{self.base}/user/{self.user}/" + (f"{name}/" if name else "")

    def start(self, name: str = "", options: dict | None = None) -> requests.Response:
        path = f"/users/{self.user}/servers/{name}" if name else f"/users/{self.user}/server"
        return self.api("POST", path, json=options or {})

    def stop(self, name: str = "") -> requests.Response:
        path = f"/users/{self.user}/servers/{name}" if name else f"/users/{self.user}/server"
        return self.api("DELETE", path)

    def remove(self, name: str) -> requests.Response:
        """Stop and delete a named server (stopped named servers count against the limit)."""
        return self.api("DELETE", f"/users/{self.user}/servers/{name}", json={"remove": True})

    def all_server_names(self) -> list[str]:
        r = self.api("GET", f"/users/{self.user}?include_stopped_servers=1")
        r.raise_for_status()
        return list(r.json().get("servers", {}))

    def model(self) -> dict:
        r = self.api("GET", f"/users/{self.user}")
        r.raise_for_status()
        return r.json()

    def server(self, name: str = "") -> dict | None:
        return self.model().get("servers", {}).get(name)

    def wait_ready(self, name: str = "", timeout: float = 180) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            sv = self.server(name)
            if sv and sv.get("ready"):
                r = self.s.get(
                    self.server_url(name) + "api/status", headers=self._auth(), timeout=10
                )
                if r.status_code == 200:
                    return sv
            if sv is None:
                raise AssertionError(f"server {name!r} of {self.user} is gone while waiting")
            time.sleep(0.5)
        raise TimeoutError(f"server {name!r} of {self.user} not ready in {timeout} s")

    def wait_stopped(self, name: str = "", timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.server(name) is None:
                return
            time.sleep(0.5)
        raise TimeoutError("server did not stop")

    def progress_events(self, name: str = "", timeout: float = 120, until=None) -> list[dict]:
        """Read the spawn progress event stream until ``until(event)`` is true, or it ends."""
        path = (
            f"/users/{self.user}/servers/{name}/progress"
            if name
            else f"/users/{self.user}/server/progress"
        )
        events: list[dict] = []
        with self.s.get(
            self.base + "/hub/api" + path, headers=self._auth(), stream=True, timeout=timeout
        ) as r:
            for raw in r.iter_lines(decode_unicode=True):
                if not raw or not raw.startswith("data:"):
                    continue
                ev = json.loads(raw[5:])
                events.append(ev)
                if ev.get("ready") or ev.get("failed") or (until and until(ev)):
                    break
        return events

    def home(self) -> str:
        return self.s.get(self.base + "/hub/home").text

    def _auth(self) -> dict:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def run_code(self, code: str, name: str = "", timeout: float = 60) -> str:
        """Start a kernel in the user's server, run ``code`` over the websocket, return stdout."""
        base = self.server_url(name)
        r = self.s.post(base + "api/kernels", headers=self._auth(), json={}, timeout=60)
        r.raise_for_status()
        kid = r.json()["id"]
        try:
            return run_in_kernel(base, kid, self.token or "", code, timeout)
        finally:
            self.s.delete(base + f"api/kernels/{kid}", headers=self._auth(), timeout=30)


@dataclass
class KernelResult:
    stdout: str
    error: str | None


def run_in_kernel(server_url: str, kernel_id: str, token: str, code: str, timeout: float) -> str:
    ws_url = server_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(
        ws_url,
        header=[f"Authorization: token {token}"],
        timeout=timeout,
        sslopt={"ca_certs": CA_FILE} if CA_FILE else None,
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "t",
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                    "channel": "shell",
                }
            )
        )
        out: list[str] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise AssertionError("kernel error: " + "\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
        raise TimeoutError("kernel did not finish")
    finally:
        ws.close()


def home_api_path(site_file: str, user: str) -> str:
    """The user's home as their server's contents API names it (relative to files.root)."""
    import pwd

    from hpchub.config.loader import load_site

    files = load_site(site_file).files
    return files.api_path(Path(pwd.getpwnam(user).pw_dir)) if files.root else ""


def lab_page_config(c: HubClient, name: str = "") -> dict:
    """JupyterLab's page config (jupyter-config-data) from the user's server's /lab page."""
    import re

    html = c.s.get(c.server_url(name) + "lab", headers=c._auth(), timeout=30).text
    m = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert m, html[:500]
    return json.loads(m.group(1))
