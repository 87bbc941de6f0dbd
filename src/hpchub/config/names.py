"""The name rules of ``core.names`` as pydantic types for the site models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from ..core.names import check_name


def _rule(kind: str, what: str) -> AfterValidator:
    return AfterValidator(lambda v: check_name(kind, v, what))


UnixName = Annotated[str, _rule("unix", "Unix user or group name")]
"""A Unix user or group name: lower-case letters, digits, '_', '.', '-'; at most 32 characters."""

SlurmName = Annotated[str, _rule("slurm", "Slurm name")]
"""A Slurm partition, account, QOS or reservation name."""

CourseName = Annotated[str, _rule("course", "course name")]
"""A course name: it becomes a folder name and part of a profile key."""
