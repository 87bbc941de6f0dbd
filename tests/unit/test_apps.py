"""Apps in the job: the site's choice, the form, the one validation path, the server's URL and
the jupyter-server-proxy entry point."""

from __future__ import annotations

import os
import stat
from importlib.metadata import entry_points

import pytest
from pydantic import ValidationError

from hpchub.config.apps import AppSettings, app_url
from hpchub.config.loader import parse_site
from hpchub.form.render import render_form
from hpchub.form.submit import options_from_form
from hpchub.hub.pieces import environment_piece
from hpchub.resources.catalog import Catalog
from hpchub.resources.request import OptionsError, resolve_request
from hpchub.singleuser.apps import CODE_SERVER_ENV, vscode

from .test_form import SNAP
from .test_resources import SITE
from .test_spawner import PROFILE, db, fake, new_spawner, started, t  # noqa: F401

CODE = "/opt/code-server/node_modules/.bin/code-server"


def site(**apps):
    return parse_site({**SITE.model_dump(mode="json", exclude_unset=True), "apps": apps})


def test_site_model_jupyterlab_first_and_vscode_needs_its_program():
    assert AppSettings().choices() == ("jupyterlab",)
    s = AppSettings(offered=["vscode", "desktop"], code_server=CODE)
    assert s.choices() == ("jupyterlab", "vscode", "desktop")
    with pytest.raises(ValidationError, match="apps.code_server"):
        AppSettings(offered=["vscode"])
    with pytest.raises(ValidationError, match="listed twice"):
        AppSettings(offered=["desktop", "desktop"])
    with pytest.raises(ValidationError, match="'jupyterlab', 'desktop', 'vscode' or 'rstudio'"):
        AppSettings(offered=["emacs"])
    with pytest.raises(ValidationError):
        AppSettings(offered=["vscode"], code_server="relative/code-server")


def test_request_takes_an_offered_app_and_refuses_others():
    cat = Catalog.from_site(site(offered=["desktop"]))
    r = resolve_request({"profile": "small", "app": "desktop"}, cat, "alice", set())
    assert r.app == "desktop"
    assert r.to_options() == {"profile": "small", "app": "desktop"}
    # JupyterLab is the default, and is not stored (the form's default next time).
    lab = resolve_request({"profile": "small", "app": "jupyterlab"}, cat, "alice", set())
    assert lab.app == "jupyterlab" and "app" not in lab.to_options()
    with pytest.raises(OptionsError) as err:
        resolve_request({"profile": "small", "app": "vscode"}, cat, "alice", set())
    assert err.value.problems == [
        "app: 'vscode' is not offered on this hub; choose jupyterlab (JupyterLab), "
        "desktop (Linux desktop (Xfce))"
    ]
    with pytest.raises(OptionsError, match="app: Input should be"):
        resolve_request({"profile": "small", "app": "emacs"}, cat, "alice", set())
    with pytest.raises(OptionsError, match="allowed: .*reservation, app"):
        resolve_request({"profile": "small", "application": "x"}, cat, "alice", set())


def test_form_offers_the_apps_and_remembers_the_last_one():
    cat = Catalog.from_site(site(offered=["desktop", "vscode"], code_server=CODE))
    html = render_form(cat, "alice", set(), SNAP, {"profile": "small", "app": "vscode"})
    assert 'name="app"' in html
    assert '<option value="vscode" selected>VS Code (code-server)</option>' in html
    assert '<option value="desktop">Linux desktop (Xfce)</option>' in html
    # Only JupyterLab: no choice to show.
    assert 'name="app"' not in render_form(Catalog.from_site(SITE), "alice", set(), SNAP)
    opts = options_from_form({"profile": ["small"], "app": ["desktop"], "_xsrf": ["x"]})
    assert opts == {"profile": "small", "app": "desktop"}


def test_urls_and_the_job_environment():
    assert app_url("desktop", "/lab") == "/desktop/"
    assert app_url("vscode", "/lab") == "/vscode/"
    assert app_url("rstudio", "/lab") == "/rstudio/"
    assert app_url("jupyterlab", "/lab/tree/x") == "/lab/tree/x"
    env = environment_piece(site(offered=["vscode"], code_server=CODE)).SlurmSpawner
    assert env.job_environment[CODE_SERVER_ENV] == CODE
    assert CODE_SERVER_ENV not in environment_piece(site()).SlurmSpawner.job_environment


async def test_the_server_opens_in_the_chosen_app(db, fake):  # noqa: F811
    s = parse_site({"profiles": [PROFILE], "apps": {"offered": ["desktop"]}})
    sp = new_spawner(db, fake, site=s)
    sp.user_options = {"profile": "small", "app": "desktop"}
    await started(sp, fake)
    assert sp.get_env()["JUPYTERHUB_DEFAULT_URL"] == "/desktop/"
    assert sp.last_options == {"profile": "small", "app": "desktop"}


def test_vscode_entry_point_private_socket_and_no_login_of_its_own(tmp_path, monkeypatch):
    names = {e.name: e.value for e in entry_points(group="jupyter_serverproxy_servers")}
    assert names["vscode"] == "hpchub.singleuser.apps:vscode"
    monkeypatch.delenv(CODE_SERVER_ENV, raising=False)
    with pytest.raises(RuntimeError, match="VS Code is not offered here"):
        vscode()
    exe = tmp_path / "code-server"
    exe.write_text("#!/bin/sh\n")
    monkeypatch.setenv(CODE_SERVER_ENV, str(exe))
    with pytest.raises(RuntimeError, match="names no program"):
        vscode()  # not executable
    exe.chmod(stat.S_IRWXU)
    conf = vscode()
    assert conf["unix_socket"] is True  # jupyter-server-proxy's mkdtemp: a new 0700 folder
    assert conf["command"][:4] == [
        str(exe),
        "--auth=none",
        "--socket={unix_socket}",
        "--socket-mode=600",
    ]
    assert not any(a.startswith(("--bind-addr", "--port", "--host")) for a in conf["command"])
    assert conf["command"][-1] == os.path.expanduser("~")
