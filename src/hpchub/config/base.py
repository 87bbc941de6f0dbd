"""The base of every site-file model, and checks shared by several sections."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_SBATCH_OPTION = re.compile(r"--[a-z][a-z-]*(=[A-Za-z0-9_.,:=@%/+-]+)?")


class Strict(BaseModel):
    """Base for all site-file models: unknown keys are errors, values are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def check_sbatch_option(arg: str) -> str:
    """``arg`` if it is a plain --name[=value] sbatch option, else ValueError naming the rule."""
    if not _SBATCH_OPTION.fullmatch(arg):
        raise ValueError(
            f"sbatch option {arg!r} is not allowed: use the form --name=value with letters, "
            "digits and _.,:=@%/+- only"
        )
    return arg
