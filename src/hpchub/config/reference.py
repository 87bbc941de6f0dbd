"""The configuration reference in Markdown, generated from the models (never written by hand)."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from .models import SiteConfig


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace("hpchub.config.models.", "")
    # Python 3.13 prints pathlib._local.Path where 3.11 printed pathlib.Path.
    text = re.sub(r"pathlib\.(_local\.)?", "", text)
    # Annotated[str, StringConstraints(...)] -> str: the description says what is allowed.
    text = re.sub(r"Annotated\[(\w+), \w+\([^()]*\)\]", r"\1", text)
    return text.replace("|", "or")


def _field_type(field: FieldInfo) -> str:
    # Sizes and durations are ints inside; the reader writes them with a unit.
    text = repr(field.metadata) + repr(field.annotation)
    if "duration_input" in text:
        kind = "duration"
    elif "memory_input" in text:
        kind = "size"
    else:
        return _type_name(field.annotation)
    return kind + (" or None" if "None" in repr(field.annotation) else "")


def _default(defaults: dict | None, name: str, field: FieldInfo) -> str:
    if defaults is not None and name in defaults:
        value = defaults[name]
    elif field.is_required():
        return "(required)"
    elif field.default_factory is not None:
        value = to_jsonable_python(field.default_factory())  # type: ignore[call-arg]
    else:
        value = to_jsonable_python(field.default)
    return "`" + json.dumps(value) + "`"


def nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def _section(
    model: type[BaseModel], path: str, out: list[str], seen: set[str], defaults: dict | None
) -> None:
    out.append(f"## `{path}`\n")
    # inspect.cleandoc: Python 3.13 strips docstring indentation itself, 3.11 does not.
    out.append(inspect.cleandoc(model.__doc__ or "") + "\n")
    out.append("| key | type | default | description |")
    out.append("|---|---|---|---|")
    children = []
    for name, field in model.model_fields.items():
        sub = nested_model(field.annotation)
        desc = (field.description or "").replace("|", "\\|")
        if sub is not None:
            children.append((name, sub))
            kind = "list of " + sub.__name__ if "list" in str(field.annotation) else sub.__name__
            out.append(f"| `{name}` | {kind} | (see `{path}.{name}`) | {desc} |")
        else:
            out.append(
                f"| `{name}` | {_field_type(field)} | {_default(defaults, name, field)} | {desc} |"
            )
    out.append("")
    for name, sub in children:
        key = f"{path}.{name}"
        if sub.__name__ in seen:
            continue
        seen.add(sub.__name__)
        sub_defaults = (defaults or {}).get(name)
        _section(sub, key, out, seen, sub_defaults if isinstance(sub_defaults, dict) else None)
        if isinstance(sub_defaults, list) and sub_defaults:
            out.append(f"Default `{key}`:\n")
            out.append(
                "```yaml\n" + yaml.safe_dump({name: sub_defaults}, sort_keys=False) + "```\n"
            )


def markdown() -> str:
    """The whole reference as Markdown."""
    out = [
        "# Site file reference",
        "",
        "Generated from hpchub's models by `hpchub config reference`; do not edit by hand.",
        "Every section forbids unknown keys. A size is written with its unit: `512M`, `4G`. A",
        "duration is written with its unit: `30s`, `90m`, `8h`, `2d`, or Slurm's `D-HH:MM:SS` as",
        "a quoted string. A bare number is refused in both, because it could mean anything.",
        "Switches are `true` or `false` (not yes/no/on/off).",
        "",
    ]
    _section(SiteConfig, "site", out, set(), SiteConfig().model_dump(mode="json"))
    return "\n".join(out).rstrip() + "\n"
