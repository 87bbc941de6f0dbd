"""`hpchub-hub`: JupyterHub's own command, without two start-up costs that grow or repeat.

Measured with a profile of a hub restart with 1,000 running servers (docs/benchmarks.md,
section 5):

- JupyterHub's event logger imports jsonschema, which imports ``rfc3987_syntax`` and compiles
  its Lark grammars (about 1.2 s) for a format no JupyterHub event schema uses. It is deferred
  to first use, as in the single-user server (singleuser/lazy.py).
- JupyterHub's check of the running servers asks the database for each server's user and
  that user's servers, one server at a time, though its query asks for them to be loaded
  together: two round trips per server, 5 of the 14 seconds of the restart on PostgreSQL.
  The users of all running servers, with their servers, are loaded in one query first; the
  check then finds them in the session.
"""

from __future__ import annotations

import sys

from ..singleuser.lazy import defer


def running_users(db) -> list:
    """The users that have a running server, each with all their servers, in one query (two
    statements). The caller keeps the list: the session holds its objects only weakly."""
    from jupyterhub import orm
    from sqlalchemy.orm import selectinload

    return (
        db.query(orm.User)
        .join(orm.Spawner, orm.Spawner.user_id == orm.User.id)
        .filter(orm.Spawner.server_id.isnot(None))
        .options(selectinload(orm.User._orm_spawners))
        .distinct()
        .all()
    )


def _hub_class():
    from jupyterhub.app import JupyterHub

    class Hub(JupyterHub):
        """JupyterHub, with the running servers' users loaded at once before their check."""

        async def init_spawners(self):
            loaded = running_users(self.db)
            try:
                return await super().init_spawners()
            finally:
                del loaded

    # Its log lines keep JupyterHub's name (traitlets names the logger after the class):
    # admins' log filters and hpchub's own readers of the hub's log look for it.
    Hub.__name__ = Hub.__qualname__ = "JupyterHub"
    return Hub


def main(argv: list[str] | None = None) -> None:
    defer()
    _hub_class().launch_instance(sys.argv[1:] if argv is None else argv)
