"""Apache virtual hosts made from the test bed's site file for the gate's tests: the gate required
of everyone (PAM behind the gate), and Apache alone (remote_user) in front of a recording
backend. conftest.py registers the fixtures, so every module that tests the gate shares them."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hpchub.config.loader import load_site, parse_site
from hpchub.deploy.install import Installer
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.render import SystemFile, apache_vhost
from hpchub.deploy.secrets import ensure_secrets


def _https_port(testbed) -> int:
    return int(testbed["https_url"].rsplit(":", 1)[1])


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait(check, what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(what)


def _graceful() -> None:
    subprocess.run(["apachectl", "graceful"], check=True, capture_output=True)


def install_vhost(paths: DeployPaths) -> Path:
    """Install just the virtual host of ``paths`` with hpchub's installer (checked, atomic)."""
    web = paths.deploy.web
    vhost = SystemFile(web.vhost_file, apache_vhost(paths), "test vhost", check="apache")
    inst = Installer(paths, log=lambda m: None)
    inst.install_files(inst.plan([vhost]))
    _graceful()
    _wait(lambda: _answers(web.https_port), f"Apache on {web.https_port}")
    return web.vhost_file


def remove_vhost(paths: DeployPaths) -> None:
    web = paths.deploy.web
    for p in (web.vhost_link, web.vhost_file):
        if p is not None:
            p.unlink(missing_ok=True)
    _graceful()


def _variant(testbed, suffix: str, port: int, **changes) -> dict:
    data = load_site(testbed["site_file"]).model_dump(mode="json")
    web = data["deploy"]["web"]
    web.update(
        https_port=port,
        http_port=None,
        vhost_file=f"/etc/apache2/sites-available/hpchub-test-{suffix}.conf",
        vhost_link=f"/etc/apache2/sites-enabled/hpchub-test-{suffix}.conf",
    )
    web["gate"]["exempt_networks"] = []
    for key, value in changes.items():
        section, name = key.split("__")
        data[section][name] = value
    return data


@pytest.fixture(scope="module")
def gated(testbed):
    """The test bed's site behind a gate that exempts nobody: its https:// base URL."""
    port = _https_port(testbed) + 1
    paths = DeployPaths(parse_site(_variant(testbed, "gate", port)), Path(testbed["site_file"]))
    install_vhost(paths)
    yield f"https://localhost:{port}"
    remove_vhost(paths)


class Recorder(http.server.BaseHTTPRequestHandler):
    """The backend behind the remote_user host: records what Apache forwards."""

    seen: list[tuple[str, dict]] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        self.seen.append((self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        return


@pytest.fixture(scope="module")
def remote_user(testbed, tmp_path_factory):
    """Apache alone (remote_user) in front of a Recorder: (its https:// base URL, its paths)."""
    tmp = tmp_path_factory.mktemp("remote-user")
    backend_port = _https_port(testbed) + 2
    port = _https_port(testbed) + 3
    server = http.server.ThreadingHTTPServer(("127.0.0.1", backend_port), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = _variant(
        testbed,
        "remote-user",
        port,
        hub__authenticator="remote_user",
        hub__public_url=f"http://127.0.0.1:{backend_port}/",
        hub__data_dir=str(tmp / "state"),
    )
    data["deploy"]["etc_dir"] = str(tmp / "etc")
    paths = DeployPaths(parse_site(data), Path(testbed["site_file"]))
    ensure_secrets(paths, chown=False)
    install_vhost(paths)
    yield f"https://localhost:{port}", paths
    remove_vhost(paths)
    server.shutdown()
    server.server_close()
