"""Time left and the Extend button: the policy (pure), and the hub's REST endpoint.

``GET /hub/api/hpchub/time/USER[/SERVER]`` says when the server's job reaches its time limit and
what the site lets the user add; ``POST`` with ``{"minutes": N}`` adds N minutes through the
generated helper (``deploy/render.py``, ``extend_helper``). Only the owner may ask: through
their browser session (JupyterHub checks the XSRF token) or with that server's own API token
(JupyterLab's status bar, through the server extension ``singleuser/timeleft.py``).
"""

from __future__ import annotations

import json

from jupyterhub.apihandlers.base import APIHandler
from tornado import web
from traitlets.config import Config

from ..config.timelimit import EXTEND_HELPER
from ..config.units import parse_duration_seconds
from ..slurm.client import SlurmError
from .eventlog import INFO, WARNING, log_event
from .slurm import SlurmSpawner
from .timepolicy import allowed_partitions, extension_refusal, site_cap, time_info


async def live_cap(spawner: SlurmSpawner, partition: str) -> int | None:
    """The smaller of the site's max_time and Slurm's MaxTime for ``partition``."""
    caps = [c for c in (site_cap(spawner, partition),) if c]
    try:
        state = (await spawner.client.partitions()).get(partition)
    except (SlurmError, TimeoutError):
        state = None  # the helper reads MaxTime itself and refuses what does not fit
    if state is not None and state.max_time:
        caps.append(state.max_time)
    return min(caps) if caps else None


class TimeHandler(APIHandler):
    """GET the time left of USER's server; POST {"minutes": N} to extend it."""

    def _spawner(self, user_name: str, server_name: str) -> SlurmSpawner:
        me = self.current_user
        if me is None:
            raise web.HTTPError(403, "log in first")
        token = self.get_auth_token()
        user = self.find_user(user_name)
        spawner = user.spawners.get(server_name) if user is not None else None
        if me.name != user_name or not isinstance(spawner, SlurmSpawner):
            # The same answer for someone else's server and for none: names are not probed.
            raise web.HTTPError(404, f"you have no server named {server_name!r}")
        if token and not spawner.owns_token(token):
            raise web.HTTPError(
                403, "use your browser session or the server's own token to change its time"
            )
        return spawner

    async def get(self, user_name: str, server_name: str = ""):
        spawner = self._spawner(user_name, server_name or "")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(time_info(spawner)))

    async def post(self, user_name: str, server_name: str = ""):
        spawner = self._spawner(user_name, server_name or "")
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPError(400, 'the body must be JSON: {"minutes": <integer>}') from None
        if not isinstance(body, dict) or set(body) - {"minutes"}:
            raise web.HTTPError(400, 'the body must be {"minutes": <integer>} and nothing else')
        ext = spawner.site.time.extend
        minutes = body.get("minutes", ext.step // 60)
        if not isinstance(minutes, int) or isinstance(minutes, bool):
            raise web.HTTPError(400, "minutes must be an integer")
        st = await spawner.monitor.current(spawner.job_id) if spawner.job_id else None
        info = st.info if st else None
        if st is None or st.state != "RUNNING" or info is None:
            raise web.HTTPError(
                409, "your server's job is not running, so there is nothing to extend"
            )
        limit_s = parse_duration_seconds(info.time_limit)
        cap = await live_cap(spawner, info.partition)
        why = extension_refusal(
            minutes * 60,
            limit_s,
            spawner.extended_s,
            ext,
            info.partition,
            allowed_partitions(spawner),
            cap,
        )
        if why:
            log_event(spawner, INFO, "extension refused", asked_min=minutes, rule=why)
            raise web.HTTPError(400, f"Not extended: {why}.")
        new_min = limit_s // 60 + minutes
        helper = spawner.site.deploy.etc_dir / EXTEND_HELPER
        try:
            await spawner.client.extend(
                helper, ext.run_as, spawner.user.name, spawner.job_id, new_min
            )
        except (SlurmError, TimeoutError) as err:
            log_event(spawner, WARNING, "extension failed", error=str(err))
            raise web.HTTPError(502, f"Slurm did not extend the job: {err}") from None
        spawner.extended_s += minutes * 60
        spawner._persist()
        log_event(spawner, INFO, "time limit extended", added_min=minutes, limit_min=new_min)
        # A query already under way may have started before the change: the second one did not.
        await spawner.monitor.refresh()
        await spawner.monitor.refresh()
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(time_info(spawner, cap)))


def time_piece() -> Config:
    """The time endpoint's route (below /hub/)."""
    c = Config()
    c.JupyterHub.extra_handlers = [(r"/api/hpchub/time/([^/]+)/?([^/]*)", TimeHandler)]
    return c
