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


def test_every_client_is_given_the_password_file_never_the_password(tmp_path):
    pw = tmp_path / "db-password"
    s = site(url="postgresql://hub@db.example.org:5432/hub", password_file=str(pw))
    c = site_config(s)
    assert c.JupyterHub.db_url == f"postgresql+psycopg2://hub@db.example.org:5432/hub?passfile={pw}"
    assert "db_kwargs" not in c.JupyterHub
    assert database_piece(site()) == type(c)()  # nothing for SQLite


def test_libpq_tools_ignore_roots_own_pg_variables(monkeypatch):
    monkeypatch.setenv("PGPASSFILE", "/home/someone/.pgpass")
    assert "PGPASSFILE" not in pg_env()


@pytest.mark.parametrize("url", ["mysql://hub@x/hub", "postgresql://x/hub", "postgresql://h@x/"])
def test_bad_urls_say_what_is_expected(url):
    with pytest.raises(SiteConfigError, match="postgresql://USER@HOST"):
        site(url=url)
