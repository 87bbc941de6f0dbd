"""Read the site file and turn pydantic's errors into messages an admin can act on.

Every problem is one line that names the file, the line and column, the key path, the value
given and what is allowed, in words. All problems are listed, not only the first.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError

from .base import Problems, pattern_words
from .models import SiteConfig
from .reference import nested_model
from .secretrefs import redacted
from .yamlfile import Document, Mark, YamlError, parse_yaml

DEFAULT_PATH = Path("/etc/hpchub/hpchub.yaml")
HOW_TO_CREATE = "create one with `hpchub config init`, or name another with --config FILE"

Loc = tuple[int | str, ...]


class SiteConfigError(Exception):
    """The site file is missing, is not YAML, or does not match the models."""

    def __init__(self, path: Path | None, problems: list[str]):
        self.path = path
        self.problems = problems
        where = f"{path}: " if path else ""
        super().__init__("; ".join(p if p.startswith(where) else where + p for p in problems))


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


def clean_location(loc: tuple[int | str, ...]) -> Loc:
    """pydantic's location without its validator-function steps."""
    return tuple(p for p in loc if isinstance(p, int) or not str(p).startswith("function-"))


def format_location(loc: tuple[int | str, ...]) -> str:
    """('slurm', 'partitions', 0, 'name') -> 'slurm.partitions[0].name'."""
    out = ""
    for part in clean_location(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys allowed in the mapping that holds ``loc`` (empty if that is not a model)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part)) if current else None
        current = nested_model(field.annotation) if field else None
    return list(current.model_fields) if current else []


def _unknown(loc: Loc, model: type[BaseModel] | None, hint: str) -> str:
    close = difflib.get_close_matches(str(loc[-1]), _keys_at(model, loc), n=1) if model else []
    return f"unknown key (did you mean {close[0]!r}?)" if close else f"unknown key ({hint})"


def _shown(given: object) -> str:
    if isinstance(given, str):
        return repr(redacted(given))
    return repr(given) if not isinstance(given, dict | list) else type(given).__name__


def explain(
    err: ValidationError,
    unknown_hint: str = "check the spelling; see `hpchub config reference`",
    where: Callable[[Loc], str] | None = None,
    order: Callable[[Loc], tuple[int, int]] | None = None,
    model: type[BaseModel] | None = None,
) -> list[str]:
    """One line per problem: (place,) key path, what was given, what is allowed; in file order
    when ``order`` gives each key path's position."""
    place = where or (lambda loc: "")
    found: list[tuple[Loc, str]] = []
    for e in err.errors(include_url=False):
        loc = clean_location(tuple(e["loc"]))
        key = format_location(loc)
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            for rel, msg in cause.items:
                full = (*loc, *rel)
                # A check that names its own key path (the courses' checks) stands as it is.
                found.append((full, f"{format_location(full) + ': ' if full else ''}{msg}"))
            continue
        if e["type"] == "extra_forbidden":
            text = _unknown(loc, model, unknown_hint)
        elif e["type"] == "missing":
            text = "required key is missing"
        elif e["type"] == "string_pattern_mismatch":
            text = (
                f"{_shown(e.get('input'))} is not allowed: use {pattern_words(e['ctx']['pattern'])}"
            )
        else:
            msg = e["msg"].removeprefix("Value error, ")
            given = e.get("input")
            shown = "" if str(given) in msg else f" (given {_shown(given)})"
            text = msg + shown
        found.append((loc, f"{key}: {text}"))
    if order is not None:
        found.sort(key=lambda item: order(item[0]))
    return [place(loc) + text for loc, text in found]


def _place(path: Path | None, mark: Mark | None) -> str:
    return f"{path or 'site file'}, {mark}: " if mark else (f"{path}: " if path else "")


def parse_site(data: object, path: Path | None = None, doc: Document | None = None) -> SiteConfig:
    """Validate already-parsed YAML data into a SiteConfig, or raise SiteConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SiteConfigError(path, [f"the top level must be a mapping, got {type(data).__name__}"])
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as err:
        if doc is None:
            raise SiteConfigError(path, explain(err, model=SiteConfig)) from None

        def order(loc: Loc) -> tuple[int, int]:
            m = doc.mark(loc)
            return (m.line, m.column) if m else (0, 0)

        where = lambda loc: _place(path, doc.mark(loc))  # noqa: E731
        problems = explain(err, where=where, order=order, model=SiteConfig)
        raise SiteConfigError(path, problems) from None


def read_site_text(p: Path) -> str:
    """The file's text, or SiteConfigError: missing (and how to create it), unreadable, not UTF-8."""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SiteConfigError(p, [f"file not found: {HOW_TO_CREATE}"]) from None
    except OSError as err:
        raise SiteConfigError(p, [f"cannot read: {err.strerror}"]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise SiteConfigError(
            p,
            [
                f"{p}, line {line}, column {column}: byte {raw[err.start]:#04x} is not UTF-8: save it as UTF-8"
            ],
        ) from None


def parse_document(text: str, p: Path | None) -> Document:
    """``text`` parsed, with the place of every key; SiteConfigError for YAML problems."""
    try:
        doc = parse_yaml(text)
    except YamlError as err:
        raise SiteConfigError(p, [f"{_place(p, err.mark)}{err}"]) from None
    if doc.duplicates:
        raise SiteConfigError(
            p,
            [
                f"{_place(p, second)}{format_location(key)}: given twice, on line {first.line} "
                f"and on line {second.line}; keep one"
                for key, first, second in doc.duplicates
            ],
        )
    return doc


def parse_site_text(text: str, path: Path | None = None) -> SiteConfig:
    """Validate the text of a site file (``path`` names it in errors)."""
    doc = parse_document(text, path)
    return parse_site(doc.data, path, doc)


def load_site(path: str | os.PathLike[str] | None = None) -> SiteConfig:
    """Load and validate the site file; a missing file is an error that says how to make one."""
    p = site_path(path)
    return parse_site_text(read_site_text(p), p)
