"""Integration fixtures: the real testbed (`hpchub-testbed up` must have run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import hubclient
from .gate_vhosts import gated, remote_user  # noqa: F401 - the gate's fixtures, for every module
from .hubclient import HubClient

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def testbed() -> dict:
    testbed_cmd = Path(sys.executable).with_name("hpchub-testbed")
    r = subprocess.run(
        [str(testbed_cmd), "info", "--json"], capture_output=True, text=True, env=os.environ
    )
    if r.returncode != 0:
        pytest.fail(f"testbed not available: {r.stderr}")
    info = json.loads(r.stdout)
    status = subprocess.run([str(testbed_cmd), "status"], capture_output=True, text=True)
    if status.returncode != 0:
        pytest.fail(f"testbed is not up (run `hpchub-testbed up`):\n{status.stdout}")
    hubclient.CA_FILE = info["tls_cert"]  # the front door (hub_url) is Apache, with TLS
    return info


def _stop_all(c: HubClient) -> None:
    """Stop every server of the user and delete the named ones (they count against the limit)."""
    for name in list(c.model().get("servers", {})):
        c.stop(name)
        c.wait_stopped(name)
    for name in c.all_server_names():
        if name:
            c.remove(name)


def _client(testbed, index: int):
    u = testbed["users"][index]
    c = HubClient(testbed["hub_url"])
    assert c.login(u["name"], u["password"]).status_code == 302
    c.make_token()
    _stop_all(c)  # a clean start, whatever an earlier test left
    return c


@pytest.fixture
def alice(testbed) -> HubClient:
    c = _client(testbed, 0)
    yield c
    _stop_all(c)


@pytest.fixture
def carol(testbed) -> HubClient:
    c = _client(testbed, 2)
    yield c
    _stop_all(c)


@pytest.fixture
def bob(testbed) -> HubClient:
    c = _client(testbed, 1)
    yield c
    _stop_all(c)


def squeue_ids(user: str) -> list[str]:
    """Active jobs of ``user`` submitted by the testbed hub under test (other hubs share users)."""
    name = os.environ.get("HPCHUB_TESTBED_NAME", "")
    comment = "hpchub:testbed" + (f"-{name}" if name else "")
    r = subprocess.run(
        ["squeue", "-h", "-u", user, "-o", "%i|%k"], capture_output=True, text=True, check=True
    )
    return [ln.split("|")[0] for ln in r.stdout.split() if ln.split("|")[1] == comment]


def create_reservation(name: str, *words: str) -> None:
    """scontrol create reservation ReservationName=NAME WORDS... (as root)."""
    subprocess.run(
        ["scontrol", "create", "reservation", f"ReservationName={name}", *words],
        check=True,
        capture_output=True,
    )


class QueueHold:
    """Make this hub's next job of ``user`` wait in Slurm's queue until ``release()``.

    A root reservation (IGNORE_JOBS) on ``node`` keeps the job from starting at submission;
    once the job is seen pending it is held (``scontrol hold``, as an operator would) and the
    reservation goes at once, so other jobs wait only those seconds. Spawn something that can
    run on ``node`` alone (the small-long profile: jupyter-long). Leaving cancels the held job
    if it is still queued.
    """

    def __init__(self, user: str, node: str):
        self.user, self.node = user, node
        self.reservation = f"hpchub-hold-{os.getpid()}"
        self.job: str | None = None

    def __enter__(self) -> QueueHold:
        create_reservation(
            self.reservation,
            f"Nodes={self.node}",
            "StartTime=now",
            "Duration=10",
            "Users=root",
            "Flags=IGNORE_JOBS",
        )
        return self

    def hold_next(self, timeout: float = 120) -> str:
        """Hold the user's job as soon as this hub has submitted it; its id."""
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                ids = squeue_ids(self.user)
                if ids:
                    self.job = ids[0]
                    subprocess.run(["scontrol", "hold", self.job], check=True, capture_output=True)
                    return self.job
                time.sleep(0.2)
            raise TimeoutError(f"no job of {self.user} from this hub in {timeout} s")
        finally:
            self._unreserve()

    def release(self) -> None:
        subprocess.run(["scontrol", "release", self.job], check=True, capture_output=True)

    def _unreserve(self) -> None:
        subprocess.run(
            ["scontrol", "delete", f"ReservationName={self.reservation}"], capture_output=True
        )

    def __exit__(self, *exc) -> None:
        self._unreserve()
        if self.job and self.job in squeue_ids(self.user):
            state = subprocess.run(
                ["squeue", "-h", "-j", self.job, "-o", "%T"], capture_output=True, text=True
            ).stdout.strip()
            if state == "PENDING":
                subprocess.run(["scancel", self.job], capture_output=True)


@pytest.fixture
def jupyter_node_reserved():
    """The Jupyter node reserved for root: new jobs cannot start there until it is released.

    A reservation is deterministic where filling the node's memory races with other jobs.
    """
    name = f"hpchub-test-{os.getpid()}"
    create_reservation(
        name, "Nodes=vm", "StartTime=now", "Duration=15", "Users=root", "Flags=IGNORE_JOBS"
    )

    def release():
        subprocess.run(["scontrol", "delete", f"ReservationName={name}"], capture_output=True)

    try:
        yield release
    finally:
        release()


def allowed_ram_percent() -> float:
    """cgroup.conf's AllowedRAMSpace as the running Slurm sees it (the hard limit, in percent
    of a job's memory request)."""
    r = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        if line.split("=")[0].strip() == "AllowedRAMSpace":
            return float(line.split("=", 1)[1].strip().rstrip("%"))
    raise AssertionError("scontrol show config has no AllowedRAMSpace")
