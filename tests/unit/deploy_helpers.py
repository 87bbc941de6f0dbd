"""A site file whose every deploy path lies in a temporary folder, for renderer and installer tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hpchub.config.loader import parse_site
from hpchub.deploy.paths import DeployPaths


def tmp_site(root: Path, **deploy) -> DeployPaths:
    """DeployPaths for a site installed below ``root`` (web off unless ``web`` is given).

    The programs the units start exist (as stand-ins), so that systemd-analyze accepts them.
    """
    for exe in ("opt/hpchub/env/bin/hpchub-hub", "usr/bin/configurable-http-proxy"):
        f = root / "tools" / exe
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("#!/bin/sh\n")
        f.chmod(0o755)
    data = {
        "hub": {
            "allowed_groups": ["jupyter"],
            "data_dir": str(root / "var/lib/hpchub"),
            "config_d": str(root / "etc/hpchub/jupyterhub_config.d"),
        },
        "singleuser": {"prefix": str(root / "tools/opt/hpchub/env")},
        "deploy": {
            "etc_dir": str(root / "etc/hpchub"),
            "log_dir": str(root / "var/log/hpchub"),
            "sudoers_file": str(root / "etc/sudoers.d/hpchub"),
            "logrotate_file": str(root / "etc/logrotate.d/hpchub"),
            "systemd": {"unit_dir": str(root / "etc/systemd/system")},
            "proxy_command": str(root / "tools/usr/bin/configurable-http-proxy"),
            "web": {"enabled": False},
            **deploy,
        },
    }
    site = parse_site(data)
    return DeployPaths(site, root / "etc/hpchub/hpchub.yaml")


class FakeRun:
    """Records the commands an installer runs (useradd, a2enmod, scripts) instead of running
    them; each answers ``stdout`` and exit status 0."""

    def __init__(self, stdout: str = ""):
        self.calls: list[list[str]] = []
        self.stdout = stdout

    def __call__(self, argv, **kw):
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, self.stdout, "")
