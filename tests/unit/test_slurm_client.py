import pytest

from hpchub.config.models import SlurmSettings
from hpchub.slurm.client import SlurmClient, SlurmError, SlurmUnavailable

from .fakes import FakeSlurm


@pytest.fixture
def fake():
    return FakeSlurm()


@pytest.fixture
def client(fake):
    return SlurmClient(SlurmSettings(), runner=fake)


async def test_submit_is_argv_through_sudo_with_env_by_name(client, fake):
    jid = await client.submit(
        "alice", "#!/bin/bash\n", {"JUPYTERHUB_API_TOKEN": "s3cret", "LANG": "C"}
    )
    assert jid == "100"
    argv = fake.calls[0]
    assert argv[:4] == ("/usr/bin/sudo", "-n", "-u", "alice")
    assert "--preserve-env=JUPYTERHUB_API_TOKEN,LANG" in argv
    assert argv[-2:] == ("/usr/bin/sbatch", "--parsable")
    assert not any("s3cret" in a for a in argv)  # the secret is never on a command line
    assert fake.envs[0]["JUPYTERHUB_API_TOKEN"] == "s3cret"
    assert fake.stdin[0] == "#!/bin/bash\n"


async def test_sbatch_message_is_kept(client, fake):
    fake.sbatch_error = (
        "sbatch: error: Batch job submission failed: Invalid partition name specified"
    )
    with pytest.raises(SlurmError, match="Invalid partition name specified"):
        await client.submit("alice", "x", {})


async def test_controller_down_is_unavailable(client, fake):
    fake.down = True
    with pytest.raises(SlurmUnavailable):
        await client.query(["1"])


@pytest.mark.parametrize("user", ["root;id", "-u", "Alice", "a b", ""])
async def test_bad_user_never_runs(client, fake, user):
    with pytest.raises(ValueError):
        await client.submit(user, "x", {})
    assert fake.calls == []


@pytest.mark.parametrize("jid", ["1;id", "-1", "abc", "1 2"])
async def test_bad_job_id_never_runs(client, fake, jid):
    with pytest.raises(ValueError):
        await client.cancel("alice", jid)
    assert fake.calls == []


async def test_bad_env_name(client):
    with pytest.raises(ValueError):
        await client.submit("alice", "x", {"A=B": "1"})


async def test_query_many_in_one_call_without_sudo(client, fake):
    ids = [await client.submit("alice", "x", {}) for _ in range(5)]
    fake.calls.clear()
    jobs = await client.query(ids)
    assert len(fake.calls) == 1 and "/usr/bin/sudo" not in fake.calls[0]
    assert set(jobs) == set(ids)


async def test_cancel_of_gone_job_is_fine(client):
    await client.cancel("alice", "9999")


async def test_command_timeout_is_a_timeout_error(client, fake):
    from hpchub.slurm.runner import CommandTimeout

    assert issubclass(CommandTimeout, TimeoutError)
    fake.latency["scontrol"] = 999
    assert await client.job_details("5") == {}  # details are optional: slow means none
