"""Issue 16 item 1: apps in the job (VS Code, the Xfce desktop) behind jupyter-server-proxy.

One server of alice's, opened in VS Code, serves every check: the server opens in the chosen
app, VS Code answers through Apache, the desktop's VNC speaks RFB through the proxy's
websocket, and then bob, on the same node, tries to reach alice's apps and fails: their
sockets lie in folders only alice can enter, no app of hers listens on a TCP port, and her X
display refuses a client without her cookie.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest
import websocket

from hpchub.core.ports import holding_processes, listeners, read_tables

from . import hubclient
from .conftest import squeue_ids
from .test_port_squatting import _job_procs

OPTIONS = {"profile": "custom", "partition": "jupyter-short", "memory": "2G", "app": "vscode"}

# Runs as bob with the system Python: connect to a Unix socket, print what happened.
CONNECT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as err:
    print(type(err).__name__)
else:
    print("CONNECTED")
"""

# Runs as bob: an X11 connection setup without any cookie; X answers 0 (Failed) with a reason.
X_HELLO = r"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as err:
    print(type(err).__name__); sys.exit()
s.sendall(struct.pack("<cxHHHHxx", b"l", 11, 0, 0, 0))
reply = s.recv(4096)
print("ACCEPTED" if reply[:1] == b"\x01" else reply[8:8 + reply[1]].decode())
"""


def _as(user: str, code: str, *args: str) -> str:
    r = subprocess.run(
        ["runuser", "-u", user, "--", "/usr/bin/python3", "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def served(testbed):
    """alice's server, opened in VS Code, with both apps started through the proxy."""
    u = testbed["users"][0]
    c = hubclient.HubClient(testbed["hub_url"])
    assert c.login(u["name"], u["password"]).status_code == 302
    c.make_token()
    for name in list(c.model().get("servers", {})):
        c.stop(name)
        c.wait_stopped(name)
    r = c.start(options=OPTIONS)
    assert r.status_code in (201, 202), r.text
    c.wait_ready()
    yield c
    c.stop()
    c.wait_stopped()


def test_server_opens_in_the_chosen_app_and_vscode_answers(served):
    r = served.s.get(served.server_url(), headers=served._auth(), allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"].rstrip("?").endswith(f"/user/{served.user}/vscode/")
    # The first request starts code-server on its socket (jupyter-server-proxy waits for it).
    r = served.s.get(served.server_url() + "vscode/", headers=served._auth(), timeout=180)
    assert r.status_code == 200, r.text[:500]
    assert "workbench" in r.text
    # Without alice's token, nobody gets through (the proxy checks her Jupyter login).
    anon = hubclient.HubClient(served.base)
    r = anon.s.get(served.server_url() + "vscode/", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 403)
    assert "workbench" not in r.text


def test_desktop_vnc_speaks_through_the_proxy(served):
    r = served.s.get(served.server_url() + "desktop/", headers=served._auth(), timeout=60)
    assert r.status_code == 200 and "viewer.js" in r.text
    ws_url = served.server_url().replace("http", "ws", 1) + "desktop-websockify/"
    ws = websocket.create_connection(
        ws_url,
        header=[f"Authorization: token {served.token}"],
        subprotocols=["binary"],
        timeout=120,
        sslopt={"ca_certs": hubclient.CA_FILE},
    )
    try:
        assert ws.recv().startswith(b"RFB 003.")  # TigerVNC's greeting, from its Unix socket
    finally:
        ws.close()


def _alice_app_sockets(job: str) -> dict[str, str]:
    """The Unix socket of each app in alice's job, from the apps' command lines."""
    found = {}
    for _pid, (_ppid, cmd) in _job_procs(job).items():
        m = re.search(r"--socket=(\S+)", cmd)
        if m and "code-server" in cmd:
            found["vscode"] = m.group(1)
        m = re.search(r"-rfbunixpath (\S+)", cmd)
        if m and "Xtigervnc" in cmd:
            found["desktop"] = m.group(1)
    return found


def test_another_user_on_the_node_cannot_reach_the_apps(served):
    jobs = squeue_ids(served.user)
    assert len(jobs) == 1, jobs
    job = jobs[0]
    # Both apps are running (the tests above started them); fetch their sockets.
    sockets = _alice_app_sockets(job)
    assert set(sockets) == {"vscode", "desktop"}, _job_procs(job)
    alice = pwd.getpwnam(served.user)
    for app, path in sockets.items():
        folder = Path(path).parent
        st = os.lstat(folder)
        assert (st.st_uid, st.st_mode & 0o777) == (alice.pw_uid, 0o700), (app, folder)
        assert folder.name.startswith("jupyter-server-proxy-"), folder  # mkdtemp's: a new name
        assert _as("bob", CONNECT, path) == "PermissionError", app
        assert _as(served.user, CONNECT, path) == "CONNECTED", app  # alice's own server can
    # No process of the job listens on TCP except the Jupyter server itself (one port).
    mine = listeners(read_tables())
    inodes = {lst.inode: lst.port for lst in mine if lst.uid == alice.pw_uid}
    pids = set(_job_procs(job))
    held = holding_processes(set(inodes))
    ports = {inodes[i] for i, holders in held.items() if pids & set(holders)}
    assert len(ports) == 1, ports
    # The desktop's X display: bob reaches its socket but X refuses him (no cookie of alice's).
    display = next(
        re.search(r"Xtigervnc :(\d+)", cmd).group(1)
        for _p, (_pp, cmd) in _job_procs(job).items()
        if re.search(r"Xtigervnc :(\d+)", cmd)
    )
    refusal = _as("bob", X_HELLO, f"/tmp/.X11-unix/X{display}")
    assert refusal.startswith("Authorization required"), refusal


def test_an_app_the_site_does_not_offer_is_refused_by_the_api(alice):
    r = alice.start(options={"profile": "small-long", "app": "rstudio"})
    assert r.status_code == 400, r.text
    assert "app: 'rstudio' is not offered on this hub; choose jupyterlab (JupyterLab)" in r.text
    assert alice.server() is None  # nothing was submitted
