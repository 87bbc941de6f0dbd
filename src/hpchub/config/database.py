"""The hub's database: SQLite in hub.data_dir (the default), or PostgreSQL.

The PostgreSQL password is named by reference (libpq's password file, which the hub user
reads), never written in the site file, which everyone on the hub node can read, nor in a URL,
an environment variable or a command line: every client is given the file's path (libpq's
passfile parameter) and reads it itself.
"""

from __future__ import annotations

import re
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
            "libpq's password file (pgpass format, e.g. one line *:*:*:*:PASSWORD), mode 600, "
            "owned by the hub user; the hub, upgrade-db and pg_dump read it themselves (none: "
            "the server trusts the hub user otherwise)."
        ),
    )

    def libpq_url(self) -> str:
        """The URL with the password file as libpq's passfile parameter (no password)."""
        return self.url + (f"?passfile={self.password_file}" if self.password_file else "")

    def parts(self) -> dict[str, str]:
        """user, host, port ('' for the default) and db of the URL."""
        m = _URL.fullmatch(self.url)
        assert m is not None  # noqa: S101 - validated above
        return {k: v or "" for k, v in m.groupdict().items()}
