"""Unit tests run without services: `config validate` does not ask Slurm how many nodes it has."""

import pytest


@pytest.fixture(autouse=True)
def _no_sinfo(monkeypatch):
    from hpchub.cli import config_cmd

    monkeypatch.setattr(config_cmd, "_slurm_nodes", lambda site: None)


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
