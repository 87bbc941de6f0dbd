import asyncio

import pytest

from hpchub.config.models import SlurmSettings
from hpchub.slurm.client import SlurmClient
from hpchub.spawner.monitor import GONE, UNKNOWN, JobMonitor


@pytest.fixture
def monitor(fake):
    return JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)


async def test_one_query_for_all_jobs(monitor, fake, fake_clock):
    for i in range(100):
        fake.jobs[str(i + 1)] = "RUNNING"
        monitor.watch(str(i + 1))
    fake.calls.clear()
    await monitor.refresh()
    assert fake.count("squeue") == 1
    assert all(monitor.status(str(i + 1)).state == "RUNNING" for i in range(100))


async def test_concurrent_polls_share_one_query(monitor, fake, fake_clock):
    for i in range(20):
        fake.jobs[str(i + 1)] = "RUNNING"
    results = await asyncio.gather(*(monitor.current(str(i + 1)) for i in range(20)))
    assert fake.count("squeue") == 1
    assert {r.state for r in results} == {"RUNNING"}


async def test_fast_then_backoff(monitor, fake, fake_clock):
    fake.jobs["5"] = "PENDING"
    monitor.watch("5", fast=True)
    await monitor.refresh()
    steps = []
    for _ in range(7):
        steps.append(monitor._next_due["5"] - fake_clock.t)
        await monitor.refresh()
    assert steps == [1, 2, 4, 8, 16, 30, 30]


async def test_unreachable_means_unknown_not_dead(monitor, fake, fake_clock):
    fake.jobs["1"] = "RUNNING"
    monitor.watch("1")
    await monitor.refresh()
    fake.down = True
    await monitor.refresh()
    st = monitor.status("1")
    assert st.state == UNKNOWN and st.active and not monitor.reachable
    fake.down = False
    await monitor.refresh()
    assert monitor.status("1").state == "RUNNING" and monitor.reachable


async def test_purged_job_is_gone(monitor, fake, fake_clock):
    fake.jobs["1"] = "RUNNING"
    fake.jobs["2"] = "RUNNING"
    monitor.watch("1")
    monitor.watch("2")
    await monitor.refresh()
    del fake.jobs["2"]
    await monitor.refresh()
    assert monitor.status("2").state == GONE and monitor.status("2").ended
    assert monitor.status("1").state == "RUNNING"


async def test_cancel_retried_when_slurm_returns(monitor, fake, fake_clock):
    fake.jobs["3"] = "RUNNING"
    fake.down = True
    monitor.cancel_later("alice", "3")
    await monitor.refresh()
    assert monitor.pending_cancels() == ["3"]
    fake.down = False
    await monitor.refresh()
    assert monitor.pending_cancels() == []
    assert fake.jobs["3"] == "CANCELLED"


async def test_queue_places_only_while_pending(monitor, fake, fake_clock):
    fake.jobs.update({"1": "PENDING", "2": "PENDING", "3": "RUNNING"})
    for j in ("1", "2", "3"):
        monitor.watch(j)
    await monitor.refresh()
    assert monitor.place("2").position == 2 and monitor.place("2").total == 2
    assert monitor.place("2").expected_start == "2026-11-26T12:00:00"
    fake.jobs.update({"1": "RUNNING", "2": "RUNNING"})
    fake.calls.clear()
    await monitor.refresh()
    assert not any("--start" in c for c in fake.calls)  # no --start query while nothing waits
    assert monitor.place("2") is None


async def test_running_jobs_are_polled_by_state_only_where_slurm_has_it(monitor, fake):
    fake.state_only = True  # Slurm 24.05 and later
    fake.jobs.update({"1": "RUNNING", "2": "PENDING"})
    for j in ("1", "2"):
        monitor.watch(j)
    await monitor.refresh()  # nothing known yet: the full query
    fake.calls.clear()
    await monitor.refresh()
    light = [c for c in fake.calls if "--only-job-state" in c]
    full = [c for c in fake.calls if c[-1].startswith("--format=%i|%T|%r")]
    assert len(light) == 1 and light[0][-2] == "--jobs=1"  # the running job, state only
    assert len(full) == 1 and full[0][-2] == "--jobs=2"  # the pending one, in full
    assert monitor.status("1").info.host == "vm"  # its details are kept
    fake.jobs["1"] = "COMPLETED"  # a changed state gets the full query, and is seen
    fake.calls.clear()
    await monitor.refresh()
    assert monitor.status("1").state == "COMPLETED"
    assert any(c[-2] == "--jobs=1,2" for c in fake.calls)


async def test_details_of_running_jobs_are_read_again_now_and_then(monitor, fake):
    from hpchub.spawner.monitor import DETAILS_EVERY

    fake.state_only = True
    fake.jobs["1"] = "RUNNING"
    monitor.watch("1")
    fake.calls.clear()
    for _ in range(DETAILS_EVERY):
        await monitor.refresh()
    full = [c for c in fake.calls if c[-1].startswith("--format=%i|%T|%r")]
    assert len(full) == 2  # the first round, and the DETAILS_EVERY-th


async def test_older_slurm_is_asked_once_for_state_only(monitor, fake):
    fake.jobs["1"] = "RUNNING"  # fake.state_only is False, like Slurm 22.05
    monitor.watch("1")
    for _ in range(4):
        await monitor.refresh()
    assert sum("--only-job-state" in c for c in fake.calls) == 1
    assert monitor.client.state_only is False
    assert monitor.status("1").state == "RUNNING"


async def test_pending_cancels_survive_a_restart(fake, fake_clock, tmp_path):
    from hpchub.config.models import SlurmSettings
    from hpchub.slurm.client import SlurmClient

    path = tmp_path / "cancels.json"
    fake.jobs["9"] = "RUNNING"
    fake.down = True
    m1 = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), 30, cancels_file=path)
    m1.cancel_later("alice", "9")
    m2 = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), 30, cancels_file=path)
    assert m2.pending_cancels() == ["9"]
    fake.down = False
    await m2.refresh()
    assert fake.jobs["9"] == "CANCELLED" and m2.pending_cancels() == []


async def test_slow_squeue_start_does_not_escape_a_round(monitor, fake, fake_clock):
    """A timed-out `squeue --start` used to escape refresh(), and start() then cancelled."""
    fake.clock = fake_clock
    fake.jobs["1"] = "PENDING"
    monitor.watch("1")
    fake.latency["squeue--start"] = 999
    await monitor.refresh()  # must not raise
    assert monitor.status("1").state == "PENDING" and monitor.reachable


async def test_slow_scancel_does_not_stop_the_rounds(monitor, fake, fake_clock):
    """A timed-out scancel of one job used to stop the monitor's rounds for every job."""
    fake.clock = fake_clock
    fake.jobs.update({"1": "PENDING", "3": "RUNNING"})
    monitor.watch("1")
    monitor.cancel_later("alice", "3")
    fake.latency["scancel"] = 999
    await monitor.refresh()  # must not raise
    fake.jobs["1"] = "RUNNING"
    await monitor.refresh()
    assert monitor.status("1").state == "RUNNING"
    assert monitor.pending_cancels() == ["3"]  # kept, and retried once Slurm is quick again
    fake.latency.clear()
    await monitor.refresh()
    assert fake.jobs["3"] == "CANCELLED" and monitor.pending_cancels() == []


async def test_garbage_from_squeue_is_unknown_never_dead(monitor, fake, fake_clock):
    fake.jobs["1"] = "RUNNING"
    monitor.watch("1")
    await monitor.refresh()
    fake.garbage.add("squeue")
    await monitor.refresh()
    st = monitor.status("1")
    assert st.active and not monitor.reachable


async def test_slow_squeue_means_unknown_never_dead(monitor, fake, fake_clock):
    fake.clock = fake_clock
    fake.jobs["1"] = "RUNNING"
    monitor.watch("1")
    await monitor.refresh()
    fake.latency["squeue"] = 999
    before = fake_clock.t
    await monitor.refresh()
    st = monitor.status("1")
    assert st.state == UNKNOWN and st.active and "did not answer" in st.error
    assert fake_clock.t - before == 30  # killed at its timeout, not waited for
