"""`hpchub kernels sync`: make the shared folder hold exactly the kernels the rules ask for.

Idempotent: unchanged kernels are not rewritten. Only folders carrying our marker file are
ever updated or removed; a kernelspec someone else put in the same folder is left alone.
Each kernel folder is built beside its final place and renamed into it, so a server never
reads a half-written kernel.json.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.files import atomic_write, set_owner_mode
from .plan import GENERATOR, KernelDef

MARKER = "hpchub-kernel"
MARKER_TEXT = (
    f"Made by `{GENERATOR}` from the site file. It is rewritten or removed by the next sync;\n"
    "put hand-made kernels in a folder without this file.\n"
)


@dataclass(frozen=True)
class Change:
    """One line of the sync report."""

    action: str  # create, update, remove, keep, skip
    what: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:7} {self.what}" + (f"  ({self.detail})" if self.detail else "")


def _kernel_files(k: KernelDef, logo_dir: Path | None) -> dict[str, bytes]:
    files = {
        "kernel.json": (json.dumps(k.spec, indent=1, sort_keys=True) + "\n").encode(),
        MARKER: MARKER_TEXT.encode(),
    }
    if k.logos and logo_dir is not None:
        for name in ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg"):
            p = logo_dir / name
            if p.is_file():
                files[name] = p.read_bytes()
    return files


def ipykernel_logos() -> Path | None:
    """ipykernel's logo folder in this environment, if it is installed."""
    try:
        import ipykernel
    except ImportError:
        return None
    d = Path(ipykernel.__file__).parent / "resources"
    return d if d.is_dir() else None


def _read_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def is_ours(folder: Path) -> bool:
    """Whether a kernelspec folder was made by hpchub (it carries our marker file)."""
    return (folder / MARKER).is_file()


def _write_folder(target: Path, files: dict[str, bytes]) -> None:
    parent = target.parent
    tmp = parent / f".{target.name}.new-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o755)
    try:
        for name, data in files.items():
            path = tmp / name
            path.write_bytes(data)
            os.chmod(path, 0o644)
        os.chmod(tmp, 0o755)  # noqa: S103 - every user's server reads the kernels
        if target.exists():
            old = parent / f".{target.name}.old-{secrets.token_hex(4)}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _ensure_dir(path: Path) -> None:
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    # Every user's server reads the kernels; a link in the folder's place is refused.
    set_owner_mode(path, 0o755)


def sync_kernels(
    kernels_dir: Path,
    wanted: dict[str, KernelDef],
    dry_run: bool = False,
    logo_dir: Path | None = None,
) -> list[Change]:
    """Create, update and remove kernel folders under ``kernels_dir``; returns what changed."""
    changes: list[Change] = []
    existing = (
        {p.name: p for p in kernels_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}
        if kernels_dir.is_dir()
        else {}
    )
    if not dry_run:
        _ensure_dir(kernels_dir)
    for name in sorted(wanted):
        k = wanted[name]
        files = _kernel_files(k, logo_dir)
        folder = kernels_dir / name
        label = f"{name}  [{k.spec['display_name']}]"
        if name in existing:
            if not is_ours(folder):
                changes.append(Change("skip", label, "a kernel not made by hpchub has this name"))
                continue
            if _read_files(folder) == files:
                changes.append(Change("keep", label))
                continue
            action = "update"
        else:
            action = "create"
        changes.append(Change(action, label, f"module {k.module}"))
        if not dry_run:
            _write_folder(folder, files)
    for name, folder in sorted(existing.items()):
        if name in wanted or not is_ours(folder):
            continue
        changes.append(Change("remove", name, "its module is gone or no rule matches it"))
        if not dry_run:
            shutil.rmtree(folder)
    return changes


def sync_files(
    root: Path, files: dict[str, str], dry_run: bool = False, label: Callable[[str], str] = str
) -> list[Change]:
    """Write each ``root/relative`` file if its content differs (mode 644)."""
    changes = []
    for rel, text in sorted(files.items()):
        path = root / rel
        data = text.encode()
        if path.is_file() and path.read_bytes() == data:
            changes.append(Change("keep", label(rel)))
            continue
        changes.append(Change("update" if path.exists() else "create", label(rel)))
        if dry_run:
            continue
        _ensure_dir(path.parent)
        atomic_write(path, data, 0o644)
    return changes


def unsafe_owner(path: Path) -> str | None:
    """Why ``path`` (or its closest existing parent) is not safe to hold shared kernels."""
    p = path
    while not p.exists():
        p = p.parent
    st = p.stat()
    if st.st_mode & 0o022:
        return f"{p} is writable by group or others (mode {st.st_mode & 0o777:o})"
    if os.geteuid() == 0 and st.st_uid != 0:
        return f"{p} is not owned by root"
    return None
