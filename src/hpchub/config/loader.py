"""Read the site file and turn pydantic's errors into messages an admin can act on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from .models import SiteConfig

DEFAULT_PATH = Path("/etc/hpchub/hpchub.yaml")


class SiteConfigError(Exception):
    """The site file is missing, is not YAML, or does not match the models."""

    def __init__(self, path: Path | None, problems: list[str]):
        self.path = path
        self.problems = problems
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(problems))


def site_path(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The site file to use: an explicit path, else $HPCHUB_CONFIG, else /etc/hpchub/hpchub.yaml."""
    if explicit:
        return Path(explicit)
    env = os.environ if environ is None else environ
    if env.get("HPCHUB_CONFIG"):
        return Path(env["HPCHUB_CONFIG"])
    return DEFAULT_PATH


def format_location(loc: tuple[int | str, ...]) -> str:
    """('slurm', 'partitions', 0, 'name') -> 'slurm.partitions[0].name'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "function-after", "function-before")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def explain(
    err: ValidationError, unknown_hint: str = "check the spelling; see `hpchub config schema`"
) -> list[str]:
    """One line per problem: key path, what was given, what is allowed."""
    lines = []
    for e in err.errors(include_url=False):
        loc = format_location(tuple(e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key ({unknown_hint})")
        elif e["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        else:
            given = e.get("input")
            shown = repr(given) if not isinstance(given, dict | list) else type(given).__name__
            lines.append(f"{loc}: {msg} (given {shown})")
    return lines


def parse_site(data: object, path: Path | None = None) -> SiteConfig:
    """Validate already-parsed YAML data into a SiteConfig, or raise SiteConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SiteConfigError(path, [f"the top level must be a mapping, got {type(data).__name__}"])
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as err:
        raise SiteConfigError(path, explain(err)) from None


def load_site(path: str | os.PathLike[str] | None = None) -> SiteConfig:
    """Load and validate the site file. A missing default file means all defaults."""
    p = site_path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        if path is None and p == DEFAULT_PATH and not os.environ.get("HPCHUB_CONFIG"):
            return SiteConfig()
        raise SiteConfigError(p, ["file not found"]) from None
    except OSError as err:
        raise SiteConfigError(p, [f"cannot read: {err.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SiteConfigError(
            p, [f"{where}not valid YAML ({getattr(err, 'problem', err)})"]
        ) from None
    return parse_site(data, p)
