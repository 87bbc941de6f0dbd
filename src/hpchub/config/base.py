"""The base of every site-file model, and checks shared by several sections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

_SBATCH_OPTION = re.compile(r"--[a-z][a-z-]*(=[A-Za-z0-9_.,:=@%/+-]+)?")

# What each `pattern=` constraint of the models allows, in words: errors never show a regex.
_PATTERN_WORDS: dict[str, str] = {}


def described(pattern: str, words: str) -> str:
    """``pattern``, registered with the words an error shows instead of the regex."""
    _PATTERN_WORDS[pattern] = words
    return pattern


def text_matching(pattern: str, words: str, **constraints: object) -> object:
    """A str type that must match ``pattern``; its errors say ``words`` instead."""
    return Annotated[str, StringConstraints(pattern=described(pattern, words), **constraints)]


def pattern_words(pattern: str) -> str:
    """The words for a registered pattern (a plain fallback for an unregistered one)."""
    return _PATTERN_WORDS.get(
        pattern, "a value of the allowed form (see `hpchub config reference`)"
    )


class Problems(ValueError):
    """Several cross-field problems found at once; each has a key path relative to the model."""

    def __init__(self, items: list[tuple[tuple[int | str, ...], str]]):
        self.items = items
        super().__init__("; ".join(msg for _, msg in items))


class ProblemList:
    """Collects cross-field problems in a model validator, then raises them together."""

    def __init__(self) -> None:
        self.items: list[tuple[tuple[int | str, ...], str]] = []

    def add(self, path: tuple[int | str, ...], message: str) -> None:
        self.items.append((path, message))

    def absorb(self, path: tuple[int | str, ...], err: ValueError) -> None:
        """Add an error raised by a check, keeping the paths of a Problems."""
        if isinstance(err, Problems):
            self.items += [((*path, *p), m) for p, m in err.items]
        else:
            self.add(path, str(err))

    def raise_if_any(self) -> None:
        if self.items:
            raise Problems(self.items)


class Strict(BaseModel):
    """Base for all site-file models: unknown keys are errors, values are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    @field_validator("*", mode="before")
    @classmethod
    def _true_or_false(cls, value: object, info: ValidationInfo) -> object:
        # pydantic would read 'off', 'no', 'n' or '0' as False: a switch is true or false.
        name = info.field_name
        if name and isinstance(value, str) and cls.model_fields[name].annotation in (bool, "bool"):
            raise ValueError(f"{value!r} is not a switch: write true or false")
        return value


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


HttpUrl = text_matching(
    r"^https?://[A-Za-z0-9.\-\[\]:]+(:\d+)?/?$",
    "a URL of the form http(s)://HOST[:PORT]/ with no path",
)
"""An http(s) URL of a host and port only, where the hub, proxy or API listens."""
