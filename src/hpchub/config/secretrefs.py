"""Secrets by reference: the site file names files that hold secrets, never the secrets.

The site file and the Apache virtual host are readable by everyone on the hub node, so an
Apache directive whose value is a secret (OIDCClientSecret, OIDCCryptoPassphrase,
AuthLDAPBindPassword...) must live in a file only root and the web server can read, which the
virtual host Includes. `hpchub doctor` uses the same rule to find secrets in readable files.
"""

from __future__ import annotations

import re

_SECRET_NAME = re.compile(r"(?i)^[A-Za-z0-9_]*(secret|passphrase|password|passwd|bindpw)$")
"""Apache directive names whose argument is a secret (the name, not the value, tells)."""

_SECRET_KEY = re.compile(
    r"(?i)^\s*#?\s*-?\s*[\"']?\s*([A-Za-z0-9_]*(secret|passphrase|password|passwd|bindpw))"
    r"(\s*:\s*|\s+)[\"']?\S"
)
"""A line of a readable file that sets such a directive, or a YAML key of that kind (also
commented out: a secret in a comment is just as readable)."""


def secret_directive(line: str) -> str | None:
    """The directive name when ``line`` is an Apache directive carrying a secret, else None."""
    words = line.split()
    if len(words) >= 2 and _SECRET_NAME.match(words[0]):
        return words[0]
    return None


def refuse_inline_secrets(lines: list[str]) -> list[str]:
    """Validator: no directive in ``lines`` carries a secret value."""
    for line in lines:
        name = secret_directive(line)
        if name:
            raise ValueError(
                f"{name} holds a secret, and the site file and virtual host are readable by "
                f"everyone: put the '{name} ...' line in a file of mode 640 owned by "
                "root:www-data (Debian; root:apache on RHEL) and name that file in "
                "deploy.web.gate.include_files"
            )
    return lines


def secret_lines(text: str) -> list[tuple[int, str]]:
    """(line number, directive or key) for each line of ``text`` that sets a secret value."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        m = _SECRET_KEY.match(line)
        if m and not m.group(1).lower().endswith("file"):
            out.append((n, m.group(1)))
    return out


def redacted(text: str) -> str:
    """``text`` with a URL's password and a secret directive's value replaced by ***, for
    error messages (a refused value must not be echoed to the terminal or a log)."""
    text = re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", text)
    name = secret_directive(text)
    return f"{name} ***" if name else text
