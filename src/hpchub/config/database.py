"""The hub's database: SQLite in hub.data_dir (the default), or PostgreSQL.

The PostgreSQL password is named by reference (a file the hub user reads), never written in
the site file, which everyone on the hub node can read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from .base import Strict
from .deploy import SafePath

_URL = re.compile(
    r"postgresql://(?P<user>[A-Za-z0-9_.-]+)@(?P<host>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\])"
    r"(:(?P<port>\d{1,5}))?/(?P<db>[A-Za-z0-9_.-]+)"
)
URL_HELP = "postgresql://USER@HOST[:PORT]/DATABASE"


def _pg_url(value: object) -> str:
    text = str(value)
    if re.fullmatch(r"postgresql(\+\w+)?://[^@/]*:[^@/]*@.*", text):
        raise ValueError(
            "the URL holds a password, and the site file is readable by everyone: write "
            f"{URL_HELP} and put the password in a file (mode 600, owned by the hub user) "
            "named by hub.database.password_file"
        )
    if not _URL.fullmatch(text):
        raise ValueError(f"expected {URL_HELP}, got {text!r}")
    return text


class DatabaseSettings(Strict):
    """PostgreSQL as the hub's database (without this section: SQLite in hub.data_dir)."""

    url: Annotated[str, BeforeValidator(_pg_url)] = Field(
        description=f"Where the database is: {URL_HELP} (no password here).",
    )
    password_file: SafePath | None = Field(
        None,
        description=(
            "A file holding the database password on one line, mode 600, owned by the hub "
            "user (none: the server trusts the hub user, e.g. peer or certificate)."
        ),
    )

    def parts(self) -> dict[str, str]:
        """user, host, port ('' for the default) and db of the URL."""
        m = _URL.fullmatch(self.url)
        assert m is not None  # noqa: S101 - validated above
        return {k: v or "" for k, v in m.groupdict().items()}


def read_password(path: Path | None) -> str:
    """The password in ``path`` (first line, stripped); '' without a file."""
    if path is None:
        return ""
    return path.read_text().splitlines()[0].strip() if path.stat().st_size else ""
