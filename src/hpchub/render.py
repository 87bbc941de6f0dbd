"""Render the package's template files (Jinja2, StrictUndefined): config in, text out."""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("hpchub", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - config files, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: object) -> str:
    """The text of ``template`` rendered with ``context``."""
    return environment().get_template(template).render(**context)
