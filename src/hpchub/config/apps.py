"""Site-file section ``apps``: what a server can open in besides JupyterLab.

Each app runs inside the user's job behind jupyter-server-proxy and listens on a Unix socket in
a folder only the user can enter, never on a port of the node.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Strict
from .kernels import SafePath

AppName = Literal["jupyterlab", "desktop", "vscode", "rstudio"]
"""The apps hpchub knows; ``jupyterlab`` is always there."""

APP_TITLES: dict[str, str] = {
    "jupyterlab": "JupyterLab",
    "desktop": "Linux desktop (Xfce)",
    "vscode": "VS Code (code-server)",
    "rstudio": "RStudio",
}
"""What the spawn form calls each app."""

APP_PATHS: dict[str, str] = {
    "desktop": "/desktop/",
    "vscode": "/vscode/",
    "rstudio": "/rstudio/",
}
"""The path under the user's server that each proxied app answers at (jupyter-server-proxy's
name for it: jupyter-remote-desktop-proxy's, hpchub's own and jupyter-rsession-proxy's)."""


class AppSettings(Strict):
    """Apps a user can choose on the spawn form; the server opens in the chosen one."""

    offered: list[AppName] = Field(
        default_factory=list,
        description=(
            "Apps offered besides JupyterLab (which always is, and is the default): desktop "
            "(Xfce on TigerVNC through jupyter-remote-desktop-proxy; the nodes need Debian's "
            "tigervnc-standalone-server, xfce4-session and dbus-x11), vscode (code-server, "
            "see code_server) and rstudio (jupyter-rsession-proxy in singleuser.prefix and "
            "RStudio Server's rserver on the nodes). JupyterLab's launcher shows every app "
            "that is installed."
        ),
    )
    code_server: SafePath | None = Field(
        None,
        description=(
            "The code-server program on the nodes, e.g. /opt/hpchub/code-server/4.100.3/"
            "node_modules/.bin/code-server (npm install --prefix DIR code-server@4.100.3); "
            "needed when vscode is offered."
        ),
    )

    @model_validator(mode="after")
    def _complete(self) -> AppSettings:
        if "vscode" in self.offered and self.code_server is None:
            raise ValueError("vscode is offered but apps.code_server (the program) is not set")
        if len(set(self.offered)) != len(self.offered):
            raise ValueError("an app is listed twice in apps.offered")
        return self

    def choices(self) -> tuple[str, ...]:
        """What the form offers, the default (JupyterLab) first."""
        return ("jupyterlab", *(a for a in self.offered if a != "jupyterlab"))


def app_url(app: str, lab_url: str) -> str:
    """The URL a server opens at for ``app`` (``lab_url``, singleuser.default_url, for JupyterLab)."""
    return APP_PATHS.get(app, lab_url)
