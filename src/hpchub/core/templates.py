"""The one Jinja environment: the package's templates folder, StrictUndefined, config in, text out.

HTML templates (``*.html``, ``*.html.j2``) are autoescaped; everything else (shell, config
files, Markdown) is not, and shell values go through the ``q`` filter (``shlex.quote``).
"""

from __future__ import annotations

import shlex
from functools import cache

import jinja2


@cache
def environment(folder: str | None = None, package: str = "hpchub") -> jinja2.Environment:
    """The shared settings (each environment built once): the ``templates`` folder of
    ``package`` (hpchub's own, or a development tool's such as the testbed's), or the templates
    in ``folder`` (the benchmark's, outside any package)."""
    loader = (
        jinja2.FileSystemLoader(folder) if folder else jinja2.PackageLoader(package, "templates")
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
    env.filters["py"] = repr  # a Python literal, for templates that write Python
    return env


def render(template: str, **context: object) -> str:
    """The text of ``template`` rendered with ``context``."""
    return environment().get_template(template).render(**context)


def render_from(package: str, template: str, **context: object) -> str:
    """The text of ``template`` from ``package``'s own templates folder."""
    return environment(package=package).get_template(template).render(**context)
