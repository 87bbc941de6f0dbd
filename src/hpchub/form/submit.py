"""Read a form submission or a query string into user options (validation follows in one place)."""

from __future__ import annotations

from collections.abc import Mapping

from ..config.profiles import CUSTOM_KEY
from ..resources.request import CUSTOM_FIELDS, flatten


def options_from_form(form: Mapping[str, list[str]]) -> dict[str, object]:
    """Single values; the custom fields only when 'custom' is chosen (the form always sends them)."""
    # JupyterHub's own fields (the XSRF token) are not options.
    opts = flatten({k: v for k, v in form.items() if not k.startswith("_")})
    if opts.get("profile") != CUSTOM_KEY:
        for f in CUSTOM_FIELDS:
            opts.pop(f, None)
    return opts
