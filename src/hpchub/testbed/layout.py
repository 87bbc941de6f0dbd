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
    users: tuple[str, ...] = ("alice", "bob")
    outsider: str = "mallory"
    public_port: int = 8000
    proxy_api_port: int = 8001
    hub_port: int = 8081
    repo: Path = field(default_factory=lambda: Path(__file__).resolve().parents[3])

    @property
    def env(self) -> Path:
        return self.prefix / "env"

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
        return self.state / "users.json"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"


def from_environ() -> Layout:
    """The layout, with HPCHUB_TESTBED_STATE overriding the state folder (for parallel work)."""
    state = os.environ.get("HPCHUB_TESTBED_STATE")
    return Layout(state=Path(state)) if state else Layout()
