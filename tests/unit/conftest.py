"""Unit tests run without services: `config validate` does not ask Slurm how many nodes it has."""

import pytest

from hpchub.core import clock

from .fakes import FakeClock, FakeSlurm


@pytest.fixture(autouse=True)
def _no_sinfo(monkeypatch):
    from hpchub.cli import config_cmd

    monkeypatch.setattr(config_cmd, "_slurm_nodes", lambda site: None)


@pytest.fixture
def fake_clock():
    """The one clock, moved by hand (restored after the test)."""
    fc = FakeClock()
    clock.set_clock(fc)
    yield fc
    clock.set_clock(None)


@pytest.fixture
def fake():
    """A fake Slurm (tests/unit/fakes.py); modules may define their own."""
    return FakeSlurm()


@pytest.fixture
def pam_calls(monkeypatch):
    """JupyterHub's PAM replaced by one that records the names it is asked about (and agrees)."""
    from jupyterhub.auth import PAMAuthenticator

    calls = []

    async def fake_pam(self, handler, data):
        calls.append(data["username"])
        return data["username"]

    monkeypatch.setattr(PAMAuthenticator, "authenticate", fake_pam)
    return calls
