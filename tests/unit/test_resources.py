import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpchub.config.loader import parse_site
from hpchub.resources.catalog import Catalog
from hpchub.resources.request import OptionsError, resolve_request
from hpchub.slurm.jobscript import JobRequest, render_job_script
from hpchub.slurm.livestate import LiveLimits
from hpchub.spawner.job import sbatch_lines
from tests.sbatch_rules import ALLOWED_SBATCH

SITE = parse_site(
    {
        "slurm": {
            "partitions": [
                {"name": "jupyter-short", "max_time": "12h", "max_memory": "16G", "max_cpus": 8},
                {"name": "jupyter-long", "max_time": "7d", "max_memory": "4G"},
                {"name": "jupyter-overflow", "max_time": "12h"},
                {"name": "gpu"},
            ]
        },
        "profiles": [
            {
                "key": "small",
                "display_name": "Small",
                "partitions": ["jupyter-long"],
                "memory": "2G",
                "time": "3d",
                "idle_timeout": "24h",
            },
            {
                "key": "big",
                "display_name": "Big",
                "partitions": ["jupyter-short", "jupyter-overflow"],
                "memory": "16G",
                "cpus": 4,
                "time": "4h",
                "idle_timeout": "1h",
            },
            {
                "key": "course",
                "display_name": "Course",
                "partitions": ["jupyter-short"],
                "memory": "1G",
                "time": "2h",
                "groups": ["course1"],
                "reservation": "lab-hours",
                "account": "teach",
            },
            {
                "key": "gpu",
                "display_name": "GPU",
                "partitions": ["gpu"],
                "memory": "8G",
                "time": "2h",
                "gpus": 1,
                "gpu_type": "a100",
                "constraint": "a100&ib",
                "users": ["carol"],
            },
        ],
        "custom": {
            "partitions": ["jupyter-short", "jupyter-long"],
            "max_memory": "16G",
            "max_cpus": 8,
            "max_time": "2d",
            "groups": ["power"],
        },
    }
)
CAT = Catalog.from_site(SITE)


def resolve(opts, user="alice", groups=("power",), live=None):
    return resolve_request(opts, CAT, user, set(groups), live)


def test_default_is_first_visible_profile():
    r = resolve({})
    assert (r.profile, r.partitions, r.memory_mib, r.time_seconds, r.idle_timeout) == (
        "small",
        ("jupyter-long",),
        2048,
        3 * 86400,
        86400,
    )


def test_profile_carries_admin_only_options():
    r = resolve({"profile": "course"}, groups={"course1"})
    assert (r.reservation, r.account) == ("lab-hours", "teach")
    # While the lab is on (open to the user), its 2 hours end with it; before, they stand.
    lab_on = resolve_request(
        {"profile": "course"}, CAT, "alice", {"course1"}, None, None, {"lab-hours": 1830}
    )
    assert (lab_on.time_seconds, lab_on.reservation) == (1800, "lab-hours")
    r = resolve({"profile": ["gpu"]}, user="carol")
    assert sbatch_lines(r, ()) == ("--gres=gpu:a100:1", "--constraint=a100&ib")


def test_custom_within_limits():
    r = resolve(
        {
            "profile": "custom",
            "partition": "jupyter-short",
            "memory": "6G",
            "cpus": "2",
            "time": "10h",
        }
    )
    assert (r.profile, r.memory_mib, r.cpus, r.time_seconds) == ("custom", 6144, 2, 36000)
    assert r.idle_timeout == 4 * 3600  # default table: up to 16G -> 4h
    assert r.to_options() == {
        "profile": "custom",
        "partition": "jupyter-short",
        "memory": "6G",
        "cpus": 2,
        "time": "10h",
        "gpus": 0,
    }


@pytest.mark.parametrize(
    ("opts", "kw", "needle"),
    [
        (
            {"profile": "nope"},
            {},
            "profile: 'nope' does not exist; choose one of ['small', 'big', 'custom']",
        ),
        ({"profile": "course"}, {}, "profile: 'course' is not available to you"),
        ({"profile": "custom"}, {"groups": ()}, "custom resources are not available to you"),
        ({"profile": "small", "memory": "4G"}, {}, "memory: can only be set with profile 'custom'"),
        (
            {"profile": "custom", "partition": "gpu"},
            {},
            "partition: 'gpu' is not offered for custom servers",
        ),
        (
            {"profile": "custom", "memory": "32G"},
            {},
            "memory: 32G is more than jupyter-short allows (256M to 16G)",
        ),
        (
            {"profile": "custom", "partition": "jupyter-long", "memory": "8G"},
            {},
            "memory: 8G is more than jupyter-long allows (256M to 4G)",
        ),
        (
            {"profile": "custom", "time": "13h"},
            {},
            "time: 13h is more than jupyter-short allows (1m to 12h)",
        ),
        (
            {"profile": "custom", "cpus": "9"},
            {},
            "cpus: 9 is more than jupyter-short allows (1 to 8)",
        ),
        (
            {"profile": "custom", "gpus": "1"},
            {},
            "gpus: custom servers get no GPUs on this site; ask for 0",
        ),
        ({"profile": "custom", "memory": "4X"}, {}, "memory"),
        ({"profile": "custom", "cpus": "0"}, {}, "cpus"),
        (
            {"exec_prefix": "x"},
            {},
            "exec_prefix: unknown key (allowed: profile, partition, memory, cpus, time, gpus, gpu_type, account, reservation, app)",
        ),
        (
            {"profile": "custom", "memory": "4G\n#SBATCH --uid=0"},
            {},
            "memory: must be a single line",
        ),
        ({"profile": ["small", "big"]}, {}, "give exactly one value"),
        ({"profile": "Small Profile"}, {}, "profile"),
    ],
)
def test_rejections_name_field_and_range(opts, kw, needle):
    with pytest.raises(OptionsError) as e:
        resolve(opts, **kw)
    assert needle in str(e.value)


def test_live_limits_tighten_custom():
    live = {"jupyter-short": LiveLimits(max_time=3600, max_node_memory=4096, gpus=0)}
    with pytest.raises(OptionsError) as e:
        resolve({"profile": "custom", "memory": "6G", "time": "2h"}, live=live)
    assert "memory: 6G is more than jupyter-short allows (256M to 4G)" in str(e.value)
    assert "time: 2h is more than jupyter-short allows (1m to 1h)" in str(e.value)


anything = st.one_of(
    st.text(max_size=40),
    st.integers(-10, 10**7),
    st.lists(st.text(max_size=10), max_size=2),
    st.sampled_from(["small", "big", "course", "gpu", "custom", "4G", "8h", "jupyter-short", "2"]),
)
FIELDS = ["profile", "partition", "memory", "cpus", "time", "gpus", "x", "exec_prefix"]


def script_for(r):
    return render_job_script(
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
            extra_sbatch_lines=sbatch_lines(r, ()),
        )
    )


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), anything), st.sampled_from(["alice", "carol"]))
def test_any_accepted_input_renders_only_allowed_lines(opts, user):
    try:
        r = resolve(opts, user=user, groups={"power", "course1"})
    except OptionsError:
        return
    lines = script_for(r).splitlines()
    sb = [ln for ln in lines if ln.startswith("#SBATCH")]
    assert {ln.split()[1].split("=")[0] for ln in sb} <= ALLOWED_SBATCH
    assert all(len(ln.split()) == 2 for ln in sb)
    # The executable part is the template's, whatever the input.
    assert sum(1 for ln in lines if ln.startswith("exec ")) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*FIELDS, "_xsrf"]),
        st.lists(
            st.one_of(st.text(max_size=20), st.sampled_from(["small", "custom", "4G", "2h", "1"])),
            max_size=2,
        ),
    )
)
def test_form_path_fuzz(form):
    from hpchub.form.submit import options_from_form

    try:
        r = resolve(options_from_form(form), groups={"power"})
    except OptionsError:
        return
    sb = [ln for ln in script_for(r).splitlines() if ln.startswith("#SBATCH")]
    assert {ln.split()[1].split("=")[0] for ln in sb} <= ALLOWED_SBATCH
