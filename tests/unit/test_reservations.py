"""Reservations on the form: the ones open to the user are offered, maintenance is warned of."""

import datetime as dt
from pathlib import Path

import pytest

from hpchub.form.render import render_form
from hpchub.resources.request import OptionsError, resolve_request
from hpchub.resources.reservations import offer
from hpchub.slurm.livestate import Snapshot
from hpchub.slurm.parsers import (
    PartitionState,
    Reservation,
    expand_hostlist,
    parse_reservations,
)

from .test_resources import CAT

DATA = Path(__file__).parent / "data"
NOW = dt.datetime(2026, 11, 30, 7, 20)


def _res(name, start_h, end_h, nodes="vm", flags="", users="alice", accounts="", active=True):
    return Reservation(
        name,
        NOW + dt.timedelta(hours=start_h),
        NOW + dt.timedelta(hours=end_h),
        expand_hostlist(nodes),
        None,
        frozenset(flags.split(",")) - {""},
        frozenset(users.split(",")) - {""},
        frozenset(),
        frozenset(accounts.split(",")) - {""},
        active,
    )


def _snap(*reservations):
    parts = {
        "jupyter-short": PartitionState("jupyter-short", members={"vm"}),
        "jupyter-long": PartitionState("jupyter-long", members={"vm"}),
        "jupyter-overflow": PartitionState("jupyter-overflow", members={"hpchub-batch1"}),
    }
    return Snapshot(0, parts, reservations=tuple(reservations))


def test_reservations_captured_from_slurm_22_05():
    lab, maint = parse_reservations((DATA / "scontrol_reservations_22.05.txt").read_text())
    assert (lab.name, lab.active, lab.maintenance, lab.users, lab.nodes) == (
        "probe-lab",
        True,
        False,
        {"alice"},
        {"vm"},
    )
    assert (
        maint.maintenance and not maint.active and maint.end - maint.start == dt.timedelta(hours=1)
    )
    assert parse_reservations("No reservations in the system\n") == []


def test_host_lists():
    assert expand_hostlist("node[01-03,07],gpu1") == {
        "node01",
        "node02",
        "node03",
        "node07",
        "gpu1",
    }
    assert expand_hostlist("(null)") == frozenset()


@pytest.mark.parametrize(
    ("users", "accounts", "who", "mine", "open_"),
    [
        ("alice", "", "alice", (), True),
        ("alice", "", "bob", (), False),
        ("-bob", "", "alice", (), True),  # everyone but bob
        ("-bob", "", "bob", (), False),
        ("", "course101", "carol", ("course101",), True),
        ("", "course101", "bob", ("research",), False),
    ],
)
def test_who_may_use_a_reservation(users, accounts, who, mine, open_):
    r = _res("lab", -1, 1, users=users, accounts=accounts)
    assert r.open_to(who, set(), mine) is open_


def test_offer_keeps_usable_ones_and_warns_of_maintenance():
    snap = _snap(
        _res("lab", -1, 2),
        _res("other-users", -1, 2, users="bob"),
        _res("batch-only", -1, 2, nodes="node[01-02]"),
        _res("later", 1, 2, active=False),
        _res("maint", 2, 3, flags="MAINT", users="root"),
        _res("maint-far", 24 * 30, 24 * 31, flags="MAINT", users="root"),
    )
    got = offer(snap, CAT.partitions, "alice", set(), (), NOW, 7 * 86400)
    assert got.names == ("lab",)
    assert [m.reservation.name for m in got.maintenance] == ["maint"]
    assert got.fits_seconds() == 2 * 3600
    on_now = offer(
        _snap(_res("m", -1, 1, flags="MAINT")), CAT.partitions, "a", set(), (), NOW, 3600
    )
    assert on_now.fits_seconds() == 0


def test_form_offers_the_lab_and_says_what_fits_before_maintenance():
    snap = _snap(_res("lab", -1, 2), _res("maint", 2, 3, flags="MAINT", users="root"))
    res = offer(snap, CAT.partitions, "alice", set(), (), NOW, 7 * 86400)
    html = render_form(CAT, "alice", {"power"}, snap, None, None, None, res)
    assert (
        '<option value="lab" selected>lab (until 2026-11-30 09:20: a server in it ends with it, '
        "2h from now)</option>" in html
    )
    assert "Maintenance on the Jupyter nodes from 2026-11-30 09:20 to 2026-11-30 10:20" in html
    assert "can run for at most 2h before it" in html
    # The 3-day profile would wait; custom's time is prefilled with what fits.
    assert "waits until after the maintenance" in html
    assert 'name="time" value="2h"' in html


def _resolve(user, opts, left):
    return resolve_request(opts, CAT, user, set(), None, None, left)


def test_a_reservation_must_be_open_to_the_user_and_outlast_the_server():
    asked = {"profile": "small", "reservation": "lab"}
    with pytest.raises(OptionsError) as err:
        _resolve("bob", asked, {})
    assert "reservation: 'lab' is not open to you now (none)" in str(err.value)
    r = _resolve("alice", asked, {"lab": 5 * 86400})
    assert r.reservation == "lab" and r.to_options() == asked
    # 'small' runs 3 days; the lab ends in 2 hours: the server ends with it.
    r = _resolve("alice", asked, {"lab": 7200})
    assert r.time_seconds == 7200 and r.to_options() == asked
    assert _resolve("alice", asked, {"lab": 7259}).time_seconds == 7200  # whole minutes
    with pytest.raises(OptionsError) as err:  # not even a minute left
        _resolve("alice", asked, {"lab": 59})
    assert "time: 3d is longer than reservation 'lab' has left (59s)" in str(err.value)
    typed = {"profile": "custom", "time": "10h", "reservation": "lab"}
    with pytest.raises(OptionsError) as err:  # a typed time is the user's: refused, not cut
        resolve_request(typed, CAT, "alice", {"power"}, None, None, {"lab": 7200})
    assert "time: 10h is longer than reservation 'lab' has left (2h)" in str(err.value)
