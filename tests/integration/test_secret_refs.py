"""Secrets by reference, on the testbed, read by another user of the hub node (issue 14, item 5).

An OIDC client secret written inline as a gate directive used to land in the world-readable
site file and the mode-644 virtual host, where any user (bob here) could read it. Now the site
file refuses it; the secret lives in a file of mode 640 root:www-data that the vhost Includes,
and bob can read neither the secret nor find it in the vhost. `hpchub doctor` names a secret
left in a world-readable site file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpchub.config.loader import load_site

HPCHUB = str(Path(sys.executable).with_name("hpchub"))
SECRET = "s3cret-client-value"


def hpchub(site: Path, *argv: str) -> subprocess.CompletedProcess:
    cmd = [HPCHUB, "--config", str(site), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def as_bob(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "bob", "--", *argv], capture_output=True, text=True)


@pytest.fixture
def place(testbed):
    """A folder beside the testbed's site file that every user may read (like /etc/hpchub)."""
    etc = Path(load_site(testbed["site_file"]).deploy.etc_dir)
    folder = etc / f"secret-refs-test-{os.getpid()}"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # noqa: S103 - readable like /etc
    yield folder
    shutil.rmtree(folder)


def site_copy(testbed, folder: Path, **gate) -> Path:
    data = yaml.safe_load(Path(testbed["site_file"]).read_text())
    data["deploy"]["web"]["gate"].update(gate)
    path = folder / "hpchub.yaml"
    path.write_text(yaml.safe_dump(data))
    os.chmod(path, 0o644)
    return path


def test_an_inline_client_secret_is_refused(testbed, place):
    site = site_copy(
        testbed,
        place,
        directives=["AuthType openid-connect", f"OIDCClientSecret {SECRET}"],
    )
    r = hpchub(site, "config", "validate")
    assert r.returncode == 2, r.stdout
    assert "OIDCClientSecret holds a secret" in r.stderr
    assert "include_files" in r.stderr and "640" in r.stderr


def test_bob_cannot_read_a_secret_named_by_reference(testbed, place):
    include = place / "oidc-secrets.conf"
    include.write_text(f"OIDCClientSecret {SECRET}\n")
    os.chown(include, 0, 33)  # root:www-data
    os.chmod(include, 0o640)
    site = site_copy(testbed, place, include_files=[str(include)])
    out = place / "rendered"
    r = hpchub(site, "render", "--out", str(out))
    assert r.returncode == 0, r.stderr
    subprocess.run(["chmod", "-R", "a+rX", str(out)], check=True)
    vhost = next(p for p in out.rglob("*.conf") if "VirtualHost" in p.read_text())
    seen = as_bob("cat", str(vhost))
    assert seen.returncode == 0 and f"Include {include}" in seen.stdout
    assert SECRET not in seen.stdout
    denied = as_bob("cat", str(include))
    assert denied.returncode != 0 and "Permission denied" in denied.stderr


def test_doctor_names_a_secret_left_in_a_readable_site_file(testbed, place):
    site = site_copy(testbed, place)
    site.write_text(site.read_text() + f"# OIDCClientSecret {SECRET}\n")
    assert SECRET in as_bob("cat", str(site)).stdout  # what the finding is about
    r = hpchub(site, "doctor")
    report = r.stdout + r.stderr
    assert "readable by everyone) sets OIDCClientSecret" in report, report
    assert SECRET not in report
    os.chmod(site, 0o600)
    report = hpchub(site, "doctor").stdout
    assert "sets OIDCClientSecret" not in report
