"""POST /hub/api/hpchub/port: a running job reports its port, and nothing else.

Unlike batchspawner's handler (which setattr()s every key of the body onto the spawner), this
accepts exactly ``{"port": <int>}`` within the site's range, or ``{"ended": true}`` when the
server has exited, authenticated by the token of that very server. Anything else is a 400 and changes nothing.
"""

from __future__ import annotations

import asyncio
import json

from jupyterhub.apihandlers.base import APIHandler
from tornado import web
from traitlets.config import Config

from .eventlog import INFO, log_event
from .slurm import SlurmSpawner

ENDED = "ended"


def parse_port_body(body: bytes, port_range: tuple[int, int]) -> int | str:
    """The port from a callback body, or ``ENDED`` for ``{"ended": true}``; ValueError naming
    what is wrong otherwise."""
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise ValueError('the body must be JSON: {"port": <integer>} or {"ended": true}') from None
    if not isinstance(data, dict):
        raise ValueError('the body must be a JSON object: {"port": <integer>} or {"ended": true}')
    if list(data) == ["ended"] and data["ended"] is True:
        return ENDED
    extra = sorted(set(data) - {"port"})
    if extra:
        raise ValueError(f"only 'port' (or 'ended': true alone) is accepted; refused keys: {extra}")
    port = data.get("port")
    if not isinstance(port, int) or isinstance(port, bool):
        raise ValueError("port must be an integer")
    lo, hi = port_range
    if not lo <= port <= hi:
        raise ValueError(f"port {port} is outside the allowed range {lo}-{hi}")
    return port


class PortCallbackHandler(APIHandler):
    """The job's single way to talk back to the hub."""

    def check_xsrf_cookie(self):
        # Token-authenticated only (no cookies are accepted below).
        return

    async def post(self):
        token = self.get_auth_token()
        orm_token = self.get_token() if token else None
        if orm_token is None or orm_token.user is None:
            raise web.HTTPError(403, "a server's own API token is required")
        user = self.users[orm_token.user]
        spawner = next(
            (
                s
                for s in user.spawners.values()
                if isinstance(s, SlurmSpawner) and s.owns_token(token)
            ),
            None,
        )
        if spawner is None:
            raise web.HTTPError(403, "this token belongs to no starting server")
        try:
            port = parse_port_body(self.request.body, tuple(spawner.port_range))
        except ValueError as err:
            raise web.HTTPError(400, str(err)) from None
        if port == ENDED:
            await self._server_ended(user, spawner)
            self.set_status(204)
            self.finish()
            return
        if spawner.job_port and spawner.ready:
            raise web.HTTPError(409, "the server already reported its port")
        spawner.port_reported(port)
        log_event(spawner, INFO, "port reported", port=port)
        self.set_status(204)
        self.finish()

    async def _server_ended(self, user, spawner: SlurmSpawner) -> None:
        """The job's server has exited: remove its route before the launcher frees the port.

        JupyterHub's own stop path then stops the spawner; the launcher exits on our answer,
        and the spawner records Slurm's final state once the job has ended.
        """
        log_event(spawner, INFO, "server ended (the job says)")
        spawner.server_ended()
        if spawner._stop_pending:
            return  # JupyterHub is stopping it already, and removed the route first
        for _ in range(50):  # a start finishing right now adds the route when it is done
            if not spawner._spawn_pending:
                break
            await asyncio.sleep(0.1)
        await self.proxy.delete_user(user, spawner.name)
        if spawner.ready:
            asyncio.ensure_future(self.stop_single_user(user, spawner.name))
            await asyncio.sleep(0)  # marks the spawner as stopping: no route is added back


def callback_piece() -> Config:
    """The callback's route (below /hub/), as the spawner's piece of the hub."""
    c = Config()
    c.JupyterHub.extra_handlers = [(r"/api/hpchub/port", PortCallbackHandler)]
    return c
