"""Apps inside the job, for jupyter-server-proxy (its ``jupyter_serverproxy_servers`` entry point).

jupyter-server-proxy starts the app on first use and proxies to it after checking the user's
Jupyter login. With ``unix_socket: True`` it makes the socket's folder with
``tempfile.mkdtemp``: a new folder of a random name, mode 0700, created with ``mkdir`` (which
never follows a link and fails on anything already there, so a name planted in /tmp by another
user is skipped). Only the user can enter it, so only the user's own server reaches the app.

The desktop is jupyter-remote-desktop-proxy's own entry point (TigerVNC on a Unix socket, no
TCP port); RStudio is jupyter-rsession-proxy's, where a site installs it.
"""

from __future__ import annotations

import os

CODE_SERVER_ENV = "HPCHUB_CODE_SERVER"
"""The job's variable naming the code-server program (apps.code_server; set by the hub)."""


def vscode() -> dict:
    """VS Code (code-server) on a private Unix socket, without a login of its own: the proxy
    in front of it has already checked the user's Jupyter login."""
    exe = os.environ.get(CODE_SERVER_ENV, "")
    if not exe or not os.access(exe, os.X_OK):
        raise RuntimeError(
            f"VS Code is not offered here: {CODE_SERVER_ENV} ({exe or 'unset'}) names no program "
            "this user can run (apps.code_server in the site file)"
        )
    return {
        "command": [
            exe,
            "--auth=none",
            "--socket={unix_socket}",
            "--socket-mode=600",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--ignore-last-opened",
            os.path.expanduser("~"),
        ],
        "unix_socket": True,
        # The first start unpacks the user's settings folder: slow on shared filesystems.
        "timeout": 120,
        "new_browser_window": False,
        "launcher_entry": {"title": "VS Code", "category": "Notebook"},
    }
