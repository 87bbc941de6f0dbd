"""`hpchub doctor`: secrets in files that everyone on the hub node can read.

The site file and the Apache virtual host are world-readable by design, so they must hold no
secret (config.secretrefs); the files that do hold one (the gate's include files, the database
password file) must not be world-readable. The hub's own secret files are check_secrets's.
"""

from __future__ import annotations

import stat
from pathlib import Path

from ..config.secretrefs import secret_lines
from .findings import Finding, error, ok

NAME = "secrets in readable files"


def _world_readable(path: Path) -> bool:
    try:
        return bool(path.lstat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def exposed_secrets(d) -> list[Finding]:
    """A secret in the site file or the vhost where that file is world-readable; a gate
    include file or the database password file that is world-readable."""
    paths = d.paths
    web = paths.deploy.web
    out = []
    texts = [(paths.site_path, "the site file")]
    if web.enabled:
        texts.append((web.vhost_file, "the virtual host"))
    for path, what in texts:
        if not _world_readable(path):
            continue
        try:
            found = secret_lines(path.read_text(errors="replace"))
        except OSError:
            continue
        for line, name in found:
            out.append(
                error(
                    NAME,
                    f"{path}:{line} ({what}, readable by everyone) sets {name}",
                    "move that line into a file of mode 640 root:www-data, name the file in "
                    "deploy.web.gate.include_files, then renew the secret (it may have been read)",
                )
            )
    held = [(f, "a gate include file") for f in (web.gate.include_files if web.enabled else [])]
    # The hub's own secret files: check_secrets (mode 600, owner) reports them already.
    db = paths.site.hub.database
    if db is not None and db.password_file is not None:
        held.append((db.password_file, "the database password file"))
    for path, what in held:
        if _world_readable(path):
            out.append(
                error(
                    NAME,
                    f"{path} ({what}) is readable by everyone",
                    f"chmod o-rwx {path}, then renew the secret (it may have been read)",
                )
            )
    return out or [ok(NAME, "no secret in a file that everyone can read")]
