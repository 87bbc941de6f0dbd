import datetime as dt

import pytest

from hpchub.config.courses import check_course_profiles, check_git_url
from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.core.coursepaths import check_relpath, check_target, expand_target


def _site(**course):
    base = {
        "name": "pyintro",
        "groups": ["jupyter"],
        "source": {"git": "https://git.example.org/c.git"},
    }
    return parse_site({"courses": [{**base, **course}]})


def test_a_minimal_course_has_sensible_defaults():
    c = _site().courses[0]
    assert c.target_template == "~/courses/pyintro"
    assert c.source.ref == "main" and c.source.kind == "git"
    assert c.stage_on_spawn and c.spawn_wait == 30
    assert c.active(dt.date(2030, 1, 1))


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.org/group/course.git",
        "ssh://git@git.example.org:2222/group/course.git",
        "git@git.example.org:group/course.git",
        "file:///srv/git/course.git",
        "/srv/git/course.git",
    ],
)
def test_git_urls_that_are_allowed(url):
    assert check_git_url(url) == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ext::sh -c touch% /tmp/pwned", "not allowed"),
        ("fd::17", "remote helper"),
        ("--upload-pack=touch /tmp/x", "not allowed"),
        ("https://user:token@git.example.org/c.git", "credentials"),
        ("ftp://example.org/c.git", "scheme 'ftp'"),
        ("relative/path", "not allowed"),
        ("/srv/../etc", "not allowed"),
    ],
)
def test_git_urls_that_are_refused(url, words):
    with pytest.raises(ValueError, match=words):
        check_git_url(url)
    with pytest.raises(SiteConfigError, match=r"courses\[0\]\.source"):
        _site(source={"git": url})


def test_source_needs_exactly_one_kind():
    with pytest.raises(SiteConfigError, match="exactly one of `git` or `path`"):
        _site(source={"git": "/srv/a.git", "path": "/srv/a"})
    with pytest.raises(SiteConfigError, match="exactly one of `git` or `path`"):
        _site(source={})


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ({"git": "/srv/a.git", "ref": "--force"}, "not a valid branch"),
        ({"git": "/srv/a.git", "ref": "a..b"}, "not a valid branch"),
        ({"git": "/srv/a.git", "subdir": "../x"}, "relative path"),
        ({"path": "relative"}, "absolute path"),
        ({"path": "/srv/c", "ssh_key": "/k"}, "only applies to git"),
        ({"path": "/srv/c", "exclude": ["$(id)"]}, "exclude pattern"),
        ({"path": "/srv/c", "colour": "red"}, "unknown key"),
    ],
)
def test_bad_sources_name_the_key(source, words):
    with pytest.raises(SiteConfigError, match=words):
        _site(source=source)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("/scratch/pyintro", "shared by every student"),
        ("~", "inside the home"),
        ("~/", "inside the home"),
        ("~bob/x", "inside the home"),
        ("~/a/../b", "'..'"),
        ("~/$(id)", "placeholder"),
        ("/scratch/{uid}/x", "only placeholder"),
        ("relative/{user}", "must start with"),
        ("/{user}", "too close"),
    ],
)
def test_bad_targets(target, words):
    with pytest.raises(ValueError, match=words):
        check_target(target)
    with pytest.raises(SiteConfigError, match=r"courses\[0\]\.target"):
        _site(target=target)


def test_target_expands_for_the_student_only():
    assert expand_target("~/courses/x", "alice", "/home/alice") == __import__("pathlib").Path(
        "/home/alice/courses/x"
    )
    assert str(expand_target("/scratch/work/{user}/x", "bob", "/home/bob")) == "/scratch/work/bob/x"


def test_members_dates_and_names():
    with pytest.raises(SiteConfigError, match="has no members"):
        _site(groups=[])
    with pytest.raises(SiteConfigError, match="ends .* before it starts"):
        _site(start="2025-09-05", end="2025-09-01")
    with pytest.raises(SiteConfigError, match=r"courses\[0\]\.name"):
        _site(name="Py Intro")
    with pytest.raises(SiteConfigError, match="repeated: \\['pyintro'\\]"):
        parse_site({"courses": [_site().courses[0].model_dump(mode="json")] * 2})


def test_dates_bound_the_course():
    c = _site(start="2025-09-01", end="2025-09-05").courses[0]
    assert not c.active(dt.date(2025, 8, 31))
    assert c.active(dt.date(2025, 9, 1)) and c.active(dt.date(2025, 9, 5))
    assert not c.active(dt.date(2025, 9, 6))


def test_course_profiles_must_exist():
    from .courses_fixtures import profile

    with pytest.raises(SiteConfigError, match=r"courses\[0\]\.profiles: .*\['pyintro-lab'\]"):
        _site(profiles=["pyintro-lab"])
    base = {"name": "pyintro", "groups": ["jupyter"], "source": {"path": "/srv/c"}}
    site = parse_site(
        {"profiles": [profile("pyintro-lab")], "courses": [{**base, "profiles": ["pyintro-lab"]}]}
    )
    check_course_profiles(site)
    with pytest.raises(SiteConfigError, match=r"courses\[0\]\.profiles"):
        _site(profiles=["Not A Key"])


@pytest.mark.parametrize(
    "rel",
    [
        "",
        "/etc/passwd",
        "a/../b",
        "a//b",
        ".hpchub/manifest.json",
        "HPCHUB-STAGING.md",
        "x/.git/config",
        "bad\nname",
        "./a",
    ],
)
def test_unsafe_relpaths_are_refused(rel):
    with pytest.raises(ValueError):
        check_relpath(rel)


def test_plain_relpaths_pass():
    assert check_relpath("notebooks/lab 1.ipynb") == "notebooks/lab 1.ipynb"
    assert check_relpath("sub/.hpchub") == "sub/.hpchub"
