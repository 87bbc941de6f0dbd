"""The README's quick start: `scripts/demo` runs, brings the testbed up and says how to log in."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_scripts_demo_brings_the_hub_up_and_says_where(testbed):
    if testbed["hub_name"] != "testbed":
        import pytest

        pytest.skip("scripts/demo drives the main testbed; this run uses a named one")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCHUB_TESTBED")}
    out = subprocess.run(
        [str(REPO / "scripts" / "demo")],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"hpchub is running. Open {testbed['hub_url']}" in out.stdout
    assert "hpchub-testbed down" in out.stdout
