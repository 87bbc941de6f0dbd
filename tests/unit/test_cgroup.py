"""cgroup v1, v2 or none: the testbed's detection, the one cgroup.conf template, slurmd's check.

This machine mounts cgroup v1 only, so v2 and "none" are detected here on fake /sys/fs/cgroup
trees, and the v2 cgroup.conf is checked by the real slurmd as far as a v1 kernel lets it go.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.deploy import checks
from hpchub.deploy import render as R
from hpchub.deploy.paths import DeployPaths
from hpchub_testbed import cluster, hub
from hpchub_testbed.layout import Layout

# -- detection on fake trees -----------------------------------------------------------------


def _v2(root: Path, controllers: str) -> Path:
    root.mkdir(parents=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    return root


def _writable(kind, path):
    return True


def test_a_cgroup2_mount_with_the_memory_controller_is_v2(tmp_path):
    root = _v2(tmp_path / "cg", "cpuset cpu io memory hugetlb pids rdma misc")
    assert cluster.cgroup_version(root, _writable) == "v2"


def test_a_cgroup2_mount_without_memory_is_none(tmp_path):
    root = _v2(tmp_path / "cg", "cpuset cpu io pids")
    assert cluster.cgroup_version(root, _writable) == "none"


def test_a_v1_memory_hierarchy_is_v1(tmp_path):
    root = tmp_path / "cg"
    (root / "memory").mkdir(parents=True)
    (root / "cpu").mkdir()
    assert cluster.cgroup_version(root, _writable) == "v1"


def test_the_hybrid_layout_is_v1(tmp_path):
    """systemd's hybrid mode (this machine): v1 controllers, and a cgroup2 mount at unified/
    without controllers."""
    root = tmp_path / "cg"
    (root / "memory").mkdir(parents=True)
    _v2(root / "unified", "")
    assert cluster.cgroup_version(root, _writable) == "v1"


def test_no_cgroups_at_all_is_none(tmp_path):
    (tmp_path / "cg").mkdir()
    assert cluster.cgroup_version(tmp_path / "cg", _writable) == "none"
    assert cluster.cgroup_version(tmp_path / "missing", _writable) == "none"


@pytest.mark.parametrize("make", ["v1", "v2"])
def test_a_version_root_cannot_write_is_none(tmp_path, make):
    root = tmp_path / "cg"
    if make == "v2":
        _v2(root, "memory")
    else:
        (root / "memory").mkdir(parents=True)
    seen = []

    def read_only(kind, path):
        seen.append((kind, path))
        return False

    assert cluster.cgroup_version(root, read_only) == "none"
    assert seen == [(make, root if make == "v2" else root / "memory")]


def test_the_v1_probe_on_this_machine():
    """The real probe, on the real /sys/fs/cgroup of this (v1) machine."""
    if not Path("/sys/fs/cgroup/memory").is_dir():
        pytest.skip("no v1 memory hierarchy here")
    assert cluster.cgroup_version() in ("v1", "none")
    assert not Path("/sys/fs/cgroup/memory/hpchub-probe").exists()


# -- the testbed's files: v1 stays byte-identical (a change restarts the shared slurmctld) ------

V1_CGROUP_CONF = """\
# Written by `hpchub testbed up`.
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedRAMSpace=500
AllowedSwapSpace=0
"""

V1_SLURM_LINES = """\
SlurmdParameters=config_overrides
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup,task/affinity
JobAcctGatherType=jobacct_gather/cgroup
NodeName=vm NodeAddr=127.0.0.1"""

NONE_SLURM_LINES = """\
SlurmdParameters=config_overrides
# cgroups are not writable here: memory is limited by polling (a soft limit).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=2
JobAcctGatherParams=OverMemoryKill
NodeName=vm NodeAddr=127.0.0.1"""


def _testbed_files(tmp_path: Path, cgroup: str) -> dict:
    layout = replace(Layout(), slurm_etc=tmp_path, state=tmp_path)
    site = hub.load_site_text(
        hub.site_text(layout, "/usr/local/bin/configurable-http-proxy", "vm"), layout.site_file
    )
    return cluster.render_config(layout, cluster.NodeFacts("vm", 2, 24105), cgroup, site)


def test_the_testbeds_v1_files_are_what_they_were(tmp_path):
    files = _testbed_files(tmp_path, "v1")
    assert files["cgroup.conf"] == V1_CGROUP_CONF
    assert V1_SLURM_LINES in files["slurm.conf"]


def test_the_testbeds_files_for_v2_and_none(tmp_path):
    v2 = _testbed_files(tmp_path, "v2")
    assert v2["cgroup.conf"] == V1_CGROUP_CONF.replace("cgroup/v1", "cgroup/v2")
    assert V1_SLURM_LINES in v2["slurm.conf"]  # slurm.conf is the same for v1 and v2
    none = _testbed_files(tmp_path, "none")
    assert NONE_SLURM_LINES in none["slurm.conf"]
    assert "\nCgroupPlugin=" not in none["cgroup.conf"]


def test_one_cgroup_template():
    from hpchub.core.templates import environment

    env = environment(package="hpchub_testbed")
    assert "cgroup.conf.j2" not in env.loader.list_templates()


# -- the site's snippet -----------------------------------------------------------------------


def _paths(slurm: dict) -> DeployPaths:
    return DeployPaths(parse_site({"deploy": {"slurm": slurm}}), Path("/etc/hpchub/hpchub.yaml"))


@pytest.mark.parametrize(
    "choice,plugin", [("auto", "autodetect"), ("v1", "cgroup/v1"), ("v2", "cgroup/v2")]
)
def test_the_site_snippet_names_the_plugin(choice, plugin):
    p = _paths({"cgroup": choice, "memory_factor": 3})
    text = R.cgroup_snippet(p)
    assert f"\nCgroupPlugin={plugin}\n" in text and "AllowedRAMSpace=300" in text
    assert ("memory.high" in text) == (choice != "v1")
    part = R.slurm_partitions(p)
    assert "#   TaskPlugin=task/cgroup,task/affinity" in part
    assert f"deploy.slurm.cgroup: {choice}" in part


def test_the_site_snippet_without_cgroups():
    p = _paths({"cgroup": "none"})
    assert "\nCgroupPlugin=" not in R.cgroup_snippet(p)
    part = R.slurm_partitions(p)
    assert "#   JobAcctGatherParams=OverMemoryKill" in part and "task/cgroup" not in part


def test_a_wrong_cgroup_choice_names_the_key_and_the_choices():
    with pytest.raises(SiteConfigError) as e:
        parse_site({"deploy": {"slurm": {"cgroup": "v3"}}})
    msg = str(e.value)
    assert "deploy.slurm.cgroup" in msg and "'auto'" in msg and "'v2'" in msg and "'none'" in msg


def test_the_snippet_is_checked_by_slurmd():
    files = {f.path.name: f for f in R.render_all(_paths({}))}
    assert files["cgroup.conf"].check == "cgroup"


# -- the real slurmd --------------------------------------------------------------------------

needs_slurmd = pytest.mark.skipif(
    not (Path("/usr/sbin/slurmd").exists() or shutil.which("slurmd")), reason="no slurmd"
)


@needs_slurmd
@pytest.mark.parametrize("choice", ["auto", "v1", "v2", "none"])
def test_slurmd_accepts_the_rendered_cgroup_conf(tmp_path, choice):
    f = tmp_path / "cgroup.conf"
    f.write_text(R.cgroup_snippet(_paths({"cgroup": choice})))
    result = checks.check_cgroup_conf(f, R.slurm_memory_lines(choice))
    assert result.ok, result.output
    if choice == "v2" and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        # A v1 kernel: slurmd parsed the file and loaded cgroup/v2, which then refuses to start.
        assert "cgroup/v2 loaded" in result.output


@needs_slurmd
@pytest.mark.parametrize(
    "text,words",
    [
        ("CgroupPlugin=cgroup/v2\nAllowedRAMSpace=lots\n", "not a valid number"),
        ("CgroupPlugin=cgroup/v2\nConstrainRAMSpac=yes\n", "unrecognized key"),
        ("CgroupPlugin=cgroup/v3\n", "cgroup/v3"),
    ],
)
def test_slurmd_refuses_a_broken_cgroup_conf(tmp_path, text, words):
    f = tmp_path / "cgroup.conf"
    f.write_text(text)
    result = checks.check_cgroup_conf(f, R.slurm_memory_lines("v2"))
    assert not result.ok and words in result.output, result.output


# What slurmd 24.11.5 (Debian 13, run in a debootstrap root on this v1 kernel) printed.
SLURMD_24_11_V2 = """\
slurmd: debug3: Trying to load plugin /usr/lib/x86_64-linux-gnu/slurm-wlm/cgroup_v2.so
slurmd: debug3: plugin_load_from_file->_verify_syms: found Slurm plugin name:Cgroup v2 plugin type:cgroup/v2 version:0x180b05
slurmd: debug:  cgroup/v2: init: Cgroup v2 plugin loaded
slurmd: error: Could not parse '/sys/fs/cgroup' root mount for self
slurmd: fatal: /sys/fs/cgroup is not a valid cgroup2 mountpoint
"""
SLURMD_24_11_NO_MUNGE = """\
slurmd: error: Munge encode failed: Failed to access "/run/munge/munge.socket.2": No such file or directory (Did you start munged?)
slurmd: error: cannot create auth context for auth/munge
slurmd: error: slurmd initialization failed
"""


@pytest.mark.parametrize(
    "output,words",
    [
        (SLURMD_24_11_V2, "cgroup/v2 loaded; it cannot start on this machine: /sys/fs/cgroup"),
        (SLURMD_24_11_NO_MUNGE, "munge is not running here"),
    ],
)
def test_what_newer_slurmd_says_of_a_parsed_file(tmp_path, monkeypatch, output, words):
    monkeypatch.setattr(checks, "_tool", lambda *a: "/usr/sbin/slurmd")
    monkeypatch.setattr(checks, "_run", lambda argv: (1, output))
    f = tmp_path / "cgroup.conf"
    f.write_text(R.cgroup_snippet(_paths({"cgroup": "v2"})))
    result = checks.check_cgroup_conf(f, R.slurm_memory_lines("v2"))
    assert result.ok and words in result.output, result.output


def test_the_testbeds_hidden_bench_partition(tmp_path):
    """bench/run --scale holds up to 1,000 tiny jobs in a hidden partition of the Jupyter node,
    in the lowest priority tier, apart from the Jupyter partitions."""
    conf = _testbed_files(tmp_path, "v1")["slurm.conf"]
    lines = [ln for ln in conf.splitlines() if ln.startswith("PartitionName=hpchub-bench ")]
    assert lines == [
        "PartitionName=hpchub-bench Nodes=vm Hidden=YES MaxTime=02:00:00 "
        "OverSubscribe=FORCE:128 PriorityTier=1"
    ]


@pytest.mark.parametrize("accounting", ["slurmdbd", "none"])
def test_the_testbeds_stand_in_gpus(tmp_path, monkeypatch, accounting):
    monkeypatch.setenv("HPCHUB_TESTBED_ACCOUNTING", accounting)
    files = _testbed_files(tmp_path, "v1")
    assert "\nGresTypes=gpu\n" in files["slurm.conf"]
    assert (
        "NodeName=hpchub-batch1 NodeAddr=10.77.0.2 CPUs=8 RealMemory=6144 Gres=gpu:tesla:2 "
        in (files["slurm.conf"])
    )
    assert files["gres.conf"].endswith(
        "NodeName=hpchub-batch1 Name=gpu Type=tesla File=/dev/hpchub-testbed-gpu[0-1]\n"
    )
    # slurmctld 24.11 does not start with a GPU TRES and no slurmdbd.
    tres = "\nAccountingStorageTRES=gres/gpu,gres/gpu:tesla\n" in files["slurm.conf"]
    assert tres == (accounting == "slurmdbd")
