"""Text that users control, made safe to print on an admin's terminal."""

from __future__ import annotations

import re

# C0 and C1 controls and DEL, except tab; an escape sequence loses its ESC and is harmless.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(value: object) -> str:
    """``value`` as text with every control character shown as '?' (newlines included)."""
    return _CONTROLS.sub("?", str(value))
