"""A single-user server extension: the job's time left, for JupyterLab's status bar.

``GET {base_url}hpchub/time`` and ``POST {base_url}hpchub/time`` (``{"minutes": N}``) pass the
request on to the hub's ``/hub/api/hpchub/time/USER/SERVER`` with this server's own API token:
the hub knows the job, the site's policy and runs the extension; the browser never needs a
hub token. Only the logged-in owner of this server reaches these handlers (jupyter-server's
own authentication and XSRF check).
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


def _jupyter_server_extension_points():
    return [{"module": "hpchub.singleuser.timeleft"}]


def hub_time_url(env: dict[str, str]) -> str | None:
    """The hub's time endpoint for this server, from the environment JupyterHub gives it."""
    api, user = env.get("JUPYTERHUB_API_URL"), env.get("JUPYTERHUB_USER")
    if not api or not user:
        return None
    server = env.get("JUPYTERHUB_SERVER_NAME", "")
    return f"{api.rstrip('/')}/hpchub/time/{quote(user, safe='')}/{quote(server, safe='')}"


class TimeLeftHandler(APIHandler):
    """Passes GET and POST on to the hub, with this server's token."""

    async def _forward(self, method: str, body: bytes | None = None) -> None:
        url = hub_time_url(dict(os.environ))
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if url is None or not token:
            raise web.HTTPError(404, "this server was not started by a hub")
        req = HTTPRequest(
            url,
            method=method,
            body=body,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            request_timeout=60,
        )
        try:
            resp = await AsyncHTTPClient().fetch(req)
            status, text = resp.code, resp.body
        except HTTPClientError as err:
            status = err.code
            text = err.response.body if err.response is not None else b""
        except OSError as err:
            raise web.HTTPError(502, f"the hub cannot be reached: {err}") from None
        if status >= 400:
            try:
                message = json.loads(text).get("message", "")
            except (ValueError, AttributeError):
                message = ""
            raise web.HTTPError(status, message or f"the hub answered {status}")
        self.set_header("Content-Type", "application/json")
        self.finish(text)

    @web.authenticated
    async def get(self):
        await self._forward("GET")

    @web.authenticated
    async def post(self):
        try:
            minutes = json.loads(self.request.body or b"{}").get("minutes")
        except (ValueError, AttributeError):
            raise web.HTTPError(400, 'the body must be JSON: {"minutes": <integer>}') from None
        body = {} if minutes is None else {"minutes": minutes}
        await self._forward("POST", json.dumps(body).encode())


def _load_jupyter_server_extension(serverapp):
    base = serverapp.web_app.settings["base_url"]
    route = url_path_join(base, "hpchub", "time")
    serverapp.web_app.add_handlers(".*$", [(route, TimeLeftHandler)])
    serverapp.log.info("hpchub: the job's time left at %s", route)
