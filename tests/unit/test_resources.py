import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpchub.config.models import Partition, ResourceDefaults
from hpchub.resources.request import OptionsError, resolve_request
from hpchub.slurm.jobscript import JobRequest, render_job_script

PARTS = [
    Partition(name="jupyter-short", max_time="12h", max_memory="16G", max_cpus=8),
    Partition(name="jupyter-long", max_time="7d", max_memory="4G"),
]
DEFAULTS = ResourceDefaults(memory="2G", cpus=1, time="8h")


def resolve(opts):
    return resolve_request(opts, PARTS, "jupyter-short", DEFAULTS)


def test_defaults():
    r = resolve({})
    assert (r.partitions, r.memory_mib, r.cpus, r.time_seconds) == (
        ("jupyter-short",),
        2048,
        1,
        28800,
    )


def test_form_lists_and_strings():
    r = resolve({"partition": ["jupyter-long"], "memory": ["4G"], "cpus": ["2"], "time": ["3d"]})
    assert (r.partitions, r.memory_mib, r.cpus, r.time_seconds) == (
        ("jupyter-long",),
        4096,
        2,
        3 * 86400,
    )


@pytest.mark.parametrize(
    ("opts", "needle"),
    [
        ({"partition": "batch"}, "partition: 'batch' is not offered"),
        ({"memory": "32G"}, "memory: 32G is more than jupyter-short allows (1M to 16G)"),
        ({"time": "13h"}, "time: 13h is longer than jupyter-short allows (1m to 12h)"),
        ({"cpus": "9"}, "cpus: 9 is more than jupyter-short allows (1 to 8)"),
        ({"memory": "4X"}, "memory"),
        ({"cpus": "0"}, "cpus"),
        ({"exec_prefix": "x"}, "exec_prefix: unknown key"),
        ({"memory": "4G\n#SBATCH --uid=0"}, "memory: must be a single line"),
        ({"memory": ["1G", "2G"]}, "give exactly one value"),
    ],
)
def test_rejections_name_field_and_range(opts, needle):
    with pytest.raises(OptionsError) as e:
        resolve(opts)
    assert needle in str(e.value)


ALLOWED_SBATCH = {
    "--job-name",
    "--partition",
    "--time",
    "--mem",
    "--cpus-per-task",
    "--nodes",
    "--ntasks",
    "--output",
    "--chdir",
    "--signal",
    "--export",
}

anything = st.one_of(
    st.text(max_size=40), st.integers(-10, 10**7), st.lists(st.text(max_size=10), max_size=2)
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["partition", "memory", "cpus", "time", "x", "exec_prefix"]), anything
    )
)
def test_any_accepted_input_renders_only_allowed_lines(opts):
    try:
        r = resolve(opts)
    except OptionsError:
        return
    script = render_job_script(
        JobRequest(
            user="alice",
            server_name="",
            partitions=r.partitions,
            memory_mib=r.memory_mib,
            cpus=r.cpus,
            time_seconds=r.time_seconds,
            log_dir="/home/alice/.hpchub/logs",
            workdir="/home/alice",
            prefix_bin="/opt/hpchub/env/bin",
            port_low=40000,
            port_high=49999,
        )
    )
    lines = script.splitlines()
    sb = [ln for ln in lines if ln.startswith("#SBATCH")]
    assert {ln.split()[1].split("=")[0] for ln in sb} <= ALLOWED_SBATCH
    assert len(sb) == len(ALLOWED_SBATCH)
    # The executable part is the template's, whatever the input.
    assert sum(1 for ln in lines if ln.startswith("exec ")) == 1
