"""The testbed is a development tool outside hpchub, and it touches only a machine it set up."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import hpchub
from hpchub_testbed import ownership
from hpchub_testbed.layout import Layout

SRC = Path(hpchub.__file__).parent


def _layout(tmp_path: Path) -> Layout:
    return Layout(
        state=tmp_path / "state",
        etc=tmp_path / "etc-hpchub",
        slurm_etc=tmp_path / "etc-slurm",
        name="unit",
    )


def test_a_fresh_machine_is_claimed(tmp_path):
    layout = _layout(tmp_path)
    assert ownership.refusal(layout) is None
    ownership.claim(layout)
    assert layout.marker.exists()


def test_a_real_clusters_slurm_conf_is_refused(tmp_path):
    layout = _layout(tmp_path)
    layout.slurm_etc.mkdir()
    (layout.slurm_etc / "slurm.conf").write_text("ClusterName=production\n")
    (layout.slurm_etc / "gres.conf").write_text("AutoDetect=nvml\n")
    ownership.claim(layout)  # even a marker does not make another's slurm.conf ours
    msg = ownership.refusal(layout)
    assert msg is not None and str(layout.slurm_etc / "slurm.conf") in msg
    assert str(layout.slurm_etc / "gres.conf") in msg
    assert "\n" not in msg


def test_a_real_site_file_and_sudoers_file_are_refused(tmp_path):
    layout = _layout(tmp_path)
    layout.etc.mkdir()
    layout.site_file.write_text("hub:\n  name: production\n")
    assert ownership.foreign_files(layout) == [layout.site_file]


def test_files_an_earlier_testbed_wrote_are_recognised(tmp_path):
    layout = _layout(tmp_path)
    layout.slurm_etc.mkdir()
    layout.etc.mkdir()
    (layout.slurm_etc / "slurm.conf").write_text(ownership.SLURM_HEADER + ": a cluster\n")
    layout.site_file.write_text(ownership.SITE_HEADER + " (demo)\n")
    assert ownership.refusal(layout) is None


def test_the_testbed_templates_still_carry_the_headers():
    from hpchub.core.templates import environment

    env = environment(package="hpchub_testbed")
    for name in ("slurm.conf.j2", "gres.conf.j2"):
        src = env.loader.get_source(env, name)[0]
        assert src.startswith(ownership.SLURM_HEADER)
    src = env.loader.get_source(env, "hpchub.yaml.j2")[0]
    assert src.startswith(ownership.SITE_HEADER)


def test_hpchub_never_imports_the_testbed_or_the_benchmark():
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if any(w in p.read_text() for w in ("hpchub_testbed", "import bench", "from bench"))
    ]
    assert offenders == []
    assert not (SRC / "testbed").exists() and not (SRC / "templates" / "testbed").exists()


def test_hpchub_has_no_testbed_command():
    r = subprocess.run(
        [sys.executable, "-m", "hpchub.cli.main", "testbed", "--help"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "invalid choice: 'testbed'" in r.stderr


@pytest.mark.parametrize("package", ["hpchub_testbed", "bench"])
def test_every_module_of_the_dev_tools_imports(package):
    """bench/ rotted at import when a product function it used was removed: import it all."""
    pkg = importlib.import_module(package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "__main__" or package == "bench":
            importlib.import_module(f"{package}.{mod.name}")


def test_a_named_testbed_may_not_take_the_main_testbeds_ports():
    from hpchub_testbed.layout import from_environ

    # bench/run's old base: 8400 + 43 is the main testbed's Apache port, 8443.
    with pytest.raises(SystemExit, match=r"PORT_BASE=8400 gives port\(s\) \[8443\]"):
        from_environ({"HPCHUB_TESTBED_NAME": "bench", "HPCHUB_TESTBED_PORT_BASE": "8400"})
    with pytest.raises(SystemExit, match="must be a port"):
        from_environ({"HPCHUB_TESTBED_NAME": "bench", "HPCHUB_TESTBED_PORT_BASE": "x"})
    assert from_environ({"HPCHUB_TESTBED_NAME": "bench", "HPCHUB_TESTBED_PORT_BASE": "8500"})


def test_each_testbed_has_its_own_hub_host():
    from hpchub_testbed.layout import from_environ

    main = from_environ({})
    named = from_environ({"HPCHUB_TESTBED_NAME": "x", "HPCHUB_TESTBED_PORT_BASE": "9600"})
    assert (main.hub_netns, main.hub_addr, main.machine_addr) == (
        "hpchub-hub",
        "10.78.80.2",
        "10.78.80.1",
    )
    assert (named.hub_netns, named.hub_addr, named.hub_network) == (
        "hpchub-hub-x",
        "10.78.96.2",
        "10.78.96.0/30",
    )
    assert named.hub_link == ("hpchubh96", "hpchubh96n")  # interface names fit in 15 characters
    assert named.firewall_table == "hpchub-testbed-x"
    assert str(named.apache_confdir) == "/etc/apache2-hpchub-x"  # Debian's multi-instance name
    # Browsers meet Apache on the hub's host; the nodes call its own port there.
    assert named.hub_url == "https://10.78.96.2:9643"
    assert named.hub_api_url == "http://10.78.96.2:9681"


def test_the_hub_hosts_firewall_opens_only_the_hubs_port_to_the_nodes(tmp_path):
    from hpchub.config.loader import parse_site_text
    from hpchub_testbed import hubhost
    from hpchub_testbed.layout import from_environ

    layout = from_environ({"HPCHUB_TESTBED_NAME": "x", "HPCHUB_TESTBED_PORT_BASE": "9600"})
    site_text = (
        "singleuser:\n  port_range: [40000, 49999]\n"
        "deploy:\n  node_networks: [10.78.96.1/32, 10.77.0.0/24]\n"
    )
    site = parse_site_text(site_text, tmp_path / "s.yaml")
    text = hubhost.firewall_text(layout, site)
    checked = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True)
    if checked.returncode != 0 and "Operation not permitted" not in checked.stderr:
        raise AssertionError(checked.stderr)
    accepted_in = [
        line.strip()
        for line in text.split("chain output")[0].splitlines()
        if line.strip().startswith("tcp dport")
    ]
    assert accepted_in == ["tcp dport { 9643, 9680 } accept"]  # the front door, for everyone
    # The hub's port, for the nodes only (deploy.node_networks, as the rendered firewalld rules).
    assert "ip saddr { 10.78.96.1/32, 10.77.0.0/24 } tcp dport 9681 accept" in text
    assert "policy drop" in text and "reject with icmpx type admin-prohibited" in text
    assert "ip daddr 10.77.0.1 tcp dport { 6817, 6819 } accept" in text
    assert "tcp dport 40000-49999 accept" in text
    assert "dnat to 10.78.96.1" in text
    assert "9625" not in text  # no mail relay while time.email is off
    # time.email on: the hub host may reach the relay, on its port only.
    mail = "time:\n  email: {enabled: true, smtp_host: 10.78.96.1, smtp_port: 9625}\n"
    site = parse_site_text(mail + site_text, tmp_path / "s.yaml")
    assert "ip daddr 10.78.96.1 tcp dport 9625 accept" in hubhost.firewall_text(layout, site)
    assert layout.mail_relay_port == 9625


def test_the_hub_host_reaches_only_its_postgresql_on_the_machine(tmp_path):
    """With HPCHUB_TESTBED_DB=postgresql the hub (in its namespace, where 127.0.0.1 is its own
    loopback) reaches PostgreSQL at the machine's address on its link, and no other port."""
    from hpchub.config.loader import parse_site_text
    from hpchub_testbed import hubhost
    from hpchub_testbed.layout import from_environ

    layout = from_environ({"HPCHUB_TESTBED_NAME": "x", "HPCHUB_TESTBED_PORT_BASE": "9600"})
    base = "deploy:\n  node_networks: [10.78.96.1/32, 10.77.0.0/24]\n"
    plain = hubhost.firewall_text(layout, parse_site_text(base, tmp_path / "a.yaml"))
    assert "tcp dport 5433" not in plain
    pw = tmp_path / "pw"
    pw.write_text("*:*:*:h:x\n")
    pw.chmod(0o600)
    pg = parse_site_text(
        base
        + f"hub:\n  allowed_groups: [jupyter]\n  database:\n    url: postgresql://h@10.78.96.1:5433/h\n"
        f"    password_file: {pw}\n",
        tmp_path / "b.yaml",
    )
    assert "ip daddr 10.78.96.1 tcp dport 5433 accept" in hubhost.firewall_text(layout, pg)


# -- the other Debian generation (hpchub-testbed generation) -------------------------------


def test_each_generation_tests_the_other():
    from hpchub_testbed import generation

    assert generation.other_suite("12.11\n") == "trixie"
    assert generation.other_suite("13.1\n") == "bookworm"
    assert generation.other_suite("trixie/sid\n") == "bookworm"
    with pytest.raises(SystemExit, match="knows Debian 12 and 13"):
        generation.other_suite("11.9")


def test_the_root_comes_from_this_machines_own_mirror():
    from hpchub_testbed.generation import DEFAULT_MIRROR, mirror_uri

    deb822 = (
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\n"
    )
    assert mirror_uri({"a.sources": deb822}, "bookworm") == "http://mirror.example/debian"
    one_line = "deb [arch=amd64] http://old.example/debian trixie main\n"
    assert mirror_uri({"sources.list": one_line}, "trixie") == "http://old.example/debian"
    assert mirror_uri({}, "trixie") == DEFAULT_MIRROR


def test_the_root_installs_the_testbeds_own_package_list():
    from hpchub_testbed import generation, system

    steps = generation.steps(["-m", "core"])
    install = next(s for s in steps if s["name"].startswith("apt-get install"))
    assert install["argv"][-len(system.APT_PACKAGES) :] == list(system.APT_PACKAGES)
    assert {"iproute2", "procps"} <= set(system.APT_PACKAGES)  # a minimal Debian lacks both
    tests = next(s for s in steps if s["phase"] == "pytest")
    assert tests["argv"][-2:] == ["-m", "core"] and tests["show"]
    # The cluster always stops cleanly after the tests; the last run's jobs go before them.
    assert steps[-1]["argv"][-1] == "down" and steps[-1]["always"]
    assert steps.index(tests) == len(steps) - 2
    assert any(s["argv"][0] == "/usr/bin/scancel" for s in steps[: steps.index(tests)])
    assert all("HPCHUB_TESTBED_NAME" not in s["env"] for s in steps)
    run = generation.steps([], command=["python", "-V"])[-2]
    assert run["phase"] == "command" and run["argv"][-2:] == ["python", "-V"]


def test_namespace_init_reads_routes_and_cgroup_mounts():
    from hpchub_testbed.nsinit import has_default_route, host_cgroup_mounts

    head = "Iface\tDestination\tGateway\tFlags\n"
    assert has_default_route(head + "tap0\t00000000\t0202000A\t0003\n")
    assert not has_default_route(head + "tap0\t0002000A\t00000000\t0001\n")
    mounts = (
        "proc /proc proc rw 0 0\n"
        "tmpfs /sys/fs/cgroup tmpfs ro,mode=755 0 0\n"
        "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
        "tmpfs /run tmpfs rw 0 0\n"
    )
    assert [m[0] for m in host_cgroup_mounts(mounts)] == [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
    ]


def test_down_removes_the_batch_nodes_namespace_and_link(monkeypatch):
    from hpchub_testbed import cluster

    ran = []

    class Done:
        def __init__(self, stdout="", returncode=0):
            self.stdout, self.returncode = stdout, returncode

    def sh(*argv, check=True):
        ran.append(argv)
        if argv[:3] == ("ip", "netns", "list"):
            return Done(f"{cluster.NETNS} (id: 0)\nother\n")
        return Done()

    monkeypatch.setattr(cluster, "sh", sh)
    cluster.remove_batch_netns(log=lambda m: None)
    assert ("ip", "netns", "delete", cluster.NETNS) in ran
    assert ("ip", "link", "delete", cluster.HOST_IF) in ran


def test_the_demo_users_end_with_a_dotted_name_and_the_gate_knows_their_realm_names():
    from hpchub_testbed.web import gate_identities

    layout = Layout()
    assert layout.users[:3] == ("alice", "bob", "carol")  # the tests' users[0..2]
    assert layout.users[-1] == "anna.lee"
    passwords = {u: f"pw-{u}" for u in layout.users}
    gate = gate_identities(layout, passwords)
    assert gate["anna.lee"] == gate["anna.lee@EXAMPLE.ORG"] == gate["anna.lee@OTHER.ORG"]
    assert len(gate) == 3 * len(layout.users) and layout.outsider not in gate


def test_accounting_by_default_except_where_slurmdbd_cannot_start():
    from hpchub_testbed.accounting import default_mode, mode

    assert default_mode("12.11\n") == "slurmdbd"
    assert default_mode("13.1\n") == "none"  # Debian's libmariadb3 11.8.9 (docs/testing.md)
    assert default_mode("trixie/sid\n") == "none"
    assert mode({"HPCHUB_TESTBED_ACCOUNTING": "slurmdbd"}) == "slurmdbd"
    with pytest.raises(SystemExit, match="must be one of slurmdbd, none"):
        mode({"HPCHUB_TESTBED_ACCOUNTING": "yes"})
