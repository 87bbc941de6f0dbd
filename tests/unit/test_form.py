"""The spawn form renders from the catalog and live state, escapes everything, keeps input."""

from hpchub.form.render import render_form
from hpchub.form.submit import options_from_form
from hpchub.slurm.livestate import Snapshot
from hpchub.slurm.parsers import PartitionState

from .test_resources import CAT

SNAP = Snapshot(
    0.0,
    {
        "jupyter-short": PartitionState(
            "jupyter-short",
            nodes=1,
            cpus_total=8,
            cpus_alloc=2,
            memory_total=8192,
            memory_alloc=2048,
            max_node_memory=8192,
            pending=3,
        ),
        "jupyter-overflow": PartitionState(
            "jupyter-overflow", nodes=1, cpus_total=8, memory_total=6144, max_node_memory=6144
        ),
        "jupyter-long": PartitionState(
            "jupyter-long", nodes=1, cpus_total=8, memory_total=8192, max_node_memory=8192
        ),
    },
)


def test_choices_specs_and_live_state():
    html = render_form(CAT, "alice", {"power"}, SNAP)
    assert 'value="small"' in html and 'value="big"' in html and 'value="custom"' in html
    assert 'value="course"' not in html  # not a member
    assert "jupyter-short: 6G memory free, 3 waiting" in html
    assert "jupyter-overflow (overflow, used when full): 6G memory free, no queue" in html
    assert "<dt>Stopped when idle for</dt><dd>1d</dd>" in html
    assert 'id="profile-small" value="small" checked' in html  # first is the default
    assert '<label class="form-label" for="custom-memory">Memory</label>' in html


def test_unavailable_live_state_still_renders():
    html = render_form(
        CAT,
        "alice",
        {"power"},
        Snapshot(0.0, {}, error="slurm_load_partitions: Unable to contact slurm controller"),
    )
    assert "current load is unavailable right now" in html
    assert 'value="small"' in html


def test_prefill_previous_and_escape():
    prev = {"profile": "custom", "memory": '"><script>alert(1)</script>', "time": "3h"}
    html = render_form(CAT, "alice", {"power"}, SNAP, prev)
    assert 'id="profile-custom" value="custom" checked' in html
    assert "<script>alert(1)</script>" not in html
    assert "&#34;&gt;&lt;script&gt;" in html
    assert 'value="3h"' in html


def test_course_profile_first_with_badge():
    from hpchub.core import clock
    from hpchub.resources.catalog import Catalog

    from .test_course_hub import DAY, _site, on_day

    catalog = Catalog.from_site(_site())
    on_day(DAY)
    try:
        labels = catalog.course_labels("alice", {"pyintro"})
        html = render_form(catalog, "alice", {"pyintro"}, SNAP, course_labels=labels)
        others = render_form(catalog, "mallory", set(), SNAP)
    finally:
        clock.set_clock(None)
    assert html.index('value="py-lab"') < html.index('value="small"')
    assert f'<span class="course-badge">{labels["py-lab"]}</span>' in html
    assert 'value="py-lab"' not in others


def test_custom_not_offered_without_rights():
    html = render_form(CAT, "alice", set(), SNAP)
    assert 'value="custom"' not in html and "hpchub-custom" not in html


def test_form_drops_custom_fields_unless_custom():
    form = {
        "profile": ["small"],
        "memory": ["4G"],
        "cpus": ["2"],
        "partition": ["jupyter-short"],
        "time": [""],
    }
    assert options_from_form(form) == {"profile": "small"}
    form["profile"] = ["custom"]
    assert options_from_form(form) == {
        "profile": "custom",
        "memory": "4G",
        "cpus": "2",
        "partition": "jupyter-short",
    }
