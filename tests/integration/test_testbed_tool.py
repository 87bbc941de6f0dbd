"""The testbed is a development tool: not in the software `hpchub install --software` builds,
and it will not touch a machine whose Slurm or hpchub files it did not write.

Attack (on a real hub node, by a careless or misled admin): `hpchub testbed up` overwrote
/etc/slurm/slurm.conf, the site file and the sudoers file and created demo users with
passwords; only a root check stood in the way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTBED = Path(sys.executable).with_name("hpchub-testbed")


def test_the_installed_software_has_no_testbed(testbed):
    """The prefix the testbed built with `hpchub install --software`'s own code."""
    env = Path(testbed["prefix"])
    found = [str(p) for p in env.glob("lib/python3*/site-packages/*testbed*")]
    found += [str(p) for p in env.glob("lib/python3*/site-packages/hpchub/*/testbed")]
    found += [str(p) for p in env.glob("lib/python3*/site-packages/hpchub/testbed")]
    assert found == []
    assert not (env / "bin" / "hpchub-testbed").exists()
    r = subprocess.run(
        [str(env / "bin" / "hpchub"), "testbed", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "invalid choice: 'testbed'" in r.stderr
    # The tested versions came with it (pip install -c).
    assert (next(env.glob("lib/python3*/site-packages/hpchub/deploy/constraints.txt"))).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespace)")
def test_up_refuses_a_machine_whose_slurm_conf_it_did_not_write(tmp_path):
    """In private mount, PID and network namespaces, /etc/slurm holds a real cluster's
    slurm.conf and the Slurm daemons are masked: even a broken guard could neither rewrite the
    host's files nor signal or reach the shared cluster's daemons."""
    etc_slurm = tmp_path / "etc-slurm"
    etc_slurm.mkdir()
    (etc_slurm / "slurm.conf").write_text("ClusterName=production\nSlurmctldHost=head1\n")
    script = textwrap.dedent(
        f"""\
        set -e
        mount --bind {etc_slurm} /etc/slurm
        for d in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged; do
            mount --bind /bin/false "$d"
        done
        exec {TESTBED} up
        """
    )
    env = {**os.environ, "HPCHUB_TESTBED_NAME": "tbguard", "HPCHUB_TESTBED_PORT_BASE": "9700"}
    r = subprocess.run(
        ["unshare", "-m", "-p", "-n", "-f", "--mount-proc", "--propagation", "private"]
        + ["bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("hpchub-testbed: refusing to touch this machine")
    assert "/etc/slurm/slurm.conf" in lines[0] and "Traceback" not in r.stderr
    assert (etc_slurm / "slurm.conf").read_text().startswith("ClusterName=production")
    assert not Path("/etc/hpchub-tbguard").exists()
    assert not Path("/var/lib/hpchub-testbed-tbguard").exists()
