"""The name rules of ``core.names`` as pydantic types for the site models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from ..core.names import check_name


def _rule(kind: str, what: str) -> AfterValidator:
    return AfterValidator(lambda v: check_name(kind, v, what))


UnixName = Annotated[str, _rule("unix", "Unix user or group name")]
"""A Unix user or group name: lower-case letters, digits, '_', '.', '-'; at most 32 characters."""

SlurmName = Annotated[str, _rule("slurm", "Slurm name")]
"""A Slurm partition, account, QOS or reservation name."""

CourseName = Annotated[str, _rule("course", "course name")]
"""A course name: it becomes a folder name and part of a profile key."""


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Realm = Annotated[str, BeforeValidator(_lower), _rule("realm", "realm")]
"""A realm or SSO scope, such as example.org; written in any case, kept in lower case."""


def _identity(value: object) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isprintable():
        raise ValueError(f"{value!r} is not a login name: use printable ASCII")
    if not value or len(value) > 256 or value != value.strip() or " " in value:
        raise ValueError(f"{value!r} is not a login name: no spaces, at most 256 characters")
    return value.lower()


Identity = Annotated[str, AfterValidator(_identity)]
"""A name as a login form or a gate gives it (anna.lee@EXAMPLE.ORG), kept in lower case."""
