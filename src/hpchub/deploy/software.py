"""`hpchub install --software`: the hub's software, installed without root.

As at the site this is modelled on, an admin installs the software as a normal user onto a
shared filesystem: a Python environment that every user can read and run (the Jupyter
servers run from it on the compute nodes) and only its owner can change.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import __version__
from ..core.commands import run_command

MARKER = ".hpchub-software.json"
CONSTRAINTS = "constraints.txt"
"""The versions hpchub was tested with, beside this module; pip installs within them."""
_JUNK = {"build", "dist", "node_modules", "artifacts", "__pycache__"}


def _not_needed(folder: str, names: list[str]) -> set[str]:
    """What a build of the checkout does not need (for shutil.copytree's ignore)."""
    return {
        n for n in names if n.startswith(".") or n in _JUNK or n.endswith((".egg-info", ".pyc"))
    }


class SoftwareError(Exception):
    """The software prefix could not be installed; the message says why and what to do."""


def default_python() -> str:
    """The system Python: users on compute nodes can run it (a venv under /root they cannot)."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"


def writable_by_others(root: Path) -> Iterator[Path]:
    """Entries under ``root`` (itself included) that group or others may write (no symlinks)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [None, *filenames, *dirnames]:
            p = Path(dirpath) if name is None else Path(dirpath) / name
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                yield p


def _make_world_readable(root: Path) -> None:
    """Like `chmod -R go-w,a+rX`: everyone reads and runs, only the owner writes."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [None, *dirnames, *filenames]:
            p = Path(dirpath) if name is None else Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = st.st_mode & 0o7777 & ~0o022 | 0o444
            if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o100:
                mode |= 0o111
            if mode != st.st_mode & 0o7777:
                os.chmod(p, mode)


def _requirement(source: str | None, tmp: Path) -> str:
    """What pip installs: a checkout (copied first), a wheel or sdist, or a requirement."""
    if source is None:
        return f"hpchub[singleuser]=={__version__}"
    path = Path(source)
    if path.is_dir():
        if not (path / "pyproject.toml").exists():
            raise SoftwareError(f"{path} is a folder but not an hpchub source tree")
        # pip would write build files into the checkout, which may not be ours to write: build
        # from a copy (without hidden folders: .git, .venv and caches may not even be readable).
        copy = tmp / "src"
        try:
            shutil.copytree(path, copy, ignore=_not_needed)
        except (OSError, shutil.Error) as err:
            raise SoftwareError(f"cannot copy the source tree {path}: {err}") from None
        return f"{copy}[singleuser]"
    if path.is_file():
        return f"{path.resolve()}[singleuser]"
    if any(c in source for c in "\n\0 "):
        raise SoftwareError(f"--from must be a path or one requirement, got {source!r}")
    return source


def constraints_file(tmp: Path) -> Path:
    """The constraints of what is being installed: a copied checkout's own, else this
    hpchub's (a wheel or requirement of the same version)."""
    copied = tmp / "src" / "src" / "hpchub" / "deploy" / CONSTRAINTS
    if copied.exists():
        return copied
    own = Path(__file__).with_name(CONSTRAINTS)
    if not own.exists():
        raise SoftwareError(f"{own} is missing: this hpchub was not installed whole")
    return own


TOOLS = (
    "jupyterhub",
    "jupyterhub-singleuser",
    "hpchub-singleuser",
    "hpchub-jupyterhub-singleuser",
    "hpchub-user",
)
"""Commands the prefix must have after an install (the hub's, the job's and the helper)."""


def install_software(
    prefix: Path,
    *,
    python: str | None = None,
    source: str | None = None,
    log: Callable[[str], None] = print,
    run: Callable[..., subprocess.CompletedProcess] = run_command,
) -> dict:
    """Create or upgrade the environment at ``prefix``; returns what the marker file records."""
    prefix = Path(os.path.abspath(prefix))
    python = python or default_python()
    venv_cfg = prefix / "pyvenv.cfg"
    if prefix.exists() and any(prefix.iterdir()) and not venv_cfg.exists():
        raise SoftwareError(
            f"{prefix} exists and is not a Python environment: choose a new or empty folder"
        )
    old_umask = os.umask(0o022)
    try:
        if not venv_cfg.exists():
            log(f"creating a Python environment in {prefix} from {python}")
            _run(run, [python, "-m", "venv", str(prefix)])
        with tempfile.TemporaryDirectory(prefix="hpchub-software-") as tmp:
            req = _requirement(source, Path(tmp))
            constraints = constraints_file(Path(tmp))
            log(f"installing {req} within {constraints} (this takes a minute)")
            # --upgrade: what is already there (a reused environment) moves to the newest
            # versions the constraints allow, security fixes included.
            pip = [str(prefix / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade"]
            _run(run, [*pip, "-c", str(constraints), req])
        record = {
            "hpchub": __version__,
            "python": python,
            "source": source or f"hpchub=={__version__}",
            "installed_by": os.geteuid(),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (prefix / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    finally:
        os.umask(old_umask)
    _make_world_readable(prefix)
    loose = list(writable_by_others(prefix))
    if loose:
        raise SoftwareError(
            f"{len(loose)} entries under {prefix} stay writable by others, e.g. {loose[0]}"
        )
    for tool in TOOLS:
        if not (prefix / "bin" / tool).exists():
            raise SoftwareError(f"{prefix}/bin/{tool} is missing after the install")
    log(f"{prefix}: readable by everyone, writable only by uid {os.geteuid()}")
    return record


def _run(run, argv: list[str]) -> None:
    r = run(argv, timeout=1800)  # pip on a slow mirror
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
        raise SoftwareError(f"{' '.join(argv)} failed:\n{tail}")
