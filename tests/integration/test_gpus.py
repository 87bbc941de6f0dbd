"""Issue 16, GPUs, on the testbed: the batch node's two stand-in tesla GPUs (gres.conf) are
offered on the form, a request beyond them is refused on every path, and a server gets
exactly the GPUs it asked for (Slurm's --gres, CUDA_VISIBLE_DEVICES in its environment)."""

from __future__ import annotations

import html
import re
import subprocess

from .conftest import squeue_ids
from .test_spawn_form import batch_script, form_post, job_of

TOO_MANY = "gpus: partition batch has at most 2 tesla GPUs per node; you asked for 3"
ASK = {"profile": "custom", "partition": "batch", "memory": "256M", "gpu_type": "tesla"}
ENV_PROBE = (
    "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'), os.environ.get('SLURM_JOB_GPUS'))"
)


def test_the_form_offers_the_partitions_gpus(alice):
    page = alice.s.get(alice.base + "/hub/spawn").text
    # Selected when the form remembers alice's last choice.
    assert re.search(r'<option value="tesla"( selected)?>tesla</option>', page)
    assert "batch: up to 2 tesla (" in page  # and how many are free now
    assert "GPUs free)</option>" in page


def test_beyond_the_partition_is_refused_on_form_query_string_and_api(alice):
    r = form_post(alice, {**ASK, "gpus": "3", "cpus": "1", "time": "1h"})
    assert r.status_code == 400 and TOO_MANY in html.unescape(r.text)
    r = alice.s.get(alice.base + "/hub/spawn", params={**ASK, "gpus": "3"}, allow_redirects=False)
    assert r.status_code == 400 and TOO_MANY in html.unescape(r.text)
    r = alice.start(options={**ASK, "gpus": 3})
    assert r.status_code == 400 and TOO_MANY in r.json()["message"]
    r = alice.start(options={**ASK, "partition": "jupyter-short", "gpus": 1})
    assert r.status_code == 400
    assert "partition jupyter-short has no GPUs; partitions with GPUs: batch" in r.json()["message"]
    assert squeue_ids("alice") == []


def test_a_server_gets_exactly_the_gpus_it_asked_for(alice):
    r = alice.start(options={**ASK, "gpus": 1})
    assert r.status_code in (201, 202), r.text
    try:
        alice.wait_ready()
        job = job_of("alice")
        assert job["node"] == "hpchub-batch1"
        assert "#SBATCH --gres=gpu:tesla:1" in batch_script(job["id"])
        shown = subprocess.run(
            ["scontrol", "show", "job", job["id"]], capture_output=True, text=True, check=True
        ).stdout
        assert re.search(r"TresPerNode=gres[:/]gpu:tesla:1\b", shown)  # ':' 22.05, '/' 24.11
        visible, job_gpus = alice.run_code(ENV_PROBE).split()
        assert visible == job_gpus and visible in ("0", "1")  # one GPU, Slurm's index
        assert "Running on hpchub-batch1 with 1 tesla GPU as Slurm job" in alice.home()
    finally:
        alice.stop()
        alice.wait_stopped()
