"""A small Lmod module tree for the testbed, and the kernels made from it (idempotent).

Two Python modules backed by different virtual environments (each with ipykernel), one
broken module whose prerequisite does not exist, and an R module: Debian's R (r-base-core,
with r-cran-irkernel, from the testbed's package list) reached through R's own bin folder. Root-owned, world-readable, shared by every
testbed on the machine. `hpchub-testbed up` builds it and runs `hpchub kernels sync`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .layout import Layout
from .system import sh

ROOT = Path("/opt/hpchub-testmodules")
MODULEFILES = ROOT / "modulefiles"
FAMILY = "hpctest-python"
GOOD = ("3.11-a", "3.11-b")
BROKEN = "broken"
R_FAMILY = "hpctest-r"
R_VERSION = "debian"
R_BIN = Path("/usr/lib/R/bin")
"""R's own bin folder: the module puts it first, so the kernel's R is not /usr/bin/R."""

_GOOD_MODULE = """\
-- Written by hpchub's testbed: a Python whose interpreter lives in its own venv.
whatis("Description: test Python {version} (venv {venv})")
help([[Python from {venv}, with ipykernel.]])
prepend_path("PATH", "{venv}/bin")
setenv("HPCTEST_PYTHON", "{version}")
"""

_BROKEN_MODULE = """\
-- Written by hpchub's testbed: cannot load, its prerequisite does not exist.
whatis("Description: a broken test module")
depends_on("hpctest-missing/1.0")
prepend_path("PATH", "{root}/venvs/missing/bin")
"""


_R_MODULE = """\
-- Written by hpchub's testbed: Debian's R (r-base-core) with IRkernel (r-cran-irkernel).
whatis("Description: test R from Debian, with IRkernel")
help([[R from {r_bin}, with IRkernel from Debian's r-cran-irkernel.]])
prepend_path("PATH", "{r_bin}")
setenv("HPCTEST_R", "{version}")
"""


def venv_python(version: str) -> Path:
    """The interpreter that module ``hpctest-python/<version>`` puts first on PATH."""
    return ROOT / "venvs" / version / "bin" / "python3"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    os.chmod(path, 0o644)


def ensure_tree(log=print) -> None:
    """Create the venvs (with ipykernel) and the modulefiles if missing (R is a package)."""
    old = os.umask(0o022)
    try:
        for version in GOOD:
            venv = ROOT / "venvs" / version
            marker = venv / ".hpchub-ready"
            if not marker.exists():
                log(f"creating test venv {venv} with ipykernel")
                sh("/usr/bin/python3", "-m", "venv", "--clear", str(venv))
                sh(str(venv / "bin" / "pip"), "install", "-q", "ipykernel")
                marker.write_text("ok\n")
            _write(
                MODULEFILES / FAMILY / f"{version}.lua",
                _GOOD_MODULE.format(version=version, venv=venv),
            )
        _write(MODULEFILES / FAMILY / f"{BROKEN}.lua", _BROKEN_MODULE.format(root=ROOT))
        _write(
            MODULEFILES / R_FAMILY / f"{R_VERSION}.lua",
            _R_MODULE.format(r_bin=R_BIN, version=R_VERSION),
        )
    finally:
        os.umask(old)
    sh("chown", "-R", "root:root", str(ROOT))
    sh("chmod", "-R", "go-w,a+rX", str(ROOT))


def ensure_kernels(layout: Layout, log=print) -> None:
    """Build the tree and sync the testbed's kernels from it (with the testbed's site file)."""
    ensure_tree(log=log)
    r = subprocess.run(  # noqa: S603 - fixed argv
        [
            str(layout.env / "bin" / "hpchub"),
            f"--config={layout.site_file}",
            "kernels",
            "sync",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise RuntimeError(f"hpchub kernels sync failed: {r.stderr or r.stdout}")
    for line in r.stdout.splitlines():
        log(line)
