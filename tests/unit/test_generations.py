"""hpchub's parsers over output captured from both Slurm generations (Debian 12 and 13).

Each folder tests/unit/data/slurm-VERSION was written by `python -m hpchub_testbed.capture`
on a testbed of that generation (the 24.11 one inside `hpchub-testbed generation --run`):
four jobs of the outsider user on the batch partition (running, held, killed for memory,
completed), the sinfo, scontrol and sudo views, and jobs.json naming the job ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpchub.config.models import SlurmSettings
from hpchub.doctor.findings import Severity
from hpchub.doctor.sudo import judge_sudo, parse_sudo_ll
from hpchub.slurm.client import SlurmClient
from hpchub.slurm.explain import explain_end, explain_pending
from hpchub.slurm.parsers import (
    count_pending,
    parse_hub_jobs,
    parse_job_states,
    parse_queue_places,
    parse_sbatch_parsable,
    parse_scontrol_record,
    parse_sinfo_nodes,
    parse_sinfo_state,
    parse_squeue,
)
from hpchub.slurm.runner import Result
from hpchub_testbed.cluster import BATCH_NODE, parse_node_facts

DATA = Path(__file__).parent / "data"
GENERATIONS = sorted(p.name for p in DATA.glob("slurm-*"))


def test_both_generations_are_captured():
    assert GENERATIONS == ["slurm-22.05", "slurm-24.11"]


class Captured:
    def __init__(self, name: str):
        self.dir = DATA / name
        self.jobs = json.loads((self.dir / "jobs.json").read_text())

    def text(self, name: str) -> str:
        return (self.dir / name).read_text()

    def has(self, name: str) -> bool:
        return (self.dir / name).exists()


@pytest.fixture(params=GENERATIONS)
def cap(request) -> Captured:
    return Captured(request.param)


def test_versions_are_what_the_folder_says(cap):
    assert cap.dir.name == "slurm-" + ".".join(cap.jobs["slurm"].split(".")[:2])


def test_sbatch_parsable(cap):
    assert parse_sbatch_parsable(cap.text("sbatch_parsable.txt")) == cap.jobs["running"]


def test_squeue_jobs_in_every_state(cap):
    jobs = parse_squeue(cap.text("squeue_jobs.txt"))
    j = cap.jobs
    assert jobs[j["running"]].state == "RUNNING"
    assert jobs[j["running"]].host == BATCH_NODE
    assert jobs[j["running"]].partition == "batch"
    assert jobs[j["pending"]].state == "PENDING"
    assert jobs[j["pending"]].host is None
    assert explain_pending(jobs[j["pending"]].reason).startswith("held by you")
    assert jobs[j["oom"]].state == "OUT_OF_MEMORY" == j["oom_state"]
    assert "choose more memory" in explain_end(jobs[j["oom"]].state)
    assert jobs[j["completed"]].state == "COMPLETED"


def test_scontrol_show_job(cap):
    oom = parse_scontrol_record(cap.text("scontrol_job_oom.txt"))
    assert oom["JobId"] == cap.jobs["oom"]
    assert oom["JobState"] == "OUT_OF_MEMORY"
    assert oom["Reason"] == "OutOfMemory"
    assert oom["Comment"].strip() == "hpchub:capture"
    assert oom["NodeList"] == BATCH_NODE
    running = parse_scontrol_record(cap.text("scontrol_job_running.txt"))
    assert running["JobState"] == "RUNNING" and running["BatchHost"] == BATCH_NODE
    pending = parse_scontrol_record(cap.text("scontrol_job_pending.txt"))
    assert pending["JobState"] == "PENDING" and pending["Reason"] == "JobHeldUser"


def test_oom_message_in_the_jobs_log(cap):
    # 22.05 says "oom-kill event(s)", 24.11 "oom_kill event": match both, as the tests do.
    text = cap.text("oom_log.txt").replace("oom_kill", "oom-kill")
    assert "oom-kill event" in text and f"StepId={cap.jobs['oom']}.batch" in text


def test_queue_places_and_pending_counts(cap):
    places = parse_queue_places(cap.text("squeue_start.txt"))
    assert places[cap.jobs["pending"]].position >= 1
    assert count_pending(cap.text("squeue_pending_partitions.txt")).get("batch", 0) >= 1


def test_hub_jobs_by_comment(cap):
    jobs = {j.job_id: j for j in parse_hub_jobs(cap.text("squeue_hub_jobs.txt"), cap.jobs["hub"])}
    assert jobs[cap.jobs["running"]].state == "RUNNING"
    assert jobs[cap.jobs["running"]].nodes == BATCH_NODE
    assert jobs[cap.jobs["pending"]].state == "PENDING"
    assert parse_hub_jobs(cap.text("squeue_hub_jobs.txt"), "another-hub") == []


def test_sinfo_nodes_and_partitions(cap):
    nodes = parse_sinfo_nodes(cap.text("sinfo_nodes.txt"))
    assert {"vm", BATCH_NODE} <= set(nodes)
    assert nodes["vm"].cpus_total >= 8 and nodes["vm"].memory_mib > 0
    assert "batch" in nodes[BATCH_NODE].partitions
    parts = parse_sinfo_state(cap.text("sinfo_state.txt"))
    assert {"jupyter-short", "jupyter-long", "batch"} <= set(parts)
    assert parts["jupyter-short"].cpus_total >= 8
    assert parts["jupyter-short"].max_time == 12 * 3600


def test_slurmd_c(cap):
    facts = parse_node_facts(cap.text("slurmd_C.txt"))
    assert facts.name == "vm" and facts.cpus >= 1 and facts.memory_mib > 1000


def test_sudo_listing_of_the_hub_user(cap):
    entries = parse_sudo_ll(cap.text("sudo_ll_hub.txt"))
    mine = [e for e in entries if any("/opt/hpchub/current/" in c for c in e.commands)]
    assert len(mine) == 1
    assert mine[0].runas_users == ["%jupyter", "!root"]
    expected = ["/usr/bin/sbatch --parsable", "/usr/bin/scancel [0-9]*"]
    assert set(expected) <= set(mine[0].commands)
    findings = judge_sudo(mine, [*expected, *mine[0].commands[2:]], "jupyterhub-daemon")
    assert [f.severity for f in findings] == [Severity.OK]


def _replay(cap: Captured, calls: list):
    """A runner that answers squeue as the captured Slurm did."""

    async def runner(argv, **kw):
        calls.append(tuple(argv))
        if "--only-job-state" in argv:
            if cap.has("squeue_only_job_state.txt"):
                return Result(tuple(argv), 0, cap.text("squeue_only_job_state.txt"), "")
            return Result(tuple(argv), 1, "", cap.text("squeue_only_job_state.error.txt"))
        return Result(tuple(argv), 0, cap.text("squeue_jobs.txt"), "")

    return runner


async def test_state_only_poll_where_slurm_has_it(cap):
    calls: list = []
    client = SlurmClient(SlurmSettings(), runner=_replay(cap, calls))
    ids = [cap.jobs[k] for k in ("running", "pending", "oom", "completed")]
    full = await client.query(ids)
    assert len(calls) == 1 and "--only-job-state" not in calls[0]
    running = {cap.jobs["running"]: full[cap.jobs["running"]]}
    calls.clear()
    again = await client.query(ids, running)
    assert again[cap.jobs["running"]] == full[cap.jobs["running"]]
    assert again[cap.jobs["oom"]].state == "OUT_OF_MEMORY"
    newer = cap.has("squeue_only_job_state.txt")
    assert client.state_only is newer
    assert "--only-job-state" in calls[0]
    # Then the full query, without the running job where its state alone was enough.
    assert len(calls) == 2
    assert (cap.jobs["running"] in calls[1][-2]) is not newer
    if newer:
        states = parse_job_states(cap.text("squeue_only_job_state.txt"))
        assert states == {j: info.state for j, info in full.items()}
    else:
        calls.clear()
        await client.query(ids, running)  # learnt once: no second try on the older Slurm
        assert len(calls) == 1 and "--only-job-state" not in calls[0]
