"""Unit tests run without services: `config validate` does not ask Slurm how many nodes it has."""

import pytest


@pytest.fixture(autouse=True)
def _no_sinfo(monkeypatch):
    from hpchub.cli import config_cmd

    monkeypatch.setattr(config_cmd, "_slurm_nodes", lambda site: None)
