"""Accounting and a private queue: what the hub says about ended jobs, and what it never
concludes from a job it cannot see (slurm.conf's PrivateData=jobs). Real captured output where
the cluster printed it (tests/unit/data), the fake Slurm for the rest."""

from pathlib import Path

import pytest

from hpchub.config.models import SlurmSettings
from hpchub.slurm.client import SlurmClient
from hpchub.slurm.explain import explain_end
from hpchub.slurm.parsers import parse_private_data, parse_sacct
from hpchub.spawner.monitor import GONE, HIDDEN, UNSEEN_GRACE, VISIBILITY_RECHECK, JobMonitor

DATA = Path(__file__).parent / "data"


def test_sacct_record_of_an_oom_kill_and_a_completed_job_from_slurm_22_05():
    text = (DATA / "sacct_22.05.txt").read_text()
    oom = parse_sacct(text, "745")
    assert (oom.state, oom.exit_code, oom.requested_mib, oom.peak_mib) == (
        "OUT_OF_MEMORY",
        "0:125",
        100,
        None,  # killed before the first sample: MaxRSS 0 is "not known", not "nothing"
    )
    done = parse_sacct(text, "746")
    assert done.state == "COMPLETED" and done.requested_mib == 1000
    assert done.peak_mib == pytest.approx(310204 / 1024)
    assert parse_sacct(text, "74") is None  # a prefix of another id is not that job


def test_end_words_name_the_peak_memory_against_the_request():
    text = (DATA / "sacct_22.05.txt").read_text()
    words = explain_end("GONE", None, parse_sacct(text, "746"))
    assert words.startswith("COMPLETED:") and "you used 303M of the 1000M you asked for" in words
    oom = explain_end("GONE", None, parse_sacct(text, "745"))
    assert oom.startswith("OUT_OF_MEMORY:") and "you asked for 100M" in oom
    big = parse_sacct("9|FAILED|1:0|4G||01:00:00\n9.batch|FAILED|1:0||4089446K|01:00:00\n", "9")
    assert "you used 3.9G of the 4.0G you asked for" in explain_end("GONE", None, big)
    assert "exit code 1:0" in explain_end("GONE", None, big)
    # Older Slurm wrote the request per node or per CPU ('4Gn', '2Gc').
    assert parse_sacct("9|COMPLETED|0:0|4Gn||00:01:00\n", "9").requested_mib == 4096


def test_private_data_from_scontrol_show_config():
    assert parse_private_data("PrivateData             = jobs,usage,users\n") == {
        "jobs",
        "usage",
        "users",
    }
    assert parse_private_data("PrivateData             = none\n") == frozenset()


async def test_without_accounting_sacct_is_asked_once_and_scontrol_explains(fake):
    fake.accounting = False
    client = SlurmClient(SlurmSettings(), runner=fake)
    assert await client.history("5") is None
    assert await client.history("6") is None
    assert fake.count("sacct") == 1 and client.accounting is False


async def test_the_real_disabled_message_turns_accounting_off(fake):
    fake.accounting = False
    real = (DATA / "sacct_disabled_22.05.txt").read_text().strip()
    assert real == "Slurm accounting storage is disabled"
    client = SlurmClient(SlurmSettings(), runner=fake)
    await client.history("5")
    assert client.accounting is False


@pytest.mark.parametrize(
    ("private", "level", "sees_all"),
    [
        ("none", "None", True),
        ("usage,users", "None", True),
        ("jobs,usage,users", "Operator", True),
        ("jobs,usage,users", "Administrator", True),
        ("jobs,usage,users", "None", False),
        ("jobs", "", False),  # not in accounting at all
    ],
)
async def test_visibility(fake, private, level, sees_all):
    fake.private_data, fake.admin_level = private, level
    seen = await SlurmClient(SlurmSettings(), runner=fake).visibility("jupyterhub-daemon")
    assert seen.sees_all is sees_all
    if not sees_all:
        words = seen.explain("jupyterhub-daemon")
        assert "cannot see other users' jobs" in words and "hub-operator.sh" in words


async def test_a_hidden_job_is_never_called_gone(fake, fake_clock):
    """The admin's worry: PrivateData=jobs and a hub that is no operator. squeue as the hub
    prints 'Invalid job id' for a running job exactly as for a purged one."""
    fake.private_data, fake.admin_level = "jobs,usage,users", "None"
    fake.jobs["7"] = "RUNNING"
    mon = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)
    mon.watch("7")
    await mon.refresh()
    st = mon.status("7")
    assert st.state == HIDDEN and st.active and "PrivateData" in st.error
    assert mon.blind
    # The admin makes the hub an operator; the next look (10 minutes on) sees the job again.
    fake.admin_level = "Operator"
    fake_clock.t += VISIBILITY_RECHECK
    await mon.refresh()
    assert mon.status("7").state == "RUNNING" and not mon.blind
    del fake.jobs["7"]
    await mon.refresh()
    assert mon.status("7").state == GONE


async def test_visibility_is_looked_at_once_per_interval(fake, fake_clock):
    mon = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)
    fake.jobs["7"] = "RUNNING"
    mon.watch("7")
    for _ in range(5):
        await mon.refresh()
        fake_clock.t += 30
    # (and one try of squeue --only-job-state, which this fake, like Slurm 22.05, refuses)
    assert fake.count("scontrol") == 1 and fake.count("squeue") == 5 + 1


async def test_a_failed_look_keeps_the_monitor_going(fake, fake_clock):
    fake.fail["scontrol"] = "slurm_load_ctl_conf error: Unable to contact slurm controller"
    mon = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)
    fake.jobs["7"] = "RUNNING"
    mon.watch("7")
    await mon.refresh()
    assert mon.status("7").state == "RUNNING" and mon.visibility is None


async def test_accounting_overrules_a_missing_job_that_still_runs(fake, fake_clock):
    """The hub thinks it sees everything, yet squeue leaves out a job that accounting says is
    running (its view of its operator level lagged a change): not gone, and it looks again."""
    mon = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)
    fake.jobs["7"] = "RUNNING"
    mon.watch("7")
    await mon.refresh()
    del fake.jobs["7"]
    fake.history["7"] = "7|RUNNING|0:0|1G||00:10:00\n"
    await mon.refresh()
    st = mon.status("7")
    assert st.state == HIDDEN and "accounting says it is RUNNING" in st.error
    fake.history["7"] = "7|COMPLETED|0:0|1G||00:10:00\n"
    fake_clock.t += 30
    await mon.refresh()
    assert mon.status("7").state == GONE
    assert fake.count("scontrol") == 2  # the visibility was looked at again


async def test_a_job_not_yet_in_squeue_is_not_gone_at_once(fake, fake_clock):
    mon = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)
    mon.watch("8", fast=True)  # submitted, but squeue does not list it (yet)
    for _ in range(3):  # every round within the grace, not only the first
        await mon.refresh()
        assert mon.status("8").state == HIDDEN and mon.status("8").active
        fake_clock.t += 1
    fake_clock.t += UNSEEN_GRACE
    await mon.refresh()
    assert mon.status("8").state == GONE


async def test_jobs_that_leave_squeue_together_cost_one_sacct(fake, fake_clock):
    mon = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)
    for j in ("1", "2", "3"):
        fake.jobs[j] = "RUNNING"
        mon.watch(j)
    await mon.refresh()
    fake.jobs.clear()
    fake.history["2"] = "2|RUNNING|0:0|1G||00:10:00\n"
    await mon.refresh()
    assert fake.count("sacct") == 1
    assert [mon.status(j).state for j in ("1", "2", "3")] == [GONE, HIDDEN, GONE]


async def test_a_hub_that_loses_its_operator_level_between_looks_says_hidden(fake, fake_clock):
    """The hub looked (operator, sees all) a minute ago; then an admin takes the level away.
    The running job vanishes from squeue and from sacct at once: not GONE, the hub looks
    again at once and says why it cannot tell."""
    fake.private_data, fake.admin_level = "jobs,usage,users", "Operator"
    fake.jobs["7"] = "RUNNING"
    mon = JobMonitor(SlurmClient(SlurmSettings(), runner=fake), interval=30)
    mon.watch("7")
    await mon.refresh()
    assert mon.status("7").state == "RUNNING" and not mon.blind
    fake.admin_level = "None"
    fake_clock.t += 30  # well inside the 10 minutes between looks
    await mon.refresh()
    st = mon.status("7")
    assert st.state == HIDDEN and st.active and mon.blind
