"""hpchub-hub (hub/app.py): JupyterHub's restart check of running servers in a few statements."""

from __future__ import annotations

import pytest

pytest.importorskip("jupyterhub")

from jupyterhub import orm  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.orm import selectinload  # noqa: E402

from hpchub.hub.app import running_users  # noqa: E402


def _hub_db(users: int):
    db = orm.new_session_factory("sqlite://")()
    for i in range(users):
        user = orm.User(name=f"u{i}")
        db.add(user)
        spawner = orm.Spawner(name="", user=user)
        db.add(orm.Spawner(name="other", user=user))
        if i % 2 == 0:
            spawner.server = orm.Server()
        db.add(spawner)
    db.commit()
    db.expunge_all()
    return db


def _statements_of_jupyterhubs_check(db) -> int:
    """The statements of JupyterHub 5/6's init_spawners loop (its query, each server's user
    and that user's servers), as app.py has it."""
    count = [0]

    def counted(*_a, **_k):
        count[0] += 1

    event.listen(db.get_bind(), "before_cursor_execute", counted)
    try:
        query = (
            db.query(orm.Spawner)
            .filter(orm.Spawner.server != None)  # noqa: E711 - as JupyterHub writes it
            .options(
                selectinload(orm.Spawner.user),
                selectinload(orm.Spawner.user, orm.User._orm_spawners),
            )
            .populate_existing()
        )
        for orm_spawner in query:
            assert len(orm_spawner.user.orm_spawners) == 2
    finally:
        event.remove(db.get_bind(), "before_cursor_execute", counted)
    return count[0]


@pytest.fixture
def hub_db():
    """A fresh in-memory hub database per call; all closed at the end (Python 3.13 warns
    about, and the suite fails on, a connection left to the garbage collector)."""
    made = []

    def make(users: int):
        made.append(_hub_db(users))
        return made[-1]

    yield make
    for db in made:
        engine = db.get_bind()
        db.close()
        engine.dispose()


def test_running_servers_users_are_loaded_at_once_not_one_by_one(hub_db):
    cold = _statements_of_jupyterhubs_check(hub_db(40))
    assert cold > 40  # without it: statements for every running server
    db = hub_db(40)
    loaded = running_users(db)
    assert {u.name for u in loaded} == {f"u{i}" for i in range(0, 40, 2)}
    warm = _statements_of_jupyterhubs_check(db)
    assert warm < 10
    # As many statements for twice the servers: the check no longer grows with them.
    db2 = hub_db(80)
    loaded2 = running_users(db2)
    assert _statements_of_jupyterhubs_check(db2) == warm
    del loaded, loaded2
