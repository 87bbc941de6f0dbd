"""The ServerApp of `hpchub-jupyterhub-singleuser`: it serves on the launcher's socket.

The launcher (``hpchub-singleuser``) binds the port and passes the listening socket in
``HPCHUB_LISTEN_FD``; this server adopts it instead of binding, so the port is never free
between the two and stays held by the launcher after the server exits.
"""

from __future__ import annotations

import os

from jupyter_server.serverapp import ServerApp

from .listen import LISTEN_FD_ENV, adopt


class AdoptingServerApp(ServerApp):
    """A ServerApp whose bind step adopts the inherited socket when there is one."""

    def _find_http_port(self) -> None:
        fd = os.environ.get(LISTEN_FD_ENV)
        if not fd:
            return super()._find_http_port()
        self._adopted = adopt(fd)
        self.port = self._adopted.getsockname()[1]
        return None

    def _bind_http_server(self) -> None:
        sock = getattr(self, "_adopted", None)
        if sock is None:
            return super()._bind_http_server()
        self.http_server.add_socket(sock)
        return None
