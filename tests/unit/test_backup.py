"""hpchub backup / restore: a consistent, private copy of the hub's state, checked on the way back."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from hpchub.deploy import backup as B

from .deploy_helpers import tmp_site


@pytest.fixture
def deployed(tmp_path, monkeypatch):
    # The hub user's reads run in-process here; tests/integration reads as the real hub user.
    monkeypatch.setattr(B, "_ids", lambda owner: (0, 0))
    p = tmp_site(tmp_path)
    p.data_dir.mkdir(parents=True)
    p.site_path.parent.mkdir(parents=True)
    p.site_path.write_text("hub: {}\n")
    con = sqlite3.connect(p.hub_db)
    con.execute("create table users (name text)")
    con.execute("insert into users values ('alice')")
    con.commit()
    con.close()
    p.cookie_secret.write_text("c" * 64 + "\n")
    p.proxy_env.write_text("CONFIGPROXY_AUTH_TOKEN=t\n")
    p.pending_cancels.write_text("[]\n")
    return p


def names(db):
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("select name from users")]
    finally:
        con.close()


def test_backup_is_private_and_complete(deployed, tmp_path):
    out = tmp_path / "backups"
    folder = B.backup(deployed, out, log=lambda m: None)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert set(files) == {
        "manifest.json",
        "jupyterhub.sqlite",
        "hpchub.yaml",
        "pending-cancels.json",
        "jupyterhub_cookie_secret",
        "proxy.env",
    }
    assert set(files.values()) == {0o600}
    assert names(folder / "jupyterhub.sqlite") == ["alice"]


def test_a_database_in_the_middle_of_a_write_is_copied_as_committed(deployed, tmp_path):
    writer = sqlite3.connect(deployed.hub_db)
    writer.execute("insert into users values ('bob')")  # not committed
    folder = B.backup(deployed, tmp_path / "b", log=lambda m: None)
    writer.rollback()
    writer.close()
    assert names(folder / "jupyterhub.sqlite") == ["alice"]


def test_restore_puts_everything_back(deployed, tmp_path, monkeypatch):
    monkeypatch.setattr(B, "hub_answers", lambda paths: False)
    folder = B.backup(deployed, tmp_path / "b", log=lambda m: None)
    deployed.hub_db.unlink()
    deployed.cookie_secret.write_text("changed\n")
    done = B.restore(deployed, folder, log=lambda m: None, chown=False)
    assert deployed.hub_db in done
    assert names(deployed.hub_db) == ["alice"]
    assert deployed.cookie_secret.read_text() == "c" * 64 + "\n"
    assert stat.S_IMODE(deployed.cookie_secret.stat().st_mode) == 0o600


def test_restore_refuses_a_damaged_backup(deployed, tmp_path, monkeypatch):
    monkeypatch.setattr(B, "hub_answers", lambda paths: False)
    folder = B.backup(deployed, tmp_path / "b", log=lambda m: None)
    (folder / "proxy.env").write_text("CONFIGPROXY_AUTH_TOKEN=other\n")
    with pytest.raises(B.BackupError, match="does not match its sum"):
        B.restore(deployed, folder, log=lambda m: None, chown=False)
    assert deployed.proxy_env.read_text() == "CONFIGPROXY_AUTH_TOKEN=t\n"


def test_restore_refuses_while_the_hub_answers(deployed, tmp_path, monkeypatch):
    folder = B.backup(deployed, tmp_path / "b", log=lambda m: None)
    monkeypatch.setattr(B, "hub_answers", lambda paths: True)
    with pytest.raises(B.BackupError, match="stop it first"):
        B.restore(deployed, folder, log=lambda m: None, chown=False)


def test_an_output_folder_others_can_write_is_refused(deployed, tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    out.chmod(0o777)
    with pytest.raises(B.BackupError, match="must belong to uid .* private"):
        B.backup(deployed, out, log=lambda m: None)


def test_not_a_backup(tmp_path):
    with pytest.raises(B.BackupError, match="is not an hpchub backup"):
        B.check_backup(tmp_path)


def test_the_manifest_records_each_files_sum(deployed, tmp_path):
    folder = B.backup(deployed, tmp_path / "b", log=lambda m: None)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["database"] == "sqlite"
    assert len(manifest["files"]["proxy.env"]) == 64


def test_restore_refuses_while_a_process_holds_the_database(deployed, tmp_path, monkeypatch):
    """The hub's port may be out of reach from where restore runs (another network namespace,
    a firewall): a running hub still holds its SQLite database open, and that stops it."""
    monkeypatch.setattr(B, "hub_answers", lambda paths: False)
    folder = B.backup(deployed, tmp_path / "b", log=lambda m: None)
    hub = sqlite3.connect(deployed.hub_db)  # this process stands for the running hub
    hub.execute("select 1 from users").fetchall()
    try:
        with pytest.raises(B.BackupError, match=f"{os.getpid()} hold .* open: stop it first"):
            B.restore(deployed, folder, log=lambda m: None, chown=False)
    finally:
        hub.close()
    assert B.database_holders(deployed) == []


@pytest.fixture
def wal_engine(deployed):
    """The hub's own engine on the database, as configured for SQLite (WAL mode)."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from hpchub.deploy.database import _sqlite_wal, use_sqlite_wal

    use_sqlite_wal()
    engine = sqlalchemy.create_engine(f"sqlite:///{deployed.hub_db}")
    try:
        yield engine
    finally:
        engine.dispose()
        event.remove(Engine, "connect", _sqlite_wal)


def test_a_wal_database_is_copied_with_its_log_and_restored_without_a_stale_one(
    deployed, wal_engine, tmp_path, monkeypatch
):
    monkeypatch.setattr(B, "hub_answers", lambda paths: False)
    monkeypatch.setattr(B, "database_holders", lambda paths: [])
    with wal_engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        conn.exec_driver_sql("insert into users values ('bob')")
    wal = deployed.hub_db.with_name(deployed.hub_db.name + "-wal")
    assert wal.stat().st_size > 0  # bob is in the log, not yet in the database file
    folder = B.backup(deployed, tmp_path / "b", log=lambda m: None)
    assert names(folder / "jupyterhub.sqlite") == ["alice", "bob"]
    # The hub commits once more and dies: its log stays behind, with carol in it.
    with wal_engine.begin() as conn:
        conn.exec_driver_sql("insert into users values ('carol')")
    left_behind = wal.read_bytes()
    wal_engine.dispose()
    con = sqlite3.connect(deployed.hub_db)
    con.execute("PRAGMA journal_mode=DELETE")  # the database file alone, without carol
    con.execute("delete from users where name = 'carol'")
    con.commit()
    con.close()
    wal.write_bytes(left_behind)
    B.restore(deployed, folder, log=lambda m: None, chown=False)
    assert names(deployed.hub_db) == ["alice", "bob"]  # carol's stale commit was not replayed
    assert not wal.exists()
