"""The Slurm side of the testbed: slurm.conf from `slurmd -C`, munge, slurmctld, slurmd."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..render import render
from . import procs
from .layout import Layout
from .system import sh

JUPYTER_PARTITIONS = ("jupyter-short", "jupyter-long", "jupyter-overflow")
# The node declares this many CPUs so that K servers fit (each oversubscribed 10x).
DECLARED_CPUS = 8


@dataclass(frozen=True)
class NodeFacts:
    """What `slurmd -C` reports about this machine."""

    name: str
    cpus: int
    memory_mib: int


def node_facts() -> NodeFacts:
    out = sh("/usr/sbin/slurmd", "-C").stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out))
    return NodeFacts(
        fields.get("NodeName", socket.gethostname()), int(fields["CPUs"]), int(fields["RealMemory"])
    )


def memory_enforcement() -> str:
    """'cgroup' when the memory cgroup is writable by root here, else 'polling'."""
    base = Path("/sys/fs/cgroup/memory")
    if not base.is_dir():
        return "polling"
    probe = base / "hpchub-probe"
    try:
        probe.mkdir(exist_ok=True)
        (probe / "memory.limit_in_bytes").write_text("104857600")
        probe.rmdir()
        return "cgroup"
    except OSError:
        with contextlib.suppress(OSError):
            probe.rmdir()
        return "polling"


def partition_lines(memory_mib: int) -> str:
    """The testbed's partitions: jupyter ones CPU-oversubscribed, overflow in a lower tier."""
    over = "OverSubscribe=FORCE:10"
    return "\n".join(
        [
            f"PartitionName=jupyter-short Nodes=ALL Default=YES MaxTime=12:00:00 {over} PriorityTier=10 State=UP",
            f"PartitionName=jupyter-long Nodes=ALL MaxTime=7-00:00:00 {over} PriorityTier=10 State=UP",
            f"PartitionName=jupyter-overflow Nodes=ALL MaxTime=12:00:00 {over} PriorityTier=1 State=UP",
            "PartitionName=batch Nodes=ALL MaxTime=7-00:00:00 OverSubscribe=NO PriorityTier=1 State=UP",
        ]
    )


def write_config(layout: Layout, facts: NodeFacts, enforcement: str) -> bool:
    """Write slurm.conf and cgroup.conf; True if either changed."""
    state = Path("/var/lib/slurm")
    for d in (state / "slurmctld", state / "slurmd", Path("/var/log/slurm"), Path("/run/slurm")):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "slurm", "slurm")
    conf = render(
        "testbed/slurm.conf.j2",
        host=facts.name,
        node=facts.name,
        cpus=max(DECLARED_CPUS, facts.cpus),
        memory_mib=facts.memory_mib - 512,
        state_dir=str(state),
        run_dir="/run/slurm",
        log_dir="/var/log/slurm",
        memory_enforcement=enforcement,
        partition_lines=partition_lines(facts.memory_mib),
    )
    cg = render("testbed/cgroup.conf.j2", allowed_ram_percent=100)
    changed = False
    layout.slurm_etc.mkdir(parents=True, exist_ok=True)
    for name, text in (("slurm.conf", conf), ("cgroup.conf", cg)):
        path = layout.slurm_etc / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            os.chmod(path, 0o644)
            changed = True
    (layout.state / "memory-enforcement").write_text(enforcement + "\n")
    return changed


def _pidof(exe: str) -> int | None:
    r = sh("pgrep", "-x", os.path.basename(exe)[:15], check=False)
    for line in r.stdout.split():
        pid = int(line)
        if procs.alive(pid):
            return pid
    return None


def start_daemons(layout: Layout, facts: NodeFacts, restart: bool, log=print) -> None:
    """munged, slurmctld, slurmd: started if not running, restarted if the config changed."""
    run = layout.run
    run.mkdir(parents=True, exist_ok=True)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    if not _pidof("munged"):
        log("starting munged")
        sh("/usr/sbin/runuser", "-u", "munge", "--", "/usr/sbin/munged")
        procs.wait_for(lambda: _pidof("munged"), 10, "munged")
    procs.record("munged", _pidof("munged") or 0, run)
    if restart:
        for name in ("slurmd", "slurmctld"):
            pid = _pidof(name)
            if pid:
                log(f"restarting {name} (configuration changed)")
                os.kill(pid, 15)
                procs.wait_for(lambda n=name: not _pidof(n), 20, f"{name} to stop")
    if not _pidof("slurmctld"):
        log("starting slurmctld")
        sh("/usr/sbin/slurmctld")
        procs.wait_for(lambda: _pidof("slurmctld"), 15, "slurmctld")
    procs.record("slurmctld", _pidof("slurmctld") or 0, run)
    if not _pidof("slurmd"):
        log("starting slurmd")
        sh("/usr/sbin/slurmd", "-N", facts.name)
        procs.wait_for(lambda: _pidof("slurmd"), 15, "slurmd")
    procs.record("slurmd", _pidof("slurmd") or 0, run)
    procs.wait_for(lambda: node_ready(facts.name), 60, "the Slurm node")


def node_ready(node: str) -> bool:
    r = sh("sinfo", "-h", "-N", "-n", node, "-o", "%T", check=False)
    state = r.stdout.strip().splitlines()[0] if r.stdout.strip() else ""
    if state.startswith(("down", "drain")) or state.endswith("*"):
        # A node that was down before the restart comes back with an explicit resume.
        subprocess.run(
            ["scontrol", "update", f"NodeName={node}", "State=RESUME"], capture_output=True
        )  # noqa: S603,S607
        return False
    return state.startswith(("idle", "mixed", "allocated"))


def stop_daemons(layout: Layout, log=print) -> None:
    for name in ("slurmd", "slurmctld", "munged"):
        pid = _pidof(name)
        if pid:
            log(f"stopping {name}")
            os.kill(pid, 15)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and procs.alive(pid):
                time.sleep(0.1)
        (layout.run / f"{name}.pid").unlink(missing_ok=True)


def status(layout: Layout) -> dict[str, object]:
    enforcement_file = layout.state / "memory-enforcement"
    return {
        "munged": bool(_pidof("munged")),
        "slurmctld": bool(_pidof("slurmctld")),
        "slurmd": bool(_pidof("slurmd")),
        "memory_enforcement": enforcement_file.read_text().strip()
        if enforcement_file.exists()
        else None,
    }
