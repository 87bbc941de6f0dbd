"""The file browser of users' servers: its root folder and the site's favourite folders.

The server runs as the user, so whatever the root, the file browser shows only what the
user's uid may read: these settings widen the view, never the rights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from .base import ProblemList, Strict, described, safe_path

FolderPath = Annotated[Path, safe_path(r"A-Za-z0-9_./+@-", "_ . / + @ -")]


class Favorite(Strict):
    """A folder every user finds among the file browser's favourites."""

    path: FolderPath = Field(description="The folder, an absolute path under `files.root`.")
    name: str | None = Field(
        None,
        min_length=1,
        max_length=60,
        pattern=described(r"^[^\x00-\x1f]+$", "one line of text, without control characters"),
        description="The name shown; by default the folder's own name.",
    )


class FileBrowserSettings(Strict):
    """Which folders the file browser of a user's server reaches (JupyterLab's left panel)."""

    root: FolderPath | None = Field(
        None,
        description=(
            "The top of the file browser, e.g. `/` to reach /scratch and project folders. By "
            "default the user's home (nothing above it is reachable). The server still opens "
            "in the home when the home is under the root."
        ),
    )
    favorites: list[Favorite] = Field(
        default_factory=list,
        description=(
            "Folders offered as favourites in the file browser (jupyterlab-favorites), e.g. "
            "/scratch; each must be under `root`. Users add and remove their own."
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> FileBrowserSettings:
        problems = ProblemList()
        for i, fav in enumerate(self.favorites):
            if self.root is None:
                problems.add(
                    ("favorites", i, "path"),
                    f"{fav.path} is outside the file browser: with no files.root the browser "
                    "shows only the home; set files.root (e.g. /) to offer favourites",
                )
            elif not fav.path.is_relative_to(self.root):
                problems.add(
                    ("favorites", i, "path"),
                    f"{fav.path} is not under files.root {self.root}: the file browser "
                    "cannot reach it",
                )
        problems.raise_if_any()
        return self

    def api_path(self, folder: Path) -> str:
        """``folder`` as Jupyter's contents API names it: relative to the root, '/'-separated."""
        assert self.root is not None
        rel = folder.relative_to(self.root).as_posix()
        return "" if rel == "." else rel

    def server_args(self, home: str) -> tuple[str, ...]:
        """The Jupyter server's options for a user whose home is ``home``: the root, and the
        home as the folder the file browser (and new notebooks) start in."""
        if self.root is None:
            return ()
        args = [f"--ServerApp.root_dir={self.root}"]
        if Path(home).is_relative_to(self.root) and Path(home) != self.root:
            args.append(f"--ContentsManager.preferred_dir={self.api_path(Path(home))}")
        return tuple(args)

    def lab_setting_overrides(self) -> dict[str, dict]:
        """JupyterLab's default settings for the favourites extension (empty without any)."""
        if not self.favorites:
            return {}
        favorites = [
            {
                "path": self.api_path(f.path),
                "contentType": "directory",
                "iconLabel": "ui-components:folder",
                **({"name": f.name} if f.name else {}),
            }
            for f in self.favorites
        ]
        return {"@jlab-enhanced/favorites:favorites": {"favorites": favorites}}
