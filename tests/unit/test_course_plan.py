import pytest

from hpchub.courses.plan import BLOCKED, MISSING, Kind, Staged, Upstream, decide, plan, sidecar_name

A, B, C = "a" * 64, "b" * 64, "c" * 64


def up(h):
    return Upstream(h, 1)


def staged(h):
    return Staged(h, h, 1, 1)


@pytest.mark.parametrize(
    ("upstream", "base", "local", "kind"),
    [
        (A, None, MISSING, Kind.ADD),
        (A, A, MISSING, Kind.RESTORE),  # the student deleted it: a fresh copy
        (A, None, A, Kind.SAME),  # already there, identical
        (B, A, A, Kind.UPDATE),  # untouched, upstream changed
        (A, A, B, Kind.KEEP),  # the student changed it, upstream did not
        (B, A, C, Kind.CONFLICT),  # both changed
        (B, A, B, Kind.SAME),  # both made the same change
        (A, None, B, Kind.CONFLICT),  # a file of the student's was there first
        (A, A, BLOCKED, Kind.BLOCKED),
        (None, A, A, Kind.REMOVE),  # gone upstream, untouched
        (None, A, B, Kind.ORPHAN),  # gone upstream, changed: left alone
        (None, A, MISSING, Kind.GONE),
    ],
)
def test_three_way_rules(upstream, base, local, kind):
    action = decide("p", up(upstream) if upstream else None, staged(base) if base else None, local)
    assert action.kind is kind


def test_never_overwrites_a_changed_file():
    # Whatever upstream does, a local copy that differs from what was staged is never written.
    for upstream in (A, B, C):
        a = decide("p", up(upstream), staged(A), B)
        assert a.kind in (Kind.KEEP, Kind.SAME, Kind.CONFLICT)
        assert a.kind is not Kind.UPDATE


def test_plan_covers_every_path_once_sorted():
    actions = plan({"b": up(A), "a": up(B)}, {"c": staged(C), "a": staged(A)}, {"a": A, "c": C})
    assert [(x.path, x.kind) for x in actions] == [
        ("a", Kind.UPDATE),
        ("b", Kind.ADD),
        ("c", Kind.REMOVE),
    ]


def test_writes_upstream():
    assert {k for k in Kind if k.writes_upstream} == {
        Kind.ADD,
        Kind.RESTORE,
        Kind.UPDATE,
        Kind.CONFLICT,
    }


@pytest.mark.parametrize(
    ("path", "taken", "name"),
    [
        ("lab1.ipynb", set(), "lab1.upstream.ipynb"),
        ("nb/lab1.ipynb", set(), "nb/lab1.upstream.ipynb"),
        ("Makefile", set(), "Makefile.upstream"),
        (".bashrc", set(), ".bashrc.upstream"),
        ("lab1.ipynb", {"lab1.upstream.ipynb"}, "lab1.upstream-2.ipynb"),
        ("a.tar.gz", set(), "a.tar.upstream.gz"),
    ],
)
def test_sidecar_names(path, taken, name):
    assert sidecar_name(path, taken) == name
