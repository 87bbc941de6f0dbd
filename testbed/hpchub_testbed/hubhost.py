"""The hub's own host: a network namespace per testbed, like a hub VM that is only a Slurm client.

The hub, the proxy and this testbed's Apache run inside it. It reaches this machine (the
controller, 10.77.0.1, and the interactive node) over a veth link, 10.78.K.0/30, and the batch
node (10.77.0.2, in its own namespace) through this machine, which routes between the two. The
hub's firewall (nftables, in the namespace, so never in the machine's own ruleset) lets the
nodes reach only the hub's API port and the public front door.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from hpchub.config.models import SiteConfig
from hpchub.core.templates import render_from

from .cluster import CONTROLLER_ADDR, NETNS
from .layout import Layout
from .system import sh

SLURM_PORTS = (6817, 6819)
"""slurmctld's and slurmdbd's ports (slurm.conf's SlurmctldPort, slurmdbd's default)."""


def inside(layout: Layout, *argv: str) -> list[str]:
    """``argv`` run on the hub's host (its network; mounts and cgroups stay the machine's)."""
    return ["nsenter", f"--net={layout.hub_netns_path}", *argv]


def exists(layout: Layout) -> bool:
    return layout.hub_netns in _netns_names()


def _netns_names() -> list[str]:
    return [line.split()[0] for line in sh("ip", "netns", "list", check=False).stdout.splitlines()]


def firewall_text(layout: Layout, site: SiteConfig) -> str:
    low, high = site.singleuser.port_range
    email = site.time.email
    nodes = [str(n) for n in site.deploy.node_networks if ipaddress.ip_network(n).version == 4]
    if not nodes:
        raise SystemExit(f"hpchub-testbed: {layout.site_file} names no deploy.node_networks")
    return render_from(
        "hpchub_testbed",
        "hub-firewall.nft.j2",
        netns=layout.hub_netns,
        table=layout.firewall_table,
        hub_port=layout.hub_port,
        public_port=layout.public_port,
        proxy_api_port=layout.proxy_api_port,
        front_ports=[layout.https_port, layout.http_port],
        controller_addr=CONTROLLER_ADDR,
        slurm_ports=SLURM_PORTS,
        # The site's own list (the rendered firewalld rules use it too).
        node_networks=nodes,
        port_low=low,
        port_high=high,
        machine_addr=layout.machine_addr,
        hub_addr=layout.hub_addr,
        hub_if=layout.hub_link[1],
        mail_relay=(email.smtp_host, email.smtp_port) if email.enabled else None,
        wide=os.environ.get("HPCHUB_TESTBED_WIDE_NODE_PORTS") == "1",
        db_port=_db_port(site),
        own_low=layout.public_port // 100 * 100,
        own_high=layout.public_port // 100 * 100 + 99,
    )


def _db_port(site: SiteConfig) -> int | None:
    """The port of the hub's PostgreSQL (on this machine's address on the hub's link)."""
    if site.hub.database is None:
        return None
    return urlsplit(site.hub.database.url).port or 5432


def _owner_of(address: str) -> str | None:
    """The interface of this machine that holds ``address``, if any."""
    for line in sh("ip", "-o", "-4", "addr", "show").stdout.splitlines():
        fields = line.split()
        if f"{address}/" in line and len(fields) > 1:
            return fields[1]
    return None


def ensure(layout: Layout, site: SiteConfig, log=print) -> None:
    """The namespace, its link, addresses, routes and firewall (idempotent)."""
    host_if, hub_if = layout.hub_link
    owner = _owner_of(layout.machine_addr)
    if owner not in (None, host_if):
        raise SystemExit(
            f"hpchub-testbed: the hub link address {layout.machine_addr} is already on {owner}; "
            "another testbed's ports share this one's hundreds: choose another "
            "HPCHUB_TESTBED_PORT_BASE"
        )
    if not exists(layout):
        log(f"creating the hub's host: network namespace {layout.hub_netns} at {layout.hub_addr}")
        sh("ip", "netns", "add", layout.hub_netns)
    ns = ("ip", "-n", layout.hub_netns)
    if sh("ip", "link", "show", host_if, check=False).returncode != 0:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", hub_if)
        sh("ip", "link", "set", hub_if, "netns", layout.hub_netns)
    if owner is None:
        sh("ip", "addr", "add", f"{layout.machine_addr}/30", "dev", host_if)
    sh("ip", "link", "set", host_if, "up")
    if layout.hub_addr not in sh(*ns, "-o", "addr", "show", hub_if).stdout:
        sh(*ns, "addr", "add", f"{layout.hub_addr}/30", "dev", hub_if)
    sh(*ns, "link", "set", hub_if, "up")
    sh(*ns, "link", "set", "lo", "up")
    # Everything beyond the link (the controller, the batch node) through this machine.
    sh(*ns, "route", "replace", "default", "via", layout.machine_addr)
    # The batch node answers the hub through this machine, which routes between the links.
    sh("ip", "-n", NETNS, "route", "replace", layout.hub_network, "via", CONTROLLER_ADDR)
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    # The interactive node is 127.0.0.1 to Slurm: mapped to its address (see the firewall file).
    sh(*inside(layout, "sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1"))
    load_firewall(layout, firewall_text(layout, site))


def load_firewall(layout: Layout, text: str) -> None:
    """Replace this testbed's tables in the hub's namespace, in one nft transaction."""
    table = layout.firewall_table
    reset = f"table inet {table} {{}}\ndelete table inet {table}\n"
    reset += f"table ip {table}-node-map {{}}\ndelete table ip {table}-node-map\n"
    path = layout.state / "hub-firewall.nft"
    layout.state.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    r = subprocess.run(  # noqa: S603 - fixed argv
        inside(layout, "nft", "-f", "-"),
        input=reset + text,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"hpchub-testbed: nft refused {path}: {r.stderr.strip()}")


def remove(layout: Layout, log=print) -> None:
    """The namespace, its link, the batch node's route to it, and its firewall."""
    if exists(layout):
        table = layout.firewall_table
        for family, name in (("inet", table), ("ip", f"{table}-node-map")):
            sh(*inside(layout, "nft", "delete", "table", family, name), check=False)
        log(f"removing the hub's host {layout.hub_netns}")
        sh("ip", "netns", "delete", layout.hub_netns)
    host_if, _ = layout.hub_link
    # Deleting the namespace takes its end of the link, and the kernel removes ours a moment
    # later: a link that vanished between the check and the delete is what was wanted.
    if sh("ip", "link", "show", host_if, check=False).returncode == 0:
        r = sh("ip", "link", "delete", host_if, check=False)
        if r.returncode and sh("ip", "link", "show", host_if, check=False).returncode == 0:
            raise SystemExit(
                f"hpchub-testbed: cannot delete the link {host_if}: {r.stderr.strip()}"
            )
    if NETNS in _netns_names():
        sh("ip", "-n", NETNS, "route", "del", layout.hub_network, check=False)


def netns_of(pid: int) -> str:
    """The network namespace of ``pid`` as 'net:[inode]' ('' if gone)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def runs_inside(layout: Layout, pid: int) -> bool:
    """Whether ``pid`` lives on the hub's host (and not, say, in an older testbed's shape)."""
    with contextlib.suppress(OSError):
        return netns_of(pid) == f"net:[{layout.hub_netns_path.stat().st_ino}]"
    return False


def answers(layout: Layout, url: str) -> bool:
    """Whether ``url`` answers (below 500) when asked from the hub's own host."""
    probe = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=2); code = r.status\n"
        "except urllib.error.HTTPError as e:\n"
        "    code = e.code\n"
        "except OSError:\n"
        "    code = 599\n"
        "sys.exit(0 if code < 500 else 1)\n"
    )
    r = subprocess.run(  # noqa: S603 - fixed argv
        inside(layout, "/usr/bin/python3", "-c", probe, url), capture_output=True, timeout=30
    )
    return r.returncode == 0


def status(layout: Layout) -> dict[str, object]:
    present = exists(layout)
    table = False
    if present:
        r = sh(*inside(layout, "nft", "list", "table", "inet", layout.firewall_table), check=False)
        table = r.returncode == 0
    return {"hub_host": present, "hub_firewall": table}
