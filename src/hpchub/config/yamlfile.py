"""Reading the site file's YAML so that nothing is misread and every value keeps its place.

PyYAML follows YAML 1.1, where an unquoted ``12:00:00`` is the base-60 integer 43200, ``010``
is 8 and ``off`` is False. The loader here resolves plain scalars as YAML 1.2 does: only
decimal (or 0x/0o) integers, ordinary floats and true/false are anything but text. A key given
twice is an error naming both lines, and every key path is mapped to its line and column so
that errors can point at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

Path = tuple[int | str, ...]


class SiteLoader(yaml.SafeLoader):
    """A SafeLoader with YAML 1.2's core schema for booleans and numbers."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_yaml_int(self, node: yaml.Node) -> int:  # type: ignore[override]
        text = str(self.construct_scalar(node))  # type: ignore[arg-type]
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        if digits.startswith(("0x", "0o")):
            return sign * int(digits[2:], 16 if digits[1] == "x" else 8)
        return sign * int(digits, 10)


SiteLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
SiteLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
SiteLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
SiteLoader.add_constructor(_INT, SiteLoader.construct_yaml_int)


@dataclass(frozen=True)
class Mark:
    """A place in the file, 1-based as editors show it."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


@dataclass
class Document:
    """The parsed data, where each key path was written, and any key given twice."""

    data: object
    marks: dict[Path, Mark] = field(default_factory=dict)
    duplicates: list[tuple[Path, Mark, Mark]] = field(default_factory=list)

    def mark(self, path: Path) -> Mark | None:
        """The place of ``path``, or of its nearest ancestor that was written."""
        for end in range(len(path), -1, -1):
            found = self.marks.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


class YamlError(ValueError):
    """The text is not YAML (or not one document); ``mark`` says where."""

    def __init__(self, message: str, mark: Mark | None):
        self.mark = mark
        super().__init__(message)


def _mark(m: yaml.Mark) -> Mark:
    return Mark(m.line + 1, m.column + 1)


def _walk(node: yaml.Node, path: Path, doc: Document) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, Mark] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            here = _mark(key_node.start_mark)
            if key in seen:
                doc.duplicates.append(((*path, key), seen[key], here))
                continue
            seen[key] = here
            doc.marks[(*path, key)] = here
            _walk(value_node, (*path, key), doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.marks[(*path, i)] = _mark(item.start_mark)
            _walk(item, (*path, i), doc)


def parse_yaml(text: str) -> Document:
    """Parse ``text`` with YAML 1.2 scalars; raise YamlError with the place of a syntax error."""
    loader = SiteLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, {(): Mark(1, 1)})
        doc = Document(None, {(): _mark(node.start_mark)})
        _walk(node, (), doc)
        doc.data = loader.construct_document(node)
        return doc
    except yaml.YAMLError as err:
        m = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        raise YamlError(f"not valid YAML: {problem}", _mark(m) if m else None) from None
    finally:
        loader.dispose()
