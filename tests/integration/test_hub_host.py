"""The hub on its own host (issue 15, item 4): the hub, the proxy and Apache run in a network
namespace of their own, and its firewall lets the compute nodes reach only the hub's API port
(and the public front door). Asked for real from the batch node's namespace and from the
interactive node (this machine's own namespace), as a user of the node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from hpchub.config.loader import load_site

from .hubhost import hub_cmd

BATCH_NETNS = "/run/netns/hpchub-batch"

# What a process on a node gets when it connects to the hub's ports: the status of GET / (or
# the errno of the failed connect: EHOSTUNREACH is the firewall's admin-prohibited answer).
_PROBE = r"""
import errno, json, socket, sys
host, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
out = {}
for port in ports:
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"GET /hub/api/ HTTP/1.0\r\nHost: x\r\n\r\n")
            out[port] = s.recv(64).decode(errors="replace").split("\r\n")[0]
    except OSError as err:
        out[port] = errno.errorcode.get(err.errno, str(err))
print(json.dumps(out))
"""


def _ports(testbed) -> dict[str, int]:
    site = load_site(testbed["site_file"])
    return {
        "hub": urlparse(str(site.hub.hub_connect_url)).port,
        "proxy_public": urlparse(str(site.hub.public_url)).port,
        "proxy_api": urlparse(str(site.hub.proxy_api_url)).port,
        "https": site.deploy.web.https_port,
    }


def _probe(prefix: list[str], host: str, ports: dict[str, int]) -> dict[str, str]:
    r = subprocess.run(
        [*prefix, sys.executable, "-c", _PROBE, host, *map(str, ports.values())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    return {name: seen[str(port)] for name, port in ports.items()}


@pytest.mark.parametrize(
    "node",
    [
        pytest.param(
            ["nsenter", f"--net={BATCH_NETNS}", "runuser", "-u", "alice", "--"], id="batch"
        ),
        pytest.param(["runuser", "-u", "alice", "--"], id="interactive"),
    ],
)
def test_nodes_reach_the_hub_api_and_not_the_proxy(testbed, node):
    seen = _probe(node, testbed["hub_addr"], _ports(testbed))
    assert seen["hub"].startswith("HTTP/1.1 200"), seen
    assert seen["https"] != "EHOSTUNREACH", seen  # the front door is open (TLS: no HTTP answer)
    # Refused by the hub's firewall (admin-prohibited), not merely closed.
    assert seen["proxy_public"] == "EHOSTUNREACH", seen
    assert seen["proxy_api"] == "EHOSTUNREACH", seen


def test_on_the_hub_host_the_proxy_answers(testbed):
    """The control: the proxy listens, on the hub's own host (loopback there)."""
    seen = _probe(hub_cmd(testbed), "127.0.0.1", _ports(testbed))
    assert seen["proxy_public"].startswith("HTTP/1.1"), seen
    assert seen["proxy_api"].startswith("HTTP/1.1"), seen


def test_the_hub_and_the_proxy_run_on_the_hub_host(testbed):
    from hpchub_testbed import procs
    from hpchub_testbed.layout import from_environ

    layout = from_environ()
    hub_host = f"net:[{Path(testbed['hub_netns']).stat().st_ino}]"
    for name in ("hub", "proxy"):
        pid = procs.read_pid(layout.run / f"{name}.pid")
        assert pid and Path(f"/proc/{pid}/ns/net").readlink().name == hub_host, name
    # The Slurm client commands work there (munge and slurmctld through the firewall).
    r = subprocess.run(hub_cmd(testbed, "squeue", "-h", "-o", "%i"), capture_output=True)
    assert r.returncode == 0, r.stderr


def test_the_firewall_is_the_testbeds_own_table(testbed):
    r = subprocess.run(
        hub_cmd(testbed, "nft", "list", "table", "inet", testbed["firewall_table"]),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "policy drop" in r.stdout
    # Nothing of it in this machine's own ruleset.
    root = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert testbed["firewall_table"] not in root
