"""The spawner's side of user options: the form, the query string and the REST API.

All three paths end in ``resolve_request`` before anything is submitted; a rejection is a
400 whose message names the field and the allowed range, and the form comes back with the
user's input kept.
"""

from __future__ import annotations

import datetime as dt

from jupyterhub.spawner import SpawnException
from sqlalchemy.orm import object_session
from traitlets.config import Configurable

from ..core import clock
from ..core.accounts import groups_of
from ..form.render import render_form
from ..form.submit import options_from_form
from ..resources.catalog import Catalog
from ..resources.request import OptionsError, ResourceRequest, flatten, resolve_request
from ..resources.reservations import ReservationOffer, offer
from ..slurm.livestate import LiveState, Snapshot
from ..slurm.parsers import UserAccounts
from .errors import spawn_error


def invalid(problems: list[str]) -> SpawnException:
    """A 400 for the user: the message names each field and what is allowed."""
    return spawn_error("Invalid resource request: " + "; ".join(problems), reason="invalid-options")


# What a user last submitted and was refused, to fill the form again (keyed by user name).
_REJECTED: dict[str, dict] = {}


class OptionsMixin(Configurable):
    """Mixed into SlurmSpawner: turns what the user asked for into a ResourceRequest."""

    @property
    def catalog(self) -> Catalog:
        """What the form offers: built once per site model, shared by every spawner."""
        return Catalog.for_site(self.site)

    @property
    def live_state(self) -> LiveState:
        return LiveState.shared(self.client)

    def user_groups(self) -> set[str]:
        return set(groups_of(self.user.name))

    def reservation_offer(self, snap: Snapshot, accounts: UserAccounts | None) -> ReservationOffer:
        """Reservations open to this user on the Jupyter partitions, and maintenance ahead."""
        now = dt.datetime.fromtimestamp(clock.now())  # Slurm prints the node's local time
        return offer(
            snap,
            self.catalog.partitions,
            self.user.name,
            self.user_groups(),
            accounts.accounts if accounts else (),
            now,
            self.catalog.longest_time(),
        )

    async def resolve_resources(self, options: dict) -> ResourceRequest:
        """Validate options for this user (the one path for form, URL and API)."""
        snap = await self.live_state.get()
        opts = options or {}
        accounts = None
        if any(opts.get(k) not in (None, "", []) for k in ("account", "reservation")):
            accounts = await self.live_state.accounts(self.user.name)
        try:
            return resolve_request(
                opts,
                self.catalog,
                self.user.name,
                self.user_groups(),
                snap.limits(),
                accounts,
                self.reservation_offer(snap, accounts).left_seconds,
            )
        except OptionsError as err:
            raise invalid(err.problems) from None

    def forget_rejected_options(self, last_good: dict) -> None:
        """JupyterHub stores user_options before start() validates them; put the last good
        ones back, or a refused request would be reused by every later start."""
        if self.orm_spawner is not None:
            self.orm_spawner.user_options = dict(last_good)
            self.commit_hub_db()

    def commit_hub_db(self) -> None:
        """Commit the hub database now, through the session that holds this server's row
        (JupyterHub's own; its Spawner.db is deprecated)."""
        session = object_session(self.orm_spawner) if self.orm_spawner is not None else None
        if session is not None:
            session.commit()

    def _previous_options(self) -> dict:
        if self.orm_spawner is not None and self.orm_spawner.user_options:
            return dict(self.orm_spawner.user_options)
        # A new named server starts from the user's most recent choice on any server.
        others = [
            sp.orm_spawner
            for sp in getattr(self.user, "spawners", {}).values()
            if sp is not self and sp.orm_spawner is not None and sp.orm_spawner.user_options
        ]
        if not others:
            return {}
        latest = max(others, key=lambda o: o.started or o.last_activity or dt.datetime.min)
        return dict(latest.user_options)

    async def get_options_form(self):
        snap = await self.live_state.get()
        previous = _REJECTED.pop(self.user.name, None) or self._previous_options()
        accounts = await self.live_state.accounts(self.user.name)
        return render_form(
            self.catalog,
            self.user.name,
            self.user_groups(),
            snap,
            previous,
            self.catalog.course_labels(self.user.name, self.user_groups()),
            accounts,
            self.reservation_offer(snap, accounts),
        )

    async def run_options_from_form(self, form_data):
        try:
            opts = options_from_form(form_data)
        except OptionsError as err:
            raise invalid(err.problems) from None
        prof = self.catalog.profile(str(opts.get("profile", "")))
        for key in ("account", "reservation"):
            if prof is not None and getattr(prof, key):
                opts.pop(key, None)  # the form always sends one; such a profile sets its own
        try:
            req = await self.resolve_resources(opts)
        except SpawnException:
            _REJECTED[self.user.name] = {k: str(v) for k, v in opts.items()}
            raise
        return req.to_options()

    async def options_from_query(self, query_data):
        try:
            opts = flatten(query_data)
        except OptionsError as err:
            raise invalid(err.problems) from None
        return (await self.resolve_resources(opts)).to_options()
