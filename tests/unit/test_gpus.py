"""GPUs from Slurm's GRES: parsed as 22.05 and 24.11 print them, offered on the form, checked
in the request (form, query string and REST API share it) and asked of Slurm in the job."""

import datetime as dt
from pathlib import Path

import pytest

from hpchub.config.loader import parse_site
from hpchub.form.render import render_form
from hpchub.resources.catalog import Catalog
from hpchub.resources.request import OptionsError, resolve_request
from hpchub.slurm.livestate import Snapshot
from hpchub.slurm.parsers import parse_gpus, parse_sinfo_state
from hpchub.spawner.job import sbatch_lines
from hpchub.spawner.progress import running_note

DATA = Path(__file__).parent / "data"
# Captured on the testbed (Debian 12 and, through `hpchub-testbed generation`, 13) with one of
# the batch node's two stand-in GPUs allocated. Nodes without GRES show GresUsed 'gpu:0' in
# 22.05 and '(null)' in 24.11; a node whose gres.conf names cores shows 'gpu:tesla:2(S:0)'.
GENERATIONS = ["slurm-22.05", "slurm-24.11"]


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [
        ("gpu:tesla:2", {"tesla": 2}),
        ("gpu:tesla:2(S:0)", {"tesla": 2}),
        ("gpu:tesla:1(IDX:0)", {"tesla": 1}),
        ("gpu:tesla:0(IDX:N/A)", {"tesla": 0}),
        ("gpu:2", {"": 2}),
        ("gpu:0", {"": 0}),
        ("gpu:a100:4(S:0,1),gpu:v100:1(S:1),mps:100", {"a100": 4, "v100": 1}),
        ("gpu:a100:2(IDX:0-1),gpu:a100:1(IDX:3)", {"a100": 3}),
        ("(null)", {}),
        ("", {}),
        ("gpu:tesla:x", {}),
    ],
)
def test_parse_gpus(gres, gpus):
    assert parse_gpus(gres) == gpus


@pytest.mark.parametrize("generation", GENERATIONS)
def test_partitions_count_gpus_per_type_and_node(generation):
    parts = parse_sinfo_state((DATA / generation / "sinfo_state_gpus.txt").read_text())
    batch = parts["batch"]
    assert (batch.gpus, batch.node_gpus, batch.node_gpus_any) == ({"tesla": 2}, {"tesla": 2}, 2)
    assert (batch.gpus_free("tesla"), batch.gpus_total, batch.gpus_used) == (1, 2, 1)
    short = parts["jupyter-short"]
    assert (short.gpus, short.node_gpus_any, short.gpus_total) == ({}, 0, 0)
    limits = Snapshot(0.0, parts).limits()
    assert (limits["batch"].gpus, limits["batch"].gpu_types) == (2, {"tesla": 2})
    assert limits["jupyter-short"].gpu_types == {}


SITE = parse_site(
    {
        "slurm": {
            "partitions": [
                {"name": "jupyter-short", "max_time": "12h"},
                {"name": "jupyter-long", "max_time": "7d", "max_gpus": 0},
                {"name": "jupyter-overflow", "max_time": "12h"},
                {"name": "batch", "max_time": "7d"},
                {"name": "small-gpu", "max_gpus": 1},
            ]
        },
        "profiles": [
            {
                "key": "one-gpu",
                "display_name": "One GPU",
                "partitions": ["batch"],
                "memory": "1G",
                "time": "1h",
                "gpus": 1,
                "gpu_type": "tesla",
            },
            {
                "key": "four-gpus",
                "display_name": "Four GPUs",
                "partitions": ["batch"],
                "memory": "1G",
                "time": "1h",
                "gpus": 4,
            },
        ],
        "custom": {
            "partitions": ["jupyter-short", "jupyter-long", "batch", "small-gpu"],
            "max_gpus": 3,
        },
    }
)
CAT = Catalog.from_site(SITE)


def _snapshot(generation="slurm-22.05") -> Snapshot:
    parts = parse_sinfo_state((DATA / generation / "sinfo_state_gpus.txt").read_text())
    small = parse_sinfo_state(
        "gpu9|idle|0/8/0/8|6144|0|small-gpu|1:00:00|gpu:tesla:2,gpu:a100:1|gpu:0\n"
    )
    return Snapshot(0.0, {**parts, **small})


def resolve(opts, live=True):
    return resolve_request(opts, CAT, "alice", set(), _snapshot().limits() if live else None)


def test_custom_gpus_within_what_a_node_has():
    r = resolve({"profile": "custom", "partition": "batch", "gpus": "2", "gpu_type": "tesla"})
    assert (r.gpus, r.gpu_type) == (2, "tesla")
    assert sbatch_lines(r, ()) == ("--gres=gpu:tesla:2",)
    assert r.to_options()["gpu_type"] == "tesla"
    r = resolve({"profile": "custom", "partition": "batch", "gpus": "1"})
    assert sbatch_lines(r, ()) == ("--gres=gpu:1",)
    # A type without a count asks for nothing (the form sends its select either way).
    r = resolve({"profile": "custom", "partition": "batch", "gpus": "0", "gpu_type": "tesla"})
    assert (r.gpus, r.gpu_type, sbatch_lines(r, ())) == (0, None, ())


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (
            {"partition": "batch", "gpus": "3", "gpu_type": "tesla"},
            "gpus: partition batch has at most 2 tesla GPUs per node; you asked for 3",
        ),
        (
            {"partition": "batch", "gpus": "3"},
            "gpus: partition batch has at most 2 GPUs per node; you asked for 3",
        ),
        (
            {"partition": "batch", "gpus": "1", "gpu_type": "a100"},
            "gpu_type: partition batch has no 'a100' GPUs (it has tesla)",
        ),
        (
            {"partition": "jupyter-short", "gpus": "1"},
            "gpus: partition jupyter-short has no GPUs; partitions with GPUs: batch, small-gpu",
        ),
        (
            {"partition": "jupyter-long", "gpus": "1"},
            "gpus: partition jupyter-long offers no GPUs on this site; partitions with GPUs: "
            "batch, small-gpu",
        ),
        (
            {"partition": "small-gpu", "gpus": "2", "gpu_type": "tesla"},
            "gpus: a custom server in partition small-gpu may have at most 1 tesla GPU on this "
            "site; you asked for 2",
        ),
        ({"partition": "batch", "gpus": "65"}, "gpus: Input should be less than or equal to 64"),
        ({"partition": "batch", "gpus": "1", "gpu_type": "tes la"}, "gpu_type"),
    ],
)
def test_custom_gpus_beyond_the_partition_are_refused_with_what_is_possible(opts, message):
    with pytest.raises(OptionsError) as e:
        resolve({"profile": "custom", **opts})
    assert message in str(e.value)


def test_without_live_state_the_site_caps_still_hold():
    r = resolve({"profile": "custom", "partition": "jupyter-short", "gpus": "3"}, live=False)
    assert r.gpus == 3  # Slurm itself refuses at sbatch what no node has
    with pytest.raises(OptionsError, match="may have at most 3 GPUs on this site"):
        resolve({"profile": "custom", "partition": "batch", "gpus": "4"}, live=False)


def test_a_profile_pins_gpus_and_is_refused_when_no_node_has_them():
    r = resolve({"profile": "one-gpu"})
    assert sbatch_lines(r, ()) == ("--gres=gpu:tesla:1",)
    with pytest.raises(OptionsError) as e:
        resolve({"profile": "four-gpus"})
    assert "profile: 'four-gpus' asks for 4 GPUs per server, which no node of batch has" in str(
        e.value
    )
    with pytest.raises(OptionsError, match="gpus: can only be set with profile 'custom'"):
        resolve({"profile": "one-gpu", "gpus": "2"})


@pytest.mark.parametrize("generation", GENERATIONS)
def test_form_offers_gpu_type_and_count_with_what_is_free(generation):
    html = render_form(CAT, "alice", set(), _snapshot(generation), {"profile": "custom"})
    assert 'name="gpus"' in html and 'max="3"' in html
    assert '<option value="tesla">tesla</option>' in html
    assert '<option value="a100">a100</option>' in html
    assert "batch: up to 2 tesla (1 free now)" in html
    assert "small-gpu: up to 1 a100 (1 free now), 1 tesla (2 free now)" in html
    assert "jupyter-short: up to" not in html and "jupyter-long: up to" not in html
    assert "batch (6044M memory free, no queue, 1 of 2 tesla GPUs free)" in html
    assert "<dt>GPUs</dt><dd>1 tesla</dd>" in html  # the profile that pins one
    assert "jupyter-long (8G memory free, no queue)<" in html  # no GPUs offered there
    again = render_form(
        CAT, "alice", set(), _snapshot(), {"profile": "custom", "gpus": 2, "gpu_type": "tesla"}
    )
    assert '<option value="tesla" selected>' in again and 'value="2"' in again


def test_form_has_no_gpu_fields_where_the_site_offers_none():
    from .test_resources import CAT as NO_GPUS

    html = render_form(NO_GPUS, "alice", {"power"}, _snapshot(), {"profile": "custom"})
    assert 'name="gpus"' not in html and 'name="gpu_type"' not in html


def test_the_home_page_says_which_gpus_the_server_has():
    now = dt.datetime(2026, 1, 1)
    note = running_note("hpchub-batch1", "7", None, None, now, 2, "tesla")
    assert note == "Running on hpchub-batch1 with 2 tesla GPUs as Slurm job 7."
    assert running_note("vm", "7", None, None, now).startswith("Running on vm as Slurm job 7.")


def test_a_profile_may_not_pin_more_gpus_than_its_partition_allows():
    from hpchub.config.loader import SiteConfigError

    with pytest.raises(SiteConfigError) as e:
        parse_site(
            {
                "slurm": {"partitions": [{"name": "cpu", "max_gpus": 0}]},
                "profiles": [
                    {
                        "key": "g",
                        "display_name": "G",
                        "partitions": ["cpu"],
                        "memory": "1G",
                        "time": "1h",
                        "gpus": 1,
                    }
                ],
            }
        )
    assert "profiles[0].gpus: 1 is more than partition 'cpu' allows (0)" in str(e.value)
