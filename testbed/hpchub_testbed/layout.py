"""Where the testbed keeps things. One object, passed around; nothing read at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Paths and names of one testbed."""

    state: Path = Path("/var/lib/hpchub-testbed")
    prefix: Path = Path("/opt/hpchub")
    etc: Path = Path("/etc/hpchub")
    slurm_etc: Path = Path("/etc/slurm")
    hub_user: str = "jupyterhub-daemon"
    group: str = "jupyter"
    # anna.lee: a site's user name with a dot (issue 15); appended so that users[0..2] keep
    # their meaning in the tests.
    users: tuple[str, ...] = ("alice", "bob", "carol", "anna.lee")
    outsider: str = "mallory"
    # A directory's names: the gate also vouches for USER@REALM (the hub maps it to USER) and
    # USER@FOREIGN_REALM (a realm the hub refuses), both with the user's own password.
    realm: str = "EXAMPLE.ORG"
    foreign_realm: str = "OTHER.ORG"
    public_port: int = 8000
    proxy_api_port: int = 8001
    hub_port: int = 8081
    https_port: int = 8443
    http_port: int = 8080
    name: str = ""
    db: str = "sqlite"
    repo: Path = field(default_factory=lambda: Path(__file__).resolve().parents[2])

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port this testbed listens on (the hub, the proxy, Apache's two)."""
        return (
            self.public_port,
            self.proxy_api_port,
            self.hub_port,
            self.https_port,
            self.http_port,
        )

    @property
    def mail_relay_port(self) -> int:
        """Where the site file sends the start mail (time.email): a relay the tests start on
        this machine's end of the hub's link (machine_addr); nothing listens there otherwise."""
        return self.public_port + 25

    @property
    def env(self) -> Path:
        """singleuser.prefix: the link to the current release (hpchub.deploy.releases)."""
        return self.prefix / "current"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "log"

    @property
    def hub_data(self) -> Path:
        return self.state / "hub"

    @property
    def site_file(self) -> Path:
        return self.etc / "hpchub.yaml"

    @property
    def secrets_file(self) -> Path:
        # The demo users are shared by every testbed on the machine, and so are their passwords.
        return Path("/var/lib/hpchub-testbed/users.json")

    @property
    def marker(self) -> Path:
        """Written by the first `up`: this testbed's /etc folder and sudoers file are its own."""
        return self.state / "machine-set-up-by-hpchub-testbed"

    @property
    def hub_name(self) -> str:
        return "testbed" + (f"-{self.name}" if self.name else "")

    @property
    def sudoers_file(self) -> Path:
        return Path("/etc/sudoers.d/hpchub" + (f"-{self.name}" if self.name else ""))

    # -- the hub's own host: a network namespace, like a hub VM on the cluster network ----------

    @property
    def hub_net_index(self) -> int:
        """K in the hub's link network 10.78.K.0/30 (from the ports, which differ per testbed)."""
        return (self.public_port // 100) % 256

    @property
    def hub_netns(self) -> str:
        """The hub host's network namespace: hpchub-hub, or hpchub-hub-NAME."""
        return "hpchub-hub" + (f"-{self.name}" if self.name else "")

    @property
    def hub_netns_path(self) -> Path:
        return Path("/run/netns") / self.hub_netns

    @property
    def hub_link(self) -> tuple[str, str]:
        """The veth pair: (this machine's end, the hub host's end)."""
        return f"hpchubh{self.hub_net_index}", f"hpchubh{self.hub_net_index}n"

    @property
    def hub_network(self) -> str:
        return f"10.78.{self.hub_net_index}.0/30"

    @property
    def hub_addr(self) -> str:
        """The hub host's address: nodes call back to it; browsers meet Apache there."""
        return f"10.78.{self.hub_net_index}.2"

    @property
    def machine_addr(self) -> str:
        """This machine (the controller and the interactive node) on the hub's link."""
        return f"10.78.{self.hub_net_index}.1"

    @property
    def firewall_table(self) -> str:
        """The nftables table (inside the hub's namespace) that is this testbed's firewall."""
        return "hpchub-testbed" + (f"-{self.name}" if self.name else "")

    @property
    def apache_confdir(self) -> Path:
        """This testbed's own Apache instance (Debian's multi-instance layout: /etc/apache2-X)."""
        return Path(f"/etc/apache2-{self.unit_prefix}")

    @property
    def apachectl(self) -> Path:
        """apachectl for this testbed's Apache: its configuration, inside the hub's namespace."""
        return self.etc / "apachectl"

    @property
    def hub_url(self) -> str:
        """The front door, as a browser reaches it: Apache on the hub host."""
        return self.https_url

    @property
    def hub_api_url(self) -> str:
        """The hub's own port (API and port callback), where the nodes reach it."""
        return f"http://{self.hub_addr}:{self.hub_port}"

    @property
    def public_url_inside(self) -> str:
        """The proxy's public port, reachable only on the hub host itself."""
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def unit_prefix(self) -> str:
        """Name of the units and the Apache site: hpchub, or hpchub-NAME."""
        return "hpchub" + (f"-{self.name}" if self.name else "")

    @property
    def https_url(self) -> str:
        return f"https://{self.hub_addr}:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.hub_addr}:{self.http_port}"

    @property
    def tls_dir(self) -> Path:
        return self.state / "tls"

    @property
    def gate_htpasswd(self) -> Path:
        return self.state / "gate.htpasswd"

    @property
    def logrotate_file(self) -> Path:
        return Path("/etc/logrotate.d") / self.unit_prefix


def from_environ(environ: dict[str, str] | None = None) -> Layout:
    """The layout; a second hub on the same cluster sets HPCHUB_TESTBED_NAME=NAME.

    A named testbed keeps its own state, prefix, /etc folder, sudoers file and ports
    (HPCHUB_TESTBED_PORT_BASE, default 8000), and shares the Slurm cluster and demo users.
    """
    env = os.environ if environ is None else environ
    name = env.get("HPCHUB_TESTBED_NAME", "")
    db = env.get("HPCHUB_TESTBED_DB", "sqlite")
    if db not in ("sqlite", "postgresql"):
        raise SystemExit(f"HPCHUB_TESTBED_DB must be sqlite or postgresql, not {db!r}")
    if not name:
        return Layout(db=db)
    if not name.isalnum():
        raise SystemExit("HPCHUB_TESTBED_NAME must be letters and digits")
    base_text = env.get("HPCHUB_TESTBED_PORT_BASE", "8000")
    if not base_text.isdigit() or not 1024 <= int(base_text) <= 65000:
        raise SystemExit(
            f"HPCHUB_TESTBED_PORT_BASE must be a port from 1024 to 65000, not {base_text!r}"
        )
    base = int(base_text)
    layout = Layout(
        state=Path(f"/var/lib/hpchub-testbed-{name}"),
        prefix=Path(f"/opt/hpchub-{name}"),
        etc=Path(f"/etc/hpchub-{name}"),
        name=name,
        db=db,
        public_port=base,
        proxy_api_port=base + 1,
        hub_port=base + 81,
        https_port=base + 43,
        http_port=base + 80,
    )
    clash = sorted(set(layout.ports) & set(Layout().ports))
    if clash:
        # Each testbed's hub host has its own addresses, but the hub link's network comes from
        # the ports, and the ports once had to differ on the one machine: keep them apart.
        raise SystemExit(
            f"HPCHUB_TESTBED_PORT_BASE={base} gives port(s) {clash} of the main testbed; "
            "choose a base whose ports (base, +1, +43, +80, +81) avoid 8000, 8001, 8080, 8081 and 8443"
        )
    return layout
