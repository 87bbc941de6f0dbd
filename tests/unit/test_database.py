"""PostgreSQL as the hub's database: the password by reference, never in the site file."""

from __future__ import annotations

import pytest

from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.deploy.database import database_piece, db_url, pg_env
from hpchub.hub.wiring import site_config


def site(**database):
    hub = {"allowed_groups": ["jupyter"]}
    if database:
        hub["database"] = database
    return parse_site({"hub": hub})


def test_sqlite_by_default():
    s = site()
    assert db_url(s) == f"sqlite:///{s.hub.data_dir / 'jupyterhub.sqlite'}"
    assert site_config(s).JupyterHub.db_url == db_url(s)


def test_a_password_in_the_url_is_refused_and_not_echoed():
    with pytest.raises(SiteConfigError) as err:
        site(url="postgresql://hub:hunter2@db.example.org/hub")
    assert "hub.database.password_file" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_the_hub_gets_the_password_from_its_file_not_the_url(tmp_path):
    pw = tmp_path / "db-password"
    pw.write_text("hunter2\n")
    s = site(url="postgresql://hub@db.example.org:5432/hub", password_file=str(pw))
    c = site_config(s)
    assert c.JupyterHub.db_url == "postgresql://hub@db.example.org:5432/hub"
    assert c.JupyterHub.db_kwargs == {"connect_args": {"password": "hunter2"}}
    assert database_piece(site()) == type(c)()  # nothing for SQLite


def test_libpq_tools_get_the_password_in_their_environment_only(monkeypatch):
    monkeypatch.setenv("PGPASSFILE", "/home/someone/.pgpass")
    env = pg_env("hunter2")
    assert env["PGPASSWORD"] == "hunter2" and "PGPASSFILE" not in env
    assert "PGPASSWORD" not in pg_env("")


@pytest.mark.parametrize("url", ["mysql://hub@x/hub", "postgresql://x/hub", "postgresql://h@x/"])
def test_bad_urls_say_what_is_expected(url):
    with pytest.raises(SiteConfigError, match="postgresql://USER@HOST"):
        site(url=url)
