"""The base of every site-file model, and checks shared by several sections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

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


def safe_path(chars: str, shown: str) -> AfterValidator:
    """A check that a path is absolute, of ``chars`` only (``shown`` in words) and without '..'."""
    rule = re.compile(rf"/[{chars}]*")

    def check(value: Path) -> Path:
        text = str(value)
        if not rule.fullmatch(text) or ".." in text.split("/"):
            raise ValueError(
                f"expected an absolute path of letters, digits and {shown} "
                f"(no spaces, quotes or '..'), got {text!r}"
            )
        return Path(text)

    return AfterValidator(check)


HTTP_URL_PATTERN = r"^https?://[A-Za-z0-9.\-\[\]:]+(:\d+)?/?$"
HttpUrl = Annotated[str, StringConstraints(pattern=HTTP_URL_PATTERN)]
"""An http(s) URL of a host and port only, where the hub, proxy or API listens."""
