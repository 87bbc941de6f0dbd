"""Choosing the Slurm account on the form: only one's own associations, remembered, with usage."""

from pathlib import Path

import pytest

from hpchub.config.models import SlurmSettings
from hpchub.form.render import render_form
from hpchub.resources.request import OptionsError, resolve_request
from hpchub.slurm.client import SlurmClient
from hpchub.slurm.livestate import LiveState, Snapshot
from hpchub.slurm.parsers import AccountShare, UserAccounts, parse_sshare, parse_user_accounts

from .test_resources import CAT

DATA = Path(__file__).parent / "data"
MINE = UserAccounts(("research", "course101"), "research", {"research": AccountShare(7200, 0.5)})


def resolve(opts, accounts=MINE, groups=("power",)):
    return resolve_request(opts, CAT, "alice", set(groups), None, accounts)


def test_parsers_on_output_captured_from_slurm_22_05():
    accounts, default = parse_user_accounts(
        (DATA / "sacctmgr_user_withassoc_22.05.txt").read_text()
    )
    assert (accounts, default) == (("research",), "research")
    shares = parse_sshare((DATA / "sshare_22.05.txt").read_text(), "alice")
    assert shares == {"research": AccountShare(0, 0.0)}  # the account rows have no user
    two = parse_user_accounts("research|course101\nresearch|research\n")
    assert two == (("research", "course101"), "research")


def test_own_account_is_used_and_remembered():
    r = resolve({"profile": "small", "account": "course101"})
    assert r.account == "course101"
    assert r.to_options() == {"profile": "small", "account": "course101"}
    r = resolve({"profile": "custom", "account": "research", "memory": "2G"})
    assert r.account == "research" and r.to_options()["account"] == "research"
    assert resolve({"profile": "small"}).account is None  # Slurm's default applies


@pytest.mark.parametrize(
    ("opts", "accounts", "needle"),
    [
        (
            {"account": "physics"},
            MINE,
            "'physics' is not one of your Slurm accounts (research, course101)",
        ),
        ({"account": "research"}, None, "offers no choice of account (no Slurm accounting)"),
        ({"account": "bad name!"}, MINE, "account"),
        ({"account": "research\n"}, MINE, "single line"),
        ({"profile": "course", "account": "research"}, MINE, "always uses account 'teach'"),
    ],
)
def test_refusals_name_what_is_allowed(opts, accounts, needle):
    with pytest.raises(OptionsError) as err:
        resolve(opts, accounts, groups=("power", "course1"))
    assert needle in str(err.value)


def test_a_profile_with_its_own_account_keeps_it():
    r = resolve({"profile": "course", "account": "teach"}, None, groups=("course1",))
    assert r.account == "teach"


def test_form_offers_own_accounts_with_usage_and_remembers_the_last():
    snap = Snapshot(0, {})
    html = render_form(CAT, "alice", {"power"}, snap, None, None, MINE)
    assert '<select class="form-select" id="hpchub-account" name="account">' in html
    assert (
        '<option value="research" selected>research (your default, fair share 0.50, '
        "used 2.0 CPU-hours recently)</option>" in html
    )
    html = render_form(CAT, "alice", {"power"}, snap, {"account": "course101"}, None, MINE)
    assert '<option value="course101" selected>course101</option>' in html
    assert "hpchub-account" not in render_form(CAT, "alice", {"power"}, snap, None, None, None)


async def test_accounts_are_read_once_per_interval(fake, fake_clock):
    state = LiveState(SlurmClient(SlurmSettings(), runner=fake), max_age=30)
    first = await state.accounts("alice")
    assert (
        first.accounts == ("research", "course101") and first.shares["research"].fair_share == 0.5
    )
    await state.accounts("alice")
    assert fake.count("sacctmgr") == 1
    fake_clock.t += 31
    await state.accounts("alice")
    assert fake.count("sacctmgr") == 2


async def test_without_accounting_the_form_has_no_account(fake, fake_clock):
    fake.accounting = False
    state = LiveState(SlurmClient(SlurmSettings(), runner=fake), max_age=30)
    assert await state.accounts("alice") is None
