"""hpchub's server defers rfc3987_syntax (a second of Lark grammars at import) to first use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("rfc3987_syntax")

CHECK = """
import sys
from hpchub.singleuser import lazy
assert lazy.defer() is True
import jsonschema
assert type(sys.modules["rfc3987_syntax"]).__name__ == "_Deferred", "imported at start-up"
check = jsonschema.Draft7Validator.FORMAT_CHECKER
v = jsonschema.Draft7Validator({"format": "iri"}, format_checker=check)
assert v.is_valid("https://example.org/a?b=c#d")
assert not v.is_valid("not an iri at all")
real = sys.modules["rfc3987_syntax"]
assert type(real).__name__ == "module" and hasattr(real, "parse"), "the real one after use"
assert lazy.defer() is False  # once imported, nothing to defer
print("ok")
"""


def test_defer_until_first_use_then_the_real_answer():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


LAB = """
import os, sys
from hpchub.singleuser import lazy
path = os.environ["PATH"]
assert lazy.import_lab_without_yarn() is True
import jupyterlab.labapp
assert os.environ["PATH"] == path, "PATH restored"
assert jupyterlab.labapp.app_version[:1].isdigit()
print("ok")
"""


def test_jupyterlab_imported_without_running_node(tmp_path):
    """A `node` first on PATH that leaves a mark: the stock import runs it, ours does not."""
    pytest.importorskip("jupyterlab")
    mark = tmp_path / "node-ran"
    node = tmp_path / "bin" / "node"
    node.parent.mkdir()
    node.write_text(f"#!/bin/sh\ntouch {mark}\necho '{{}}'\n")
    node.chmod(0o755)
    env = {**os.environ, "PATH": f"{node.parent}:{os.environ['PATH']}"}
    stock = "import jupyterlab.labapp"
    subprocess.run([sys.executable, "-c", stock], env=env, capture_output=True, timeout=120)
    assert mark.exists(), "the stock import runs node (if not, this cut is no longer needed)"
    mark.unlink()
    out = subprocess.run(
        [sys.executable, "-c", LAB], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert not mark.exists()
