"""SlurmSpawner in-process, on a fake Slurm that can be slow, fail and print garbage.

Built the way JupyterHub's own tests build spawners (``jupyterhub/tests/test_spawner.py``:
an in-memory hub database, a ``User`` and ``user._new_spawner``), with the fake runner put
in the spawner's ``runner``. Time is moved with the one clock, never slept.
"""

from __future__ import annotations

import asyncio

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.spawner import SpawnException
from jupyterhub.user import User

from hpchub.config.loader import parse_site
from hpchub.core import clock
from hpchub.slurm.livestate import LiveState
from hpchub.spawner.monitor import UNKNOWN, JobMonitor
from hpchub.spawner.slurm import SlurmSpawner

from .fakes import FakeClock, FakeSlurm

TOKEN = "the-servers-own-token"


@pytest.fixture
def t():
    fc = FakeClock(1_000_000.0)
    clock.set_clock(fc)
    yield fc
    clock.set_clock(None)


@pytest.fixture
def fake(t):
    f = FakeSlurm()
    f.clock = t
    return f


@pytest.fixture
def db(monkeypatch):
    # Each test gets its own hub-wide monitor and form cache, and a known account.
    monkeypatch.setattr(JobMonitor, "_shared", {})
    monkeypatch.setattr(LiveState, "_shared", {})
    monkeypatch.setattr("hpchub.spawner.job.home_of", lambda name: f"/home/{name}")
    monkeypatch.setattr("hpchub.spawner.options.groups_of", lambda name: ["jupyter"])
    session = orm.new_session_factory("sqlite:///:memory:")()
    session.add(orm.User(name="alice"))
    session.commit()
    yield session
    # Closed, not left to the GC: Python 3.13 warns about an unclosed SQLite connection.
    session.close()
    session.get_bind().dispose()


PROFILE = {
    "key": "small",
    "display_name": "Small",
    "partitions": ["jupyter-short"],
    "memory": "1G",
    "time": "1h",
}


def site_with(**singleuser):
    """The site model the spawner holds: one profile, and ``singleuser`` settings."""
    return parse_site({"profiles": [PROFILE], "singleuser": singleuser})


def new_spawner(db, fake, **kwargs) -> SlurmSpawner:
    """A SlurmSpawner for alice on the fake Slurm (as jupyterhub's tests build theirs)."""
    user = User(db.query(orm.User).filter_by(name="alice").one(), {})
    kwargs.setdefault("hub", Hub())
    kwargs.setdefault("runner", fake)
    kwargs.setdefault("site", site_with())
    kwargs.setdefault("api_token", TOKEN)
    kwargs.setdefault("oauth_client_id", "mock-client-id")
    kwargs.setdefault("cmd", ["jupyterhub-singleuser"])
    spawner = user._new_spawner("", spawner_class=SlurmSpawner, **kwargs)
    spawner.user_options = {"profile": "small"}
    return spawner


async def until(cond, rounds: int = 500) -> None:
    """Let the event loop run until ``cond()`` holds (no wall-clock waiting)."""
    for _ in range(rounds):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def started(spawner, fake) -> str:
    """Start, let the job run and report its port; the job id."""
    task = asyncio.ensure_future(spawner.start())
    await until(lambda: spawner.job_id)
    fake.jobs[spawner.job_id] = "RUNNING"
    spawner.port_reported(45001)
    assert await asyncio.wait_for(task, 10) == ("127.0.0.1", 45001)
    return spawner.job_id


async def test_start_submits_as_the_user_and_returns_the_node_and_port(db, fake):
    sp = new_spawner(db, fake)
    job_id = await started(sp, fake)
    sbatch = next(c for c in fake.calls if c[-1] == "--parsable")
    assert sbatch[:4] == ("/usr/bin/sudo", "-n", "-u", "alice")
    assert not any(TOKEN in a for a in sbatch)  # the token travels in the environment
    script = fake.stdin[fake.calls.index(sbatch)]
    assert "#SBATCH --comment=hpchub:hpchub" in script
    assert sp.get_state()["job_id"] == job_id and sp.resources["memory_mib"] == 1024


async def test_what_a_restart_needs_is_committed_when_known(db, fake):
    """The job id and the port reach the database at once (a rollback keeps them); the
    node's address waits for JupyterHub's own commit after start() returns."""
    sp = new_spawner(db, fake)
    task = asyncio.ensure_future(sp.start())
    await until(lambda: sp.job_id)
    db.rollback()
    assert sp.orm_spawner.state["job_id"] == sp.job_id
    fake.jobs[sp.job_id] = "RUNNING"
    sp.port_reported(45001)
    db.rollback()
    assert sp.orm_spawner.state["job_port"] == 45001
    await asyncio.wait_for(task, 10)
    assert sp.orm_spawner.state["job_host"] == "127.0.0.1"
    assert db.is_modified(sp.orm_spawner)  # staged, not committed by hpchub


async def test_refused_options_submit_nothing_and_keep_the_last_good_ones(db, fake):
    sp = new_spawner(db, fake)
    await started(sp, fake)
    await sp.stop()
    sp.clear_state()
    sp.user_options = {"profile": "huge"}
    sp.orm_spawner.user_options = {"profile": "huge"}
    fake.calls.clear()
    with pytest.raises(SpawnException) as err:
        await sp.start()
    assert err.value.status_code == 400 and "profile" in str(err.value)
    assert fake.count("sbatch") == 0
    assert sp.orm_spawner.user_options == {"profile": "small"}


async def test_sbatch_refusal_and_slowness_are_clear_errors(db, fake):
    sp = new_spawner(db, fake)
    fake.sbatch_error = "sbatch: error: Batch job submission failed: Invalid account"
    with pytest.raises(SpawnException, match="Slurm refused the job: .*Invalid account"):
        await sp.start()
    fake.sbatch_error = None
    fake.latency["sbatch"] = 999
    with pytest.raises(SpawnException, match="did not answer within 60 s"):
        await sp.start()
    assert not sp.job_id


async def test_slow_squeue_start_never_cancels_the_users_job(db, fake):
    """A timed-out `squeue --start` (while another job waits) used to fail start() and cancel."""
    sp = new_spawner(db, fake)
    fake.jobs["7"] = "PENDING"  # someone else's job, queued: the monitor asks for places
    sp.monitor.watch("7")
    fake.latency["squeue--start"] = 999
    job_id = await started(sp, fake)
    assert fake.jobs[job_id] == "RUNNING" and fake.count("scancel") == 0


async def test_pending_too_long_gives_up_and_cancels(db, fake, t):
    sp = new_spawner(db, fake, site=site_with(pending_timeout="10m"), poll_interval_s=0.01)
    task = asyncio.ensure_future(sp.start())
    await until(lambda: sp.job_id)
    job_id = sp.job_id
    await sp.monitor.refresh()
    t.t += 601  # the clock moves; nobody sleeps
    with pytest.raises(SpawnException, match="waited longer than 600 s"):
        await asyncio.wait_for(task, 10)
    assert fake.jobs[job_id] == "CANCELLED"


async def test_poll_running_unknown_garbage_and_ended(db, fake):
    sp = new_spawner(db, fake)
    job_id = await started(sp, fake)
    assert await sp.poll() is None
    fake.down = True
    await sp.monitor.refresh()
    assert sp.monitor.status(job_id).state == UNKNOWN
    assert await sp.poll() is None  # unreachable is unknown, never dead
    fake.down = False
    fake.garbage.add("squeue")
    await sp.monitor.refresh()
    assert await sp.poll() is None
    fake.garbage.clear()
    fake.jobs[job_id] = "FAILED"
    await sp.monitor.refresh()
    assert await sp.poll() == 1
    assert sp.last_exit["state"] == "FAILED" and job_id in sp.last_exit["message"]
    assert sp.last_exit["at"] == "1970-01-12T13:46:40+00:00"  # from the one (moved) clock


async def test_stop_cancels_and_a_slow_scancel_is_retried_by_the_monitor(db, fake):
    sp = new_spawner(db, fake)
    job_id = await started(sp, fake)
    fake.latency["scancel"] = 999
    await sp.stop()  # must neither raise nor hang
    assert sp.monitor.pending_cancels() == [job_id]
    fake.jobs["8"] = "RUNNING"
    sp.monitor.watch("8")
    await sp.monitor.refresh()  # the slow scancel does not stop the round for other jobs
    assert sp.monitor.status("8").state == "RUNNING"
    fake.latency.clear()
    await sp.monitor.refresh()
    assert fake.jobs[job_id] == "CANCELLED" and sp.monitor.pending_cancels() == []


async def test_stop_waits_until_slurm_lets_go(db, fake):
    sp = new_spawner(db, fake)
    job_id = await started(sp, fake)
    await sp.stop()
    assert fake.jobs[job_id] == "CANCELLED"
    assert sp.monitor.status(job_id).ended


def _with_server(sp: SlurmSpawner, db) -> SlurmSpawner:
    sp.orm_spawner.server = orm.Server(base_url="/user/alice/")
    db.commit()
    return sp


async def test_resume_after_a_restart_finds_the_running_server(db, fake):
    sp = new_spawner(db, fake)
    job_id = await started(sp, fake)
    state = sp.get_state()
    JobMonitor._shared.clear()  # the hub restarts: a new monitor, a new spawner
    sp2 = _with_server(new_spawner(db, fake), db)
    sp2.load_state(state)
    assert sp2.job_id == job_id and sp2.monitor.tracked() == [job_id]
    assert await sp2.get_url() == "http://127.0.0.1:45001/user/alice/"
    assert await sp2.poll() is None


async def test_resume_a_start_interrupted_by_a_restart(db, fake):
    sp = new_spawner(db, fake)
    task = asyncio.ensure_future(sp.start())
    await until(lambda: sp.job_id)
    state = sp.get_state()
    task.cancel()  # the hub stops while the job waits in the queue
    with pytest.raises(asyncio.CancelledError):
        await task
    JobMonitor._shared.clear()
    sp2 = _with_server(new_spawner(db, fake), db)
    sp2.load_state(state)
    url = asyncio.ensure_future(sp2.get_url())
    await until(lambda: getattr(sp2, "_port_future", None) is not None)
    fake.jobs[sp2.job_id] = "RUNNING"
    sp2.port_reported(45002)
    assert await asyncio.wait_for(url, 10) == "http://127.0.0.1:45002/user/alice/"
    assert fake.jobs[sp2.job_id] == "RUNNING"  # resumed, not cancelled or orphaned


def test_the_callback_token_check(db, fake):
    sp = new_spawner(db, fake)
    assert not sp.owns_token(TOKEN)  # no start yet: no server may report
    from hpchub.spawner.slurm import token_digest

    sp.token_sha256 = token_digest(TOKEN)
    assert sp.owns_token(TOKEN)
    assert not sp.owns_token("someone-elses-token") and not sp.owns_token("")


async def test_the_job_script_names_the_release_current_points_at_not_the_link(db, fake, tmp_path):
    # A later upgrade switches `current`; this job must keep running from its own release.
    release = tmp_path / "releases" / "1.0-a"
    (release / "bin").mkdir(parents=True)
    (tmp_path / "current").symlink_to("releases/1.0-a")
    link_bin = tmp_path / "current" / "bin"
    site = site_with(prefix=str(tmp_path / "current"))
    sp = new_spawner(db, fake, site=site, cmd=[f"{link_bin}/hpchub-jupyterhub-singleuser"])
    await started(sp, fake)
    sbatch = next(c for c in fake.calls if c[-1] == "--parsable")
    script = fake.stdin[fake.calls.index(sbatch)]
    assert f"export PATH={release}/bin:" in script
    assert f"exec {release}/bin/hpchub-singleuser " in script
    assert f"{release}/bin/hpchub-jupyterhub-singleuser" in script
    assert "/current/" not in script
