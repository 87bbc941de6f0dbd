"""Issue 6 on the testbed: big idle servers go first, busy ones stay, culling stops the job.

carol's test profiles: cull-test-big (1G, idle 30s) and cull-test-small (256M, idle 80s);
the culler looks every 5s and servers report activity every 10s. The test never touches the
servers through the proxy while waiting: that would be activity.
"""

from __future__ import annotations

import time

import pytest

from .conftest import squeue_ids


def _running(client) -> set[str]:
    return {n for n, s in client.model().get("servers", {}).items() if s.get("ready")}


@pytest.mark.timeout(400)
def test_big_idle_server_is_culled_before_small_one(carol):
    assert carol.start("big", {"profile": "cull-test-big"}).status_code in (201, 202)
    assert carol.start("small", {"profile": "cull-test-small"}).status_code in (201, 202)
    carol.wait_ready("big")
    carol.wait_ready("small")
    big_job = [j for j in squeue_ids("carol")]
    assert len(big_job) == 2
    start = time.monotonic()
    while "big" in _running(carol):
        assert time.monotonic() - start < 150, "the big idle server was not culled"
        time.sleep(2)
    culled_after = time.monotonic() - start
    assert "small" in _running(carol), "the small server went first"
    assert culled_after >= 15  # not before its idle timeout (30s, less the activity lag)
    # Culling stopped the Slurm job: only the small one is left (once Slurm has cleaned up).
    for _ in range(30):
        if len(squeue_ids("carol")) == 1:
            break
        time.sleep(1)
    assert len(squeue_ids("carol")) == 1
    # The small one goes too, once its own (longer) timeout has passed.
    while "small" in _running(carol):
        assert time.monotonic() - start < 240, "the small idle server was never culled"
        time.sleep(3)
    for _ in range(30):
        if not squeue_ids("carol"):
            break
        time.sleep(1)
    assert squeue_ids("carol") == []
    # And the user can start again.
    assert carol.start("big", {"profile": "cull-test-big"}).status_code in (201, 202)
    carol.wait_ready("big")


@pytest.mark.timeout(300)
def test_busy_kernel_is_not_culled(carol):
    assert carol.start("big", {"profile": "cull-test-big"}).status_code in (201, 202)
    carol.wait_ready("big")
    # A silent long computation: no output for longer than the idle timeout.
    base = carol.server_url("big")
    r = carol.s.post(base + "api/kernels", headers=carol._auth(), json={}, timeout=60)
    kid = r.json()["id"]
    import threading

    from .hubclient import run_in_kernel

    done = threading.Event()

    def compute():
        try:
            run_in_kernel(
                base, kid, carol.token, "import time\ntime.sleep(100)\nprint('done')", timeout=150
            )
        finally:
            done.set()

    t = threading.Thread(target=compute, daemon=True)
    t.start()
    time.sleep(3)
    start = time.monotonic()
    while time.monotonic() - start < 65:  # twice the idle timeout
        assert "big" in _running(carol), "a server with a busy kernel was culled"
        time.sleep(3)
    done.wait(60)
