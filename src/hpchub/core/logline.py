"""One line per hpchub event, for the journal: what happened, then who and which job.

``event_line("job submitted", user="alice", server="", job="123", partition="jupyter-short")``
gives ``job submitted user=alice server="" job=123 partition=jupyter-short``: grep-able, and
``journalctl -u hpchub --grep 'user=alice'`` finds every line of one user. Values are made
printable (a newline can neither split a line nor forge another), quoted when they hold spaces
or quotes, and never carry a secret: a value whose key names one, and anything in a value that
looks like a token, is replaced by ``[hidden]``.
"""

from __future__ import annotations

import json
import re

from .text import printable

HIDDEN = "[hidden]"

# Keys whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(r"token|secret|password|passwd|cookie|authorization|api_key", re.I)
# Secrets inside free text (an error message, a command's output):
_SECRET_TEXT = [
    # "token abc", "Bearer abc", "password=abc", "api_token: abc", "JUPYTERHUB_API_TOKEN=abc"
    re.compile(
        r"(?i)\b((?:\w*token|bearer|secret|password|passwd|api_key)(?:\s*[=:]\s*|\s+))"
        r"(?!\[hidden\])[^\s,;\"']+"
    ),
    # JupyterHub's tokens and hex digests (32 or more hex digits)
    re.compile(r"()\b[0-9a-fA-F]{32,}\b"),
    # token_urlsafe-like runs: 32 or more of [A-Za-z0-9_-] with upper, lower case and digits
    re.compile(r"()\b(?=[\w-]*[A-Z])(?=[\w-]*[a-z])(?=[\w-]*\d)[\w-]{32,}\b"),
]


def scrub(text: str) -> str:
    """``text`` with anything that looks like a token or password replaced by ``[hidden]``."""
    for pattern in _SECRET_TEXT:
        text = pattern.sub(lambda m: m.group(1) + HIDDEN, text)
    return text


def _value(key: str, value: object) -> str:
    if _SECRET_KEY.search(key):
        return HIDDEN
    text = scrub(printable("" if value is None else value))
    if text == "" or any(c in text for c in " \t\"'=\\"):
        return json.dumps(text, ensure_ascii=False)
    return text


def event_line(event: str, **fields: object) -> str:
    """``event`` and then ``key=value`` for each field, in the order given, on one line."""
    parts = [scrub(printable(event))]
    parts += [f"{key}={_value(key, value)}" for key, value in fields.items()]
    return " ".join(parts)
