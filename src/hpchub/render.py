"""Render template files (Jinja2, StrictUndefined): config in, text out.

One set of Jinja settings for every package that renders templates: hpchub's own, and the
development tools (the testbed, the benchmark) that keep theirs in their own package.
"""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def environment(package: str = "hpchub") -> jinja2.Environment:
    """The Jinja environment for the ``templates`` folder of ``package``."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - config files, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["py"] = repr  # a Python literal, for templates that write Python
    return env


def render(template: str, **context: object) -> str:
    """The text of hpchub's ``template`` rendered with ``context``."""
    return environment().get_template(template).render(**context)


def render_from(package: str, template: str, **context: object) -> str:
    """The text of ``template`` from ``package``'s own templates folder."""
    return environment(package).get_template(template).render(**context)
