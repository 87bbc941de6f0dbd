"""`hpchub-jupyterhub-singleuser`: jupyterhub-singleuser that serves on the launcher's socket.

The launcher (``hpchub-singleuser``) binds the port and passes the listening socket in
``HPCHUB_LISTEN_FD``; the server (:mod:`.adopting`) adopts it instead of binding, so the port
is never free between the two and stays held by the launcher after the server exits.

Nothing of Jupyter is imported before :func:`main` has deferred what start-up does not need
(:mod:`.lazy`).
"""

from __future__ import annotations

from . import lazy


def main(argv: list[str] | None = None) -> None:
    """Entry point of `hpchub-jupyterhub-singleuser` (arguments as jupyterhub-singleuser's).

    The extension is JupyterHub's own (its extension point names that class), given our
    ServerApp class.
    """
    lazy.defer()
    lazy.import_lab_without_yarn()
    from jupyterhub.singleuser.extension import JupyterHubSingleUser

    from .adopting import AdoptingServerApp

    JupyterHubSingleUser.serverapp_class = AdoptingServerApp
    JupyterHubSingleUser.launch_instance(argv)
