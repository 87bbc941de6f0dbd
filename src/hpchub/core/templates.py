"""The one Jinja environment: the package's templates folder, StrictUndefined, config in, text out.

HTML templates (``*.html``, ``*.html.j2``) are autoescaped; everything else (shell, config
files, Markdown) is not, and shell values go through the ``q`` filter (``shlex.quote``).
"""

from __future__ import annotations

import shlex
from functools import cache

import jinja2


@cache
def environment(folder: str | None = None) -> jinja2.Environment:
    """The shared environment (built once): the package's templates, or those in ``folder``
    (the benchmark's, outside the package) with the same settings."""
    loader = (
        jinja2.FileSystemLoader(folder) if folder else jinja2.PackageLoader("hpchub", "templates")
    )
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "html.j2"), default_for_string=False, default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["q"] = lambda v: shlex.quote(str(v))
    return env


def render(template: str, **context: object) -> str:
    """The text of ``template`` rendered with ``context``."""
    return environment().get_template(template).render(**context)
