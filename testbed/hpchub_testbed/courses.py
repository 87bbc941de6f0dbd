"""Demo course materials on the testbed: a git repository and a plain folder.

The testbed's site file gives both courses to the first demo user only, so the second demo user
shows what a non-member sees (nothing). Tests rewrite the materials as they need.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .layout import Layout
from .system import sh

WORKSHOP_FILES = {
    "README.md": "# Demo workshop\n\nStart with notebooks/intro.ipynb.\n",
    "notebooks/intro.ipynb": (
        '{"cells": [{"cell_type": "code", "execution_count": null, "metadata": {}, '
        '"outputs": [], "source": ["print(5 * 4)"]}], "metadata": {}, '
        '"nbformat": 4, "nbformat_minor": 5}\n'
    ),
}
HANDBOOK_FILES = {"handbook.md": "# Cluster handbook\n\nBe kind to the login node.\n"}


def courses_dir(layout: Layout) -> Path:
    """Where the testbed keeps the demo materials (readable by the hub user)."""
    return layout.state / "courses"


def ensure_demo_courses(layout: Layout) -> None:
    """Create the demo git repository and folder if they are missing (idempotent)."""
    root = courses_dir(layout)
    repo = root / "workshop"
    folder = root / "handbook"
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        sh("git", "init", "-q", "-b", "main", str(repo))
        write_files(repo, WORKSHOP_FILES)
        commit(repo, "Demo workshop materials")
    if not folder.is_dir():
        folder.mkdir(parents=True)
        write_files(folder, HANDBOOK_FILES)
    sh("chmod", "-R", "go-w,a+rX", str(root))


def write_files(root: Path, files: dict[str, str | None]) -> None:
    """Write (or, for None, delete) files below ``root``."""
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)


def commit(repo: Path, message: str) -> None:
    """Commit everything in ``repo`` (as the testbed's author)."""
    git = ["git", "-C", str(repo), "-c", "user.name=hpchub testbed"]
    git += ["-c", "user.email=testbed@hpchub.invalid"]
    subprocess.run([*git, "add", "-A"], check=True, capture_output=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [*git, "commit", "-q", "--allow-empty", "-m", message], check=True, capture_output=True
    )
