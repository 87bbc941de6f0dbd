"""Issue 12 item 4: a freed port must never receive a user's requests.

bob runs a squatter on the node that binds alice's server port (IPv4 and IPv6) the moment it is
free and records every request it receives. alice's server then ends in each way a server can
end while a client keeps sending her requests, with her token, through the proxy.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from hpchub_testbed.cluster import BATCH_ADDR, NETNS

from .conftest import squeue_ids
from .test_spawn_e2e import _routes

# Runs as bob with the system Python: bind the port on 0.0.0.0 and on :: (IPv6 only, so the
# two do not conflict with each other), answer whatever arrives and print it.
SQUATTER = r"""
import select, socket, sys, time
port = int(sys.argv[1])
held = []
def try_bind(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        s.bind((addr, port)); s.listen(64)
    except OSError:
        s.close(); return False
    held.append(s)
    print(f"BOUND {addr} {time.time():.3f}", flush=True)
    return True
want = {(socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")}
print("READY", flush=True)
while True:
    for fam, addr in list(want):
        if try_bind(fam, addr):
            want.discard((fam, addr))
    if not held:
        time.sleep(0.002)
        continue
    r, _, _ = select.select(held, [], [], 0.002)
    for s in r:
        c, _ = s.accept()
        c.settimeout(1)
        try:
            data = c.recv(65536)
        except OSError:
            data = b""
        auth = b"authorization:" in data.lower()
        line = data.split(b"\r\n", 1)[0].decode(errors="replace")
        print(f"REQ {time.time():.3f} auth={auth} {line}", flush=True)
        try:
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nsquatted")
        except OSError:
            pass
        c.close()
"""


def _job_procs(job: str) -> dict[int, tuple[int, str]]:
    """pid -> (ppid, cmdline) of the processes of Slurm job ``job`` on this node."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            if f"SLURM_JOB_ID={job}".encode() not in env:
                continue
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry)] = (ppid, cmd)
    return found


def _jupyter_pid(job: str) -> int:
    procs = _job_procs(job)
    launchers = [p for p, (_pp, cmd) in procs.items() if "--port-range" in cmd]
    assert launchers, procs
    children = [p for p, (pp, _cmd) in procs.items() if pp == launchers[0]]
    assert children, procs
    return children[0]


def _shutdown(alice, job):
    r = alice.s.post(alice.server_url() + "api/shutdown", headers=alice._auth(), timeout=10)
    assert r.status_code in (200, 202, 204), r.text


def _scancel(alice, job):
    subprocess.run(["scancel", job], check=True)


def _kill(sig):
    def trigger(alice, job):
        os.kill(_jupyter_pid(job), sig)

    return trigger


# Run as root inside the job's memory cgroup, shielded from the OOM killer: take what is left of
# the job's memory and a little more, so the kernel's OOM killer must kill the server (made its
# first choice), then leave once it is gone.
HOG = r"""
import os, sys, time
open("/proc/self/oom_score_adj", "w").write("-1000")
victim, size = int(sys.argv[1]), int(sys.argv[2])
sys.stdin.readline()
hog = b"x" * size
end = time.monotonic() + 30
while os.path.exists(f"/proc/{victim}") and time.monotonic() < end:
    time.sleep(0.05)
"""


def _oom(alice, job):
    """A real OOM kill of the server process by the kernel, in the job's memory limit."""
    pid = _jupyter_pid(job)
    memcg = next(
        ln.split(":", 2)[2]
        for ln in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        if ln.split(":")[1] == "memory"
    )
    base = Path("/sys/fs/cgroup/memory") / memcg.lstrip("/")
    limited = base  # Slurm limits the step (and the job); the task folder below has no limit
    while int((limited / "memory.limit_in_bytes").read_text()) > 2**50:
        limited = limited.parent
    limit = int((limited / "memory.limit_in_bytes").read_text())
    usage = int((limited / "memory.usage_in_bytes").read_text())
    kills = _oom_kills()
    Path(f"/proc/{pid}/oom_score_adj").write_text("1000")
    hog = subprocess.Popen(
        ["/usr/bin/python3", "-c", HOG, str(pid), str(limit - usage + 30 * 2**20)],
        stdin=subprocess.PIPE,
        text=True,
    )
    (base / "cgroup.procs").write_text(str(hog.pid))
    hog.stdin.write("go\n")
    hog.stdin.close()
    hog.wait(60)
    assert not Path(f"/proc/{pid}").exists(), "the OOM killer did not kill the server"
    assert _oom_kills() > kills


def _oom_kills() -> int:
    return next(
        int(ln.split()[1])
        for ln in Path("/proc/vmstat").read_text().splitlines()
        if ln.startswith("oom_kill ")
    )


def _proxy_removed(testbed, after: float) -> float | None:
    """When the proxy logged the removal of alice's route (more exact than polling its API)."""
    found = None
    for line in (Path(testbed["logs"]) / "proxy.log").read_text(errors="replace").splitlines():
        if "Removing route /user/alice" not in line:
            continue
        stamp = dt.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        t = stamp.replace(tzinfo=dt.UTC).timestamp()
        if t >= after:
            found = t if found is None else min(found, t)
    return found


TRIGGERS = {
    "shutdown": _shutdown,
    "scancel": _scancel,
    "oom": _oom,
    "sigkill": _kill(signal.SIGKILL),
    "sigsegv": _kill(signal.SIGSEGV),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", list(TRIGGERS))
def test_freed_port_never_receives_the_owners_requests(alice, testbed, how):
    assert alice.start(options={"profile": "medium"}).status_code in (201, 202)
    alice.wait_ready()
    job = squeue_ids("alice")[0]
    target = _routes(testbed)["/user/alice"]["target"]
    host, port = target.split("//", 1)[1].split("/")[0].rsplit(":", 1)
    # The server may run on the overflow node, which has its own network namespace here.
    node_net = ["nsenter", f"--net=/run/netns/{NETNS}"] if host == BATCH_ADDR else []
    squatter = subprocess.Popen(
        [*node_net, "sudo", "-u", "bob", "/usr/bin/python3", "-c", SQUATTER, port],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/tmp",
    )
    assert squatter.stdout.readline().strip() == "READY"
    stop = threading.Event()
    answers: list[tuple[float, int, str]] = []

    def probe():
        s = requests.Session()
        s.trust_env = False
        s.verify = alice.s.verify  # through Apache, with the testbed's certificate
        while not stop.is_set():
            try:
                r = s.get(
                    alice.server_url() + "api/status",
                    headers=alice._auth(),
                    timeout=3,
                    allow_redirects=False,
                )
                answers.append((time.time(), r.status_code, r.text[:40]))
            except requests.RequestException as e:
                answers.append((time.time(), 0, type(e).__name__))
            time.sleep(0.02)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    ended_at = time.time()
    try:
        TRIGGERS[how](alice, job)
        end = time.monotonic() + 120
        while "/user/alice" in _routes(testbed) and time.monotonic() < end:
            time.sleep(0.05)
        route_gone = time.time()
        assert "/user/alice" not in _routes(testbed), "the route was never removed"
        alice.wait_stopped(timeout=60)
        time.sleep(3)  # and a while after
    finally:
        stop.set()
        prober.join(10)
        subprocess.run(["pkill", "-P", str(squatter.pid)], check=False)  # sudo's child
        squatter.terminate()
        out, _ = squatter.communicate(timeout=10)
    route_gone = min(route_gone, _proxy_removed(testbed, ended_at) or route_gone)
    bound = [float(ln.split()[2]) for ln in out.splitlines() if ln.startswith("BOUND")]
    stolen = [ln for ln in out.splitlines() if ln.startswith("REQ")]
    window = (route_gone - min(bound)) if bound else None
    with open(os.environ.get("HPCHUB_PORT_FIGURES", "/tmp/hpchub-port-figures.txt"), "a") as f:
        f.write(
            f"{how} (on {host}): route removed {route_gone - ended_at:.2f} s after the trigger; "
            f"squatter bound {[round(b - ended_at, 2) for b in bound]} s after it; "
            f"freed port routed for {window if window is None else round(window, 2)} s; "
            f"requests stolen: {len(stolen)}\n"
        )
    # The job still ends as Slurm says (CANCELLED, OUT_OF_MEMORY...), and the home page says so.
    expected = {"scancel": "CANCELLED", "oom": "OUT_OF_MEMORY"}.get(how, "")
    if expected:
        assert f"Job {job}: {expected}" in html.unescape(alice.home())
    # The port is freed only after the route is gone (the proxy's log has milliseconds).
    assert window is None or window < 0, f"the freed port stayed routed for {window:.3f} s"
    assert not stolen, f"bob's squatter received alice's requests: {stolen[:3]}"
    assert not [a for a in answers if a[2].startswith("squatted")]


HOLDER = r"""
import socket, sys, time
held = []
for port in range(int(sys.argv[1]), int(sys.argv[2]) + 1):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(sys.argv[3]))
    s.bind(("::", port))
    s.listen()
    held.append(s)
print("READY", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("v6only", [0, 1], ids=["both-families", "ipv6-only"])
def test_exhausted_range_names_who_holds_it(testbed, v6only):
    """bob holds every port of a (small) range: alice's launcher says so and gives up.

    Holding only the IPv6 side is enough: a server must hold both families of its port.
    """
    low, high = 9190, 9192  # outside every hub's range on this machine: nobody else is hurt
    holder = subprocess.Popen(
        ["sudo", "-u", "bob", "/usr/bin/python3", "-c", HOLDER, str(low), str(high), str(v6only)],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/tmp",
    )
    try:
        assert holder.stdout.readline().strip() == "READY"
        r = subprocess.run(
            [
                "sudo",
                "-u",
                "alice",
                "env",
                "JUPYTERHUB_API_TOKEN=unused",
                "JUPYTERHUB_API_URL=http://127.0.0.1:1/hub/api",
                f"{testbed['prefix']}/bin/hpchub-singleuser",
                f"--port-range={low}-{high}",
                "--",
                "/bin/true",
            ],
            capture_output=True,
            text=True,
            cwd="/tmp",
            timeout=60,
        )
    finally:
        holder.terminate()
        holder.communicate(timeout=10)
    assert r.returncode != 0
    assert f"every port of singleuser.port_range {low}-{high}" in r.stderr, r.stderr
    assert f"bob holds 3 ports ({low}, {low + 1}, {high})" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
