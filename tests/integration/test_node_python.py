"""On the real test bed: doctor runs the environment's Python on every node through srun, and
`hpchub render --check` checks the files of a RHEL-family hub with this machine's real tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hpchub.config.loader import load_site
from hpchub.deploy.paths import DeployPaths
from hpchub.doctor.deployment import Deployment
from hpchub.doctor.findings import Severity
from hpchub.doctor.nodes import check_node_python

HPCHUB = str(Path(sys.executable).with_name("hpchub"))


def _deployment(testbed, prefix: Path | None = None) -> Deployment:
    site = load_site(Path(testbed["site_file"]))
    if prefix is not None:
        single = site.singleuser.model_copy(update={"prefix": prefix})
        site = site.model_copy(update={"singleuser": single})
    return Deployment(DeployPaths(site, Path(testbed["site_file"])))


def test_doctor_runs_the_environments_python_on_every_node(testbed):
    (found,) = check_node_python(_deployment(testbed))
    assert found.severity == Severity.OK, found
    assert found.what.startswith("2 nodes run ") and "(Python 3." in found.what


@pytest.fixture
def fake_prefix():
    """An environment folder the nodes see (root's jobs run there), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="hpchub-nodepy-"))
    (d / "bin").mkdir()
    (d / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.2\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_a_node_without_the_interpreter_is_named(testbed, fake_prefix):
    # A release built from /usr/bin/python3.11 on the hub, on nodes that lack that interpreter.
    (fake_prefix / "bin" / "python").symlink_to("/nonexistent/python3.11")
    found = check_node_python(_deployment(testbed, fake_prefix))
    assert {f.severity for f in found} == {Severity.ERROR}
    nodes = {testbed["nodes"]["jupyter"], testbed["nodes"]["batch"]}
    assert {f.what.split()[1] for f in found} == nodes
    for f in found:
        assert "No such file or directory" in f.what, f.what
        assert "/nonexistent/python3.11" in f.what and "needs Python 3.11" in f.what
        assert "python3.11" in f.fix


def test_a_node_with_an_older_python_is_named(testbed, fake_prefix):
    # A stand-in for an older interpreter (RHEL 9's own /usr/bin/python3 is 3.9): it answers
    # the probe as Python 3.9.18 would; srun, the nodes and the parsing are the real ones.
    py = fake_prefix / "bin" / "python"
    py.write_text("#!/bin/sh\necho hpchub-python 3.9.18\n")
    py.chmod(0o755)
    found = check_node_python(_deployment(testbed, fake_prefix))
    assert {f.severity for f in found} == {Severity.ERROR}
    for f in found:
        assert "has Python 3.9.18, but the single-user environment" in f.what
        assert "needs Python 3.11" in f.what


def test_render_check_of_a_rhel_site_with_the_real_tools(testbed, tmp_path):
    site = tmp_path / "rhel.yaml"
    site.write_text(
        "hub:\n  allowed_groups: [jupyter]\n"
        "deploy:\n  os_family: rhel\n  node_networks: [10.77.0.0/24]\n"
        f"  proxy_command: {shutil.which('true')}\n"
    )
    out = tmp_path / "out"
    r = subprocess.run(
        [HPCHUB, "--config", str(site), "render", "--out", str(out), "--check"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    text = r.stdout + r.stderr
    # The hub's unit names a program that is not here (/opt/hpchub/current): only that fails.
    failed = [line for line in text.splitlines() if "FAILED" in line]
    assert all("systemd-analyze" in line for line in failed), text
    for tool in ("visudo -cf: ok", "apachectl -t: ok", "sh -n: ok", "slurmd -G (cgroup.conf): ok"):
        assert tool in text, text
    assert "stand-in certificate for /etc/pki/tls/certs/localhost.crt" in text
    vhost = (out / "etc/httpd/conf.d/hpchub.conf").read_text()
    assert "SSLCertificateFile /etc/pki/tls/certs/localhost.crt" in vhost
    assert "pam_sss.so" in (out / "etc/pam.d/hpchub").read_text()
    assert "Traceback" not in text
