"""A commented starter site file, written from the models: each key with its description.

`hpchub config init` fills it with the cluster's real partitions; everything else is the
models' own default, so the starter validates as written and says what each key does.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import yaml
from pydantic import BaseModel

from .models import SiteConfig
from .reference import nested_model
from .units import format_duration

WIDTH = 96


@dataclass(frozen=True)
class FoundPartition:
    """A partition as Slurm reports it: its name and time limit (None: no limit)."""

    name: str
    max_time: int | None = None


def _scalar(value: object) -> str:
    # PyYAML quotes whatever YAML 1.1 would misread ('12:00:00', 'off'), so both readers agree.
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000).removesuffix("\n...\n").strip()
    )


def _comment(text: str, pad: str) -> list[str]:
    return [
        f"{pad}# {line}" for line in textwrap.wrap(" ".join(text.split()), WIDTH - len(pad) - 2)
    ]


def _block(value: object, pad: str) -> list[str]:
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=WIDTH)
    return [pad + line for line in text.splitlines()]


def _emit(model: type[BaseModel], data: dict, pad: str, out: list[str]) -> None:
    for name, field in model.model_fields.items():
        if name not in data:
            continue
        value = data[name]
        sub = nested_model(field.annotation)
        if field.description:
            out += _comment(field.description, pad)
        if sub is not None and isinstance(value, dict):
            out.append(f"{pad}{name}:")
            _emit(sub, value, pad + "  ", out)
        elif isinstance(value, list | dict) and value:
            out.append(f"{pad}{name}:")
            out += _block(value, pad + "  ")
        else:
            out.append(f"{pad}{name}: {_scalar(value)}")


def starter_text(partitions: list[FoundPartition], source: str) -> str:
    """The starter site file for a cluster with ``partitions`` (in Slurm's order)."""
    slurm: dict = {}
    if partitions:
        slurm["partitions"] = [
            {"name": p.name, **({"max_time": format_duration(p.max_time)} if p.max_time else {})}
            for p in partitions
        ]
    site = SiteConfig.model_validate({"hub": {"allowed_groups": ["jupyter"]}, "slurm": slurm})
    out = [
        "# hpchub site file, written by `hpchub config init` " + source + ".",
        "# Sizes and durations carry their unit (4G, 90m, 8h, 2d); switches are true or false.",
        "# Check it with `hpchub config validate`; every key is in docs/reference/site-file.md.",
        "",
    ]
    data = site.model_dump(mode="json")
    for name, field in SiteConfig.model_fields.items():
        sub = nested_model(field.annotation)
        out += _comment(field.description or "", "")
        value = data[name]
        if sub is not None and isinstance(value, dict):
            out.append(f"{name}:")
            _emit(sub, value, "  ", out)
        elif value:
            out.append(f"{name}:")
            out += _block(value, "  ")
        else:
            out.append(f"{name}: {_scalar(value)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
