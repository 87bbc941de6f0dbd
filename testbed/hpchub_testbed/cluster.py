"""The Slurm side of the testbed: slurm.conf from `slurmd -C`, munge, slurmctld, slurmd."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hpchub.config.models import SiteConfig
from hpchub.core.templates import render_from
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.render import cgroup_conf, slurm_memory_lines
from hpchub.deploy.render import partition_lines as jupyter_partition_lines

from . import accounting, procs
from .layout import Layout
from .system import sh

JUPYTER_PARTITIONS = ("jupyter-short", "jupyter-long", "jupyter-overflow")
# Each node declares this many CPUs so that many servers fit (each oversubscribed 10x).
DECLARED_CPUS = 8
JUPYTER_MEMORY_MIB = 8192
BATCH_MEMORY_MIB = 6144
BATCH_NODE = "hpchub-batch1"
NETNS = "hpchub-batch"
HOST_IF, NODE_IF = "hpchub0", "hpchub1"
CONTROLLER_ADDR, BATCH_ADDR = "10.77.0.1", "10.77.0.2"
CLUSTER_NETWORK = "10.77.0.0/24"
# Stand-in GPUs on the batch node, so that GRES scheduling is real: Slurm counts and binds
# them, and sets CUDA_VISIBLE_DEVICES and SLURM_JOB_GPUS in the job. Their files are
# character devices with NVIDIA's major number (195) that no driver serves here.
GPU_TYPE = "tesla"
GPU_COUNT = 2
GPU_DEVICE_MAJOR = 195
GPU_DEVICE_PREFIX = "/dev/hpchub-testbed-gpu"
# The benchmark's own partition (bench/run scale): hidden, on the Jupyter node, 128 jobs per
# CPU, in the lowest priority tier, so that 1,000 tiny stand-in jobs fit without taking the
# Jupyter partitions' places. Only bench/run names it.
BENCH_PARTITION = "hpchub-bench"
BENCH_PARTITION_LINE = (
    f"PartitionName={BENCH_PARTITION} Nodes={{node}} Hidden=YES MaxTime=02:00:00 "
    "OverSubscribe=FORCE:128 PriorityTier=1"
)


@dataclass(frozen=True)
class NodeFacts:
    """What `slurmd -C` reports about this machine."""

    name: str
    cpus: int
    memory_mib: int


def parse_node_facts(text: str) -> NodeFacts:
    """NodeFacts from what `slurmd -C` prints (the first line: NodeName=... CPUs=...)."""
    fields = dict(re.findall(r"(\w+)=(\S+)", text))
    return NodeFacts(
        fields.get("NodeName", socket.gethostname()), int(fields["CPUs"]), int(fields["RealMemory"])
    )


def node_facts() -> NodeFacts:
    return parse_node_facts(sh("/usr/sbin/slurmd", "-C").stdout)


CGROUP_ROOT = Path("/sys/fs/cgroup")


def _memory_writable(kind: str, path: Path) -> bool:
    """Root can make a memory cgroup below ``path`` and limit it: v1 takes a limit in
    memory.limit_in_bytes, v2 shows memory.max when the memory controller reaches it (not so
    in some containers)."""
    probe = path / "hpchub-probe"
    try:
        probe.mkdir(exist_ok=True)
        if kind == "v2":
            ok = (probe / "memory.max").exists()
        else:
            (probe / "memory.limit_in_bytes").write_text("104857600")
            ok = True
        probe.rmdir()
        return ok
    except OSError:
        with contextlib.suppress(OSError):
            probe.rmdir()
        return False


def cgroup_version(root: Path = CGROUP_ROOT, writable=None) -> str:
    """'v2' when ``root`` is a cgroup2 mount whose controllers include memory, 'v1' when it
    holds a v1 memory hierarchy (also the hybrid layout, where v2 has no controllers), else
    'none'; a version counts only if root can write its memory limits (``writable(kind, path)``
    decides; tests pass their own)."""
    if writable is None:
        writable = _memory_writable
    controllers = root / "cgroup.controllers"  # only the root of a cgroup2 mount has it
    if controllers.is_file():
        try:
            names = controllers.read_text().split()
        except OSError:
            names = []
        return "v2" if "memory" in names and writable("v2", root) else "none"
    memory = root / "memory"
    if memory.is_dir() and writable("v1", memory):
        return "v1"
    return "none"


def memory_enforcement(version: str) -> str:
    """'cgroup' when Slurm can limit memory with cgroups (v1 or v2), else 'polling'."""
    return "polling" if version == "none" else "cgroup"


def partition_lines(site: SiteConfig, site_path: Path, batch_node: str, jupyter_node: str) -> str:
    """The Jupyter partitions from hpchub's own Slurm snippet (CPU-oversubscribed; overflow on
    the batch node in a lower priority tier, so it takes Jupyter jobs only when the others are
    full), with the test bed's batch partition between them, and the hidden bench partition."""
    lines = jupyter_partition_lines(DeployPaths(site, site_path), default="jupyter-short")
    _, overflow = site.deploy.slurm.split([p.name for p in site.slurm.partitions])
    batch = (
        f"PartitionName=batch Nodes={batch_node} MaxTime=7-00:00:00 OverSubscribe=NO PriorityTier=5"
    )
    return "\n".join(
        [line for name, line in lines if name not in overflow]
        + [batch]
        + [line for name, line in lines if name in overflow]
        + [BENCH_PARTITION_LINE.format(node=jupyter_node)]
    )


def ensure_batch_netns(log=print) -> None:
    """The batch node's network namespace and a veth link to the host (idempotent)."""
    if NETNS not in sh("ip", "netns", "list", check=False).stdout.split():
        log(f"creating network namespace {NETNS} for node {BATCH_NODE}")
        sh("ip", "netns", "add", NETNS)
    if sh("ip", "link", "show", HOST_IF, check=False).returncode != 0:
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NODE_IF)
        sh("ip", "link", "set", NODE_IF, "netns", NETNS)
    if CONTROLLER_ADDR not in sh("ip", "-o", "addr", "show", HOST_IF).stdout:
        sh("ip", "addr", "add", f"{CONTROLLER_ADDR}/24", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    inside = ("ip", "netns", "exec", NETNS)
    if BATCH_ADDR not in sh(*inside, "ip", "-o", "addr", "show", NODE_IF).stdout:
        sh(*inside, "ip", "addr", "add", f"{BATCH_ADDR}/24", "dev", NODE_IF)
    sh(*inside, "ip", "link", "set", NODE_IF, "up")
    sh(*inside, "ip", "link", "set", "lo", "up")


def remove_batch_netns(log=print) -> None:
    """Undo ensure_batch_netns: the namespace, and the veth link (both ends go with either)."""
    if NETNS in sh("ip", "netns", "list", check=False).stdout.split():
        log(f"removing network namespace {NETNS}")
        sh("ip", "netns", "delete", NETNS)
    if sh("ip", "link", "show", HOST_IF, check=False).returncode == 0:
        log(f"removing link {HOST_IF}")
        sh("ip", "link", "delete", HOST_IF)


SLURM_STATE = Path("/var/lib/slurm")


def render_config(layout: Layout, facts: NodeFacts, cgroup: str, site: SiteConfig) -> dict:
    """The texts of slurm.conf and cgroup.conf for this machine's ``cgroup`` version (v1, v2
    or none, from cgroup_version())."""
    conf = render_from(
        "hpchub_testbed",
        "slurm.conf.j2",
        host=facts.name,
        controller_addr=CONTROLLER_ADDR,
        jupyter_node=facts.name,
        batch_node=BATCH_NODE,
        batch_addr=BATCH_ADDR,
        cpus=max(DECLARED_CPUS, facts.cpus),
        jupyter_memory_mib=min(JUPYTER_MEMORY_MIB, facts.memory_mib // 2),
        batch_memory_mib=min(BATCH_MEMORY_MIB, facts.memory_mib // 3),
        state_dir=str(SLURM_STATE),
        run_dir="/run/slurm",
        log_dir="/var/log/slurm",
        memory_enforcement=memory_enforcement(cgroup),
        memory_lines=slurm_memory_lines(cgroup),
        accounting=accounting.enabled(),
        partition_lines=partition_lines(site, layout.site_file, BATCH_NODE, facts.name),
        batch_gres=f"gpu:{GPU_TYPE}:{GPU_COUNT}",
        gpu_type=GPU_TYPE,
    )
    gres = render_from(
        "hpchub_testbed",
        "gres.conf.j2",
        batch_node=BATCH_NODE,
        gpu_type=GPU_TYPE,
        gpu_files=f"{GPU_DEVICE_PREFIX}[0-{GPU_COUNT - 1}]",
    )
    # Jobs may use the site's memory factor times their request while the node has memory.
    cg = cgroup_conf(cgroup, site.deploy.slurm.memory_factor, "`hpchub testbed up`")
    return {"slurm.conf": conf, "cgroup.conf": cg, "gres.conf": gres}


def ensure_gpu_devices(log=print) -> None:
    """The stand-in GPUs' device files, which gres.conf names (slurmd refuses missing ones)."""
    for index in range(GPU_COUNT):
        path = Path(f"{GPU_DEVICE_PREFIX}{index}")
        if not path.is_char_device():
            log(f"creating stand-in GPU device {path}")
            path.unlink(missing_ok=True)
            os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(GPU_DEVICE_MAJOR, index))


def write_config(layout: Layout, facts: NodeFacts, cgroup: str, site: SiteConfig) -> bool:
    """Write slurm.conf, cgroup.conf and gres.conf for this machine's ``cgroup`` version (v1,
    v2 or none, from cgroup_version()); True if any changed."""
    enforcement = memory_enforcement(cgroup)
    state = SLURM_STATE
    for d in (state / "slurmctld", Path("/var/log/slurm"), Path("/run/slurm")):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "slurm", "slurm")
    for node in (facts.name, BATCH_NODE):
        (state / f"slurmd-{node}").mkdir(parents=True, exist_ok=True)
    changed = False
    layout.slurm_etc.mkdir(parents=True, exist_ok=True)
    for name, text in render_config(layout, facts, cgroup, site).items():
        path = layout.slurm_etc / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            os.chmod(path, 0o644)
            changed = True
    (layout.state / "memory-enforcement").write_text(enforcement + "\n")
    (layout.state / "cgroup-version").write_text(cgroup + "\n")
    return changed


def _pid_from(pidfile: Path) -> int | None:
    return procs.read_pid(pidfile)


def pids_of(exe: str) -> list[int]:
    """The live processes named ``exe`` of this machine: pgrep also lists dead, unreaped ones,
    and those of another PID namespace's cluster (hpchub-testbed generation)."""
    r = sh("pgrep", "-x", os.path.basename(exe)[:15], check=False)
    pids = [int(line) for line in r.stdout.split()]
    return [p for p in pids if procs.alive(p) and procs.in_this_pid_namespace(p)]


def pidof(exe: str) -> int | None:
    """The first of ``pids_of(exe)``."""
    return next(iter(pids_of(exe)), None)


def _slurmd_pid(node: str) -> int | None:
    return _pid_from(Path(f"/run/slurm/slurmd-{node}.pid"))


def _kill_and_wait(pid: int, what: str) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)
    procs.wait_for(lambda: not procs.alive(pid), 20, f"{what} to stop")


def start_daemons(layout: Layout, facts: NodeFacts, restart: bool, log=print) -> None:
    """munged, slurmctld and both slurmds: started if not running, restarted on a new config."""
    run = layout.run
    run.mkdir(parents=True, exist_ok=True)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    if not pidof("munged"):
        log("starting munged")
        sh("/usr/sbin/runuser", "-u", "munge", "--", "/usr/sbin/munged")
        procs.wait_for(lambda: pidof("munged"), 10, "munged")
    procs.record("munged", pidof("munged") or 0, run)
    ensure_gpu_devices(log=log)
    ensure_batch_netns(log=log)  # slurmdbd is reached at the controller's address
    if accounting.enabled():
        accounting.ensure_database(log=log)
        accounting.start_slurmdbd(restart=accounting.write_config(), log=log)
    if restart:
        # Any slurmd (also one from an older layout) and slurmctld must read the new config.
        for pid in pids_of("slurmd"):
            log("restarting slurmd (configuration changed)")
            _kill_and_wait(int(pid), "slurmd")
        ctld = pidof("slurmctld")
        if ctld:
            log("restarting slurmctld (configuration changed)")
            _kill_and_wait(ctld, "slurmctld")
    if not pidof("slurmctld"):
        log("starting slurmctld")
        sh("/usr/sbin/slurmctld")
        procs.wait_for(lambda: pidof("slurmctld"), 15, "slurmctld")
    procs.record("slurmctld", pidof("slurmctld") or 0, run)
    for node, prefix in ((facts.name, ()), (BATCH_NODE, ("nsenter", f"--net=/run/netns/{NETNS}"))):
        if not _slurmd_pid(node):
            log(f"starting slurmd for node {node}")
            sh(*prefix, "/usr/sbin/slurmd", "-N", node)
            procs.wait_for(lambda n=node: _slurmd_pid(n), 15, f"slurmd of {node}")
        procs.record(f"slurmd-{node}", _slurmd_pid(node) or 0, run)
    for node in (facts.name, BATCH_NODE):
        procs.wait_for(lambda n=node: node_ready(n), 60, f"Slurm node {node}")


def node_ready(node: str) -> bool:
    r = sh("sinfo", "-h", "-N", "-n", node, "-o", "%T", check=False)
    state = r.stdout.strip().splitlines()[0] if r.stdout.strip() else ""
    if state.startswith(("down", "drain")) or state.endswith("*"):
        # A node that was down before the restart comes back with an explicit resume.
        subprocess.run(  # noqa: S603
            ["scontrol", "update", f"NodeName={node}", "State=RESUME"],  # noqa: S607
            capture_output=True,
        )
        return False
    # "reserved": up, held by a reservation (the tests reserve the Jupyter node on purpose).
    return state.startswith(("idle", "mixed", "allocated", "reserved"))


def stop_daemons(layout: Layout, log=print) -> None:
    pids = [("slurmd", p) for p in pids_of("slurmd")]
    ctld = pidof("slurmctld")
    _stop_each([*pids, *([("slurmctld", ctld)] if ctld else [])], log)
    accounting.stop(log=log)  # after slurmctld, which reports to slurmdbd; munge last
    munged = pidof("munged")
    _stop_each([("munged", munged)] if munged else [], log)
    for f in layout.run.glob("*.pid"):
        if f.stem.startswith(("slurm", "munged")):
            f.unlink(missing_ok=True)


def _stop_each(pids: list[tuple[str, int]], log) -> None:
    for name, pid in pids:
        log(f"stopping {name} ({pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and procs.alive(pid):
            time.sleep(0.1)


def status(layout: Layout) -> dict[str, object]:
    enforcement_file = layout.state / "memory-enforcement"
    version_file = layout.state / "cgroup-version"
    return {
        "munged": bool(pidof("munged")),
        "slurmctld": bool(pidof("slurmctld")),
        "slurmd": bool(_slurmd_pid(node_facts().name)),
        "slurmd_batch": bool(_slurmd_pid(BATCH_NODE)),
        **accounting.status(),
        "memory_enforcement": enforcement_file.read_text().strip()
        if enforcement_file.exists()
        else None,
        "cgroup_version": version_file.read_text().strip() if version_file.exists() else None,
    }
