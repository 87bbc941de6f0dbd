"""Constrained names that end up in command lines and files: validated once, here."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

UNIX_NAME_PATTERN = r"^[a-z_][a-z0-9_.-]{0,31}$"
SLURM_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"

UnixName = Annotated[str, StringConstraints(pattern=UNIX_NAME_PATTERN)]
"""A Unix user or group name: lower-case letters, digits, '_', '.', '-'; at most 32 characters."""

SlurmName = Annotated[str, StringConstraints(pattern=SLURM_NAME_PATTERN)]
"""A Slurm partition, account, QOS or reservation name."""
