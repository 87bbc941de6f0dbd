"""Shared fixtures: where test data lives."""

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "unit" / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA
