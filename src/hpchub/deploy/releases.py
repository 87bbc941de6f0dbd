"""Versioned releases of the hub's software: build beside the old one, check, switch, roll back.

Layout under the software root (``singleuser.prefix`` names ``ROOT/current``)::

    ROOT/releases/0.9.0-20261130T050000/   one complete Python environment per release
    ROOT/current  -> releases/NAME           what the hub and new jobs start from
    ROOT/previous -> releases/NAME           what `hpchub rollback` returns to

A release is never changed after it is checked: an upgrade builds a new one, so the running
hub and running servers keep the files they started with. The hub resolves ``current`` when it
writes a job script, so a switch under a running job changes nothing for that job. Links are
replaced atomically (a new link renamed over the old), and root refuses a root folder that
someone else owns or may write.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..core.files import UnsafePath, atomic_symlink, opened_dir
from .software import SoftwareError, install_software

RELEASES = "releases"
CURRENT = "current"
PREVIOUS = "previous"
_NAME = re.compile(r"[A-Za-z0-9._-]{1,120}")


def release_name(version: str = __version__, now: float | None = None) -> str:
    """VERSION-TIMESTAMP, with characters a path in a job script may not hold replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", version)
    return f"{safe}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}"


@dataclass(frozen=True)
class ReleaseRoot:
    """The folder that holds the releases and the ``current`` and ``previous`` links."""

    root: Path

    @classmethod
    def of(cls, prefix: str | os.PathLike) -> ReleaseRoot:
        """The root for ``--prefix ROOT`` or for ``singleuser.prefix`` (``ROOT/current``)."""
        p = Path(os.path.abspath(prefix))
        return cls(p.parent if p.name == CURRENT else p)

    @property
    def releases(self) -> Path:
        return self.root / RELEASES

    @property
    def current_link(self) -> Path:
        return self.root / CURRENT

    @property
    def previous_link(self) -> Path:
        return self.root / PREVIOUS

    def _target(self, link: Path) -> str | None:
        """The release a link names, or None; SoftwareError for a link hpchub did not make."""
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return None
        except OSError:
            raise SoftwareError(f"{link} exists and is not a link to a release") from None
        head, _, name = target.partition("/")
        if head != RELEASES or not _NAME.fullmatch(name):
            raise SoftwareError(f"{link} points at {target!r}, not at {RELEASES}/NAME")
        return name

    def current(self) -> str | None:
        return self._target(self.current_link)

    def previous(self) -> str | None:
        return self._target(self.previous_link)

    def names(self) -> list[str]:
        """Every complete release, oldest first."""
        if not self.releases.is_dir():
            return []
        done = [p for p in self.releases.iterdir() if (p / "pyvenv.cfg").exists()]
        return sorted((p.name for p in done), key=lambda n: (self.releases / n).stat().st_mtime)


def check_root(root: ReleaseRoot, euid: int | None = None) -> None:
    """Refuse a root (or releases folder) that is a link, or that another user owns or may
    write: whoever controls it controls what the hub and every job run."""
    euid = os.geteuid() if euid is None else euid
    if (root.root / "pyvenv.cfg").exists():
        raise SoftwareError(
            f"{root.root} is a Python environment from an hpchub without releases: install "
            f"into a new folder (e.g. {root.root}-releases) and set singleuser.prefix to "
            "NEW/current"
        )
    for folder in (root.root, root.releases):
        try:
            with opened_dir(folder) as fd:
                st = os.fstat(fd)
        except FileNotFoundError:
            continue
        except UnsafePath as err:
            raise SoftwareError(str(err)) from None
        if st.st_uid != euid or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SoftwareError(
                f"{folder} must belong to uid {euid} and be writable by no one else "
                f"(it is uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o})"
            )


Run = Callable[..., subprocess.CompletedProcess]


def check_release(path: Path, *, run: Run = subprocess.run) -> None:
    """The release imports what the hub and the job need, and its jupyterhub and hpchub run
    (kernels are checked by the upgrade, which knows the site). SoftwareError says what failed."""
    checks = [
        [str(path / "bin" / "python"), "-c", "import hpchub, jupyterhub, jupyter_server"],
        [str(path / "bin" / "jupyterhub"), "--version"],
        [str(path / "bin" / "hpchub"), "--version"],
    ]
    for argv in checks:
        r = run(argv, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-10:])
            raise SoftwareError(f"the new release failed its check {' '.join(argv)}:\n{tail}")


def build_release(
    root: ReleaseRoot,
    *,
    python: str | None = None,
    source: str | None = None,
    log: Callable[[str], None] = print,
    run: Run = subprocess.run,
    name: str | None = None,
) -> Path:
    """A new, checked release beside the others (not yet current); removed again on failure."""
    check_root(root)
    old_umask = os.umask(0o022)
    try:
        root.releases.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old_umask)
    check_root(root)
    name = name or release_name()
    dest = root.releases / name
    if dest.exists() or dest.is_symlink():
        raise SoftwareError(f"{dest} exists already; try again in a second")
    try:
        install_software(dest, python=python, source=source, log=log, run=run)
        check_release(dest, run=run)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    log(f"release {name} built and checked")
    return dest


def switch(root: ReleaseRoot, name: str, log: Callable[[str], None] = print) -> str | None:
    """Make ``name`` current (``previous`` names the old current); returns the old current."""
    check_root(root)
    if not _NAME.fullmatch(name) or not (root.releases / name / "pyvenv.cfg").exists():
        raise SoftwareError(f"{root.releases / name} is not a complete release")
    old = root.current()
    if old == name:
        log(f"{name} is already current")
        return old
    if old is not None:
        atomic_symlink(root.previous_link, f"{RELEASES}/{old}")
    atomic_symlink(root.current_link, f"{RELEASES}/{name}")
    log(f"current -> {RELEASES}/{name}" + (f" (previous -> {RELEASES}/{old})" if old else ""))
    return old


def rollback(root: ReleaseRoot, log: Callable[[str], None] = print) -> str:
    """Return to the previous release (the one being left becomes ``previous``)."""
    prev = root.previous()
    if prev is None:
        raise SoftwareError(
            f"{root.previous_link} does not exist: there is nothing to roll back to"
        )
    switch(root, prev, log)
    return prev


def install_release(
    prefix: str | os.PathLike,
    *,
    python: str | None = None,
    source: str | None = None,
    log: Callable[[str], None] = print,
    run: Run = subprocess.run,
) -> Path:
    """`hpchub install --software`: build and check a new release, then make it current."""
    root = ReleaseRoot.of(prefix)
    dest = build_release(root, python=python, source=source, log=log, run=run)
    switch(root, dest.name, log)
    return dest
