"""The hub's side of courses: who sees what, the pre-spawn hook, the config wiring."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

import pytest

from hpchub.config.loader import parse_site
from hpchub.courses import report as rep
from hpchub.courses.stager import CourseStager
from hpchub.hub.wiring import site_config
from hpchub.resources import membership
from hpchub.resources.membership import arrange_profiles, courses_for

from .courses_fixtures import GitRepo, LocalStager, make_site, profile

DAY = dt.date(2025, 9, 2)


def _site():
    src = {"git": "https://git.example.org/c.git"}
    return parse_site(
        {
            "profiles": [profile(k) for k in ("small", "py-lab", "hpc-lab", "old-lab")],
            "courses": [
                {
                    "name": "pyintro",
                    "groups": ["pyintro"],
                    "source": src,
                    "profiles": ["py-lab"],
                    "start": "2025-09-01",
                    "end": "2025-09-05",
                },
                {
                    "name": "hpc",
                    "users": ["bob"],
                    "instructors": ["carol"],
                    "source": src,
                    "profiles": ["hpc-lab", "py-lab"],
                },
                {
                    "name": "old",
                    "users": ["alice"],
                    "source": src,
                    "profiles": ["old-lab"],
                    "end": "2024-01-01",
                },
            ],
        }
    )


def test_courses_for_members_active_today():
    site = _site()
    assert [c.name for c in courses_for(site, "alice", {"pyintro"}, DAY)] == ["pyintro"]
    assert [c.name for c in courses_for(site, "bob", set(), DAY)] == ["hpc"]
    assert [c.name for c in courses_for(site, "carol", set(), DAY)] == ["hpc"]
    assert courses_for(site, "alice", {"pyintro"}, dt.date(2025, 8, 31)) == []
    assert courses_for(site, "mallory", {"jupyter"}, DAY) == []


def test_course_profiles_go_first_for_members_and_vanish_for_others():
    site = _site()
    keys = ["small", "py-lab", "large", "hpc-lab", "old-lab"]
    assert arrange_profiles(keys, site, "alice", {"pyintro"}, DAY) == ["py-lab", "small", "large"]
    assert arrange_profiles(keys, site, "bob", set(), DAY) == [
        "hpc-lab",
        "py-lab",
        "small",
        "large",
    ]
    assert arrange_profiles(keys, site, "mallory", set(), DAY) == ["small", "large"]
    # After the end date, even members no longer see the course profile.
    assert arrange_profiles(keys, site, "alice", {"pyintro"}, dt.date(2026, 1, 1)) == [
        "small",
        "large",
    ]
    # Profiles the user may not see anyway are never added.
    assert arrange_profiles(["small"], site, "alice", {"pyintro"}, DAY) == ["small"]


def on_day(day: dt.date):
    """Set the one clock to noon of ``day`` (undo with clock.set_clock(None))."""
    from hpchub.core import clock

    noon = dt.datetime.combine(day, dt.time(12)).timestamp()
    clock.set_clock(lambda: noon)


def test_today_comes_from_the_one_clock():
    from hpchub.core import clock

    on_day(DAY)
    try:
        assert membership.today() == DAY
    finally:
        clock.set_clock(None)
    assert membership.today() == dt.date.today()


def test_unix_groups_of_unknown_user_is_empty():
    assert membership.unix_groups("no-such-user-here") == frozenset()
    assert "root" in membership.unix_groups("root")


def test_the_wiring_sets_the_hook_only_with_courses():
    c = site_config(parse_site({}))
    assert "internal_pre_spawn_hooks" not in c.SlurmSpawner
    c = site_config(_site())
    assert "pre_spawn_hook" not in c.Spawner  # the site's own hook stays free
    [hook] = c.SlurmSpawner.internal_pre_spawn_hooks
    assert isinstance(hook.__self__, CourseStager)
    # The hub deep-copies its config: the stager must stay one object.
    import copy

    assert copy.deepcopy(hook).__self__ is hook.__self__


async def test_a_sites_own_hook_runs_in_addition_to_staging():
    """A pre_spawn_hook in jupyterhub_config.d no longer turns course staging off."""
    from hpchub.spawner.slurm import SlurmSpawner

    calls = []

    def sites(spawner):
        calls.append("site")

    async def ours(spawner):
        calls.append("ours")

    spawner = SlurmSpawner(internal_pre_spawn_hooks=[ours], pre_spawn_hook=sites)
    await spawner.run_pre_spawn_hook()
    assert calls == ["ours", "site"]


def _spawner(name):
    return SimpleNamespace(user=SimpleNamespace(name=name))


@pytest.fixture
def course_stager(tmp_path):
    repo = GitRepo(tmp_path / "materials")
    repo.commit({"a.txt": "a"})
    return LocalStager(make_site(tmp_path, {"git": str(repo.path)}), tmp_path / "home")


async def test_hook_stages_for_a_member(course_stager):
    await course_stager.pre_spawn_hook(_spawner("alice"))
    assert course_stager.store.load("pyintro", "alice").state == rep.OK
    assert (course_stager.target("pyintro", "alice") / "a.txt").read_text() == "a"
    assert course_stager.store.for_course("pyintro").keys() == {"alice"}


async def test_hook_does_nothing_for_a_non_member(course_stager):
    await course_stager.pre_spawn_hook(_spawner("mallory"))
    assert course_stager.store.load("pyintro", "mallory") is None
    assert not (course_stager.homes / "mallory").exists()
    assert course_stager.store.for_course("pyintro") == {}


async def test_hook_never_fails_a_spawn(course_stager, monkeypatch):
    async def broken(course, user):
        raise RuntimeError("bug")

    monkeypatch.setattr(course_stager, "stage", broken)
    await course_stager.pre_spawn_hook(_spawner("alice"))  # no exception

    def no_groups(user):
        raise OSError("nss down")

    monkeypatch.setattr("hpchub.courses.stager.unix_groups", no_groups)
    await course_stager.pre_spawn_hook(_spawner("alice"))


async def test_with_spawn_wait_zero_staging_runs_beside_the_start(tmp_path):
    repo = GitRepo(tmp_path / "materials")
    repo.commit({"a.txt": "a"})
    stager = LocalStager(make_site(tmp_path, {"git": str(repo.path)}, spawn_wait=0), tmp_path / "h")
    await stager.pre_spawn_hook(_spawner("alice"))
    pending = list(stager._background)
    assert pending  # the hook returned before staging finished
    await asyncio.gather(*pending)
    assert stager.store.load("pyintro", "alice").state == rep.OK


async def test_stage_on_spawn_false_leaves_spawns_alone(tmp_path):
    site = make_site(tmp_path, {"git": "/nowhere"}, stage_on_spawn=False)
    assert "internal_pre_spawn_hooks" not in site_config(site).SlurmSpawner
    stager = LocalStager(site, tmp_path / "h")
    await stager.pre_spawn_hook(_spawner("alice"))
    assert stager.store.load("pyintro", "alice") is None


async def test_student_view_shows_the_latest_report(course_stager):
    from hpchub.courses.web import handlers, student_view

    [before] = student_view(course_stager, "alice")
    assert before["state"] == "never" and before["folder"].endswith("/courses/pyintro")
    await course_stager.pre_spawn_hook(_spawner("alice"))
    [after] = student_view(course_stager, "alice")
    assert after["state"] == rep.OK and after["title"] == "Python intro"
    assert "1 added" in after["summary"] and after["conflicts"] == []
    assert student_view(course_stager, "mallory") == []
    assert [h[0] for h in handlers(course_stager)] == ["/courses", "/api/hpchub/courses"]


def test_apply_adds_the_page_after_other_handlers_and_templates():
    c = site_config(_site())
    routes = [h[0] for h in c.JupyterHub.extra_handlers]
    assert routes[-2:] == ["/courses", "/api/hpchub/courses"]
    assert routes[0] == "/api/hpchub/port"
    assert c.JupyterHub.template_paths[-1].endswith("templates/courses")


def test_arrange_profiles_takes_profile_objects():
    from operator import attrgetter

    site = _site()
    objs = [SimpleNamespace(key=k) for k in ("small", "py-lab", "hpc-lab")]
    out = arrange_profiles(objs, site, "alice", {"pyintro"}, DAY, key=attrgetter("key"))
    assert [o.key for o in out] == ["py-lab", "small"]
    assert out[0] is objs[1]


def test_arrange_profiles_composes_with_the_forms_catalog():
    # How the spawn form and the submit path use it: the catalog's visible profiles, reordered.
    from operator import attrgetter

    from hpchub.core import clock
    from hpchub.resources.catalog import Catalog

    site = _site()
    catalog = Catalog.from_site(site)
    on_day(DAY)
    try:
        for user, groups, expected in (
            ("alice", {"pyintro"}, ["py-lab", "small"]),
            ("bob", set(), ["hpc-lab", "py-lab", "small"]),
            ("mallory", set(), ["small"]),
        ):
            # The catalog arranges by itself, for the form and the submit path alike.
            assert [p.key for p in catalog.visible(user, groups)] == expected
            allowed = [p for p in catalog.profiles if p.admits(user, groups)]
            arranged = arrange_profiles(allowed, site, user, groups, DAY, key=attrgetter("key"))
            assert [p.key for p in arranged] == expected
        assert "py-lab" in catalog.course_labels("alice", {"pyintro"})
    finally:
        clock.set_clock(None)
