"""Parsers against output captured from the real Slurm 22.05 on the testbed."""

import pytest

from hpchub.slurm.explain import explain_end, explain_pending
from hpchub.slurm.parsers import (
    SlurmParseError,
    parse_sbatch_parsable,
    parse_scontrol_record,
    parse_sinfo_nodes,
    parse_squeue,
)


def test_squeue_running(data_dir):
    jobs = parse_squeue((data_dir / "squeue_running.txt").read_text())
    job = jobs["1"]
    assert job.state == "RUNNING" and job.host == "vm" and job.partition == "jupyter-short"


def test_squeue_pending_has_no_host():
    jobs = parse_squeue("7|PENDING|Resources|n/a|N/A|jupyter-short|2:00:00|\n")
    assert jobs["7"].host is None and jobs["7"].reason == "Resources"


def test_squeue_garbage():
    with pytest.raises(SlurmParseError):
        parse_squeue("this is not squeue\n")


def test_sinfo_nodes(data_dir):
    nodes = parse_sinfo_nodes((data_dir / "sinfo_nodes.txt").read_text())
    vm = nodes["vm"]
    assert vm.address == "127.0.0.1"
    assert vm.cpus_total == 8 and vm.cpus_alloc == 1
    assert set(vm.partitions) == {"jupyter-short", "jupyter-long", "jupyter-overflow", "batch"}


def test_scontrol_record(data_dir):
    rec = parse_scontrol_record((data_dir / "scontrol_job.txt").read_text())
    assert rec["JobId"] == "1"
    assert rec["JobState"] == "RUNNING"
    assert rec["ExitCode"] == "0:0"
    assert rec["UserId"] == "alice(1001)"


@pytest.mark.parametrize(("out", "jid"), [("123\n", "123"), ("123;cluster\n", "123")])
def test_sbatch_parsable(out, jid):
    assert parse_sbatch_parsable(out) == jid


@pytest.mark.parametrize("out", ["", "Submitted batch job x\n", "abc"])
def test_sbatch_parsable_garbage(out):
    with pytest.raises(SlurmParseError):
        parse_sbatch_parsable(out)


def test_explanations():
    assert "free CPUs or memory" in explain_pending("Resources")
    assert explain_pending("(Priority)").startswith("waiting behind")
    assert explain_pending("SomethingNew") == "Slurm says: SomethingNew"
    assert "more memory" in explain_end("OUT_OF_MEMORY")
    assert "exit code 1:0" in explain_end("FAILED", "1:0")
    assert "time limit" in explain_end("TIMEOUT")


def test_queue_places():
    from hpchub.slurm.parsers import parse_queue_places

    out = "12|jupyter-short,jupyter-overflow|100|2026-11-26T10:00:00\n13|jupyter-short|200|N/A\n14|batch|5|N/A\n"
    places = parse_queue_places(out)
    assert (places["13"].position, places["13"].total, places["13"].expected_start) == (1, 2, None)
    assert (places["12"].position, places["12"].expected_start) == (2, "2026-11-26T10:00:00")
    assert places["14"].position == 1 and places["14"].total == 1
