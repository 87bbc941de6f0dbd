"""The file browser's root and favourites (issue 16): validation, server options, lab defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.kernels import extensions

pytestmark = pytest.mark.core


def _err(files: dict) -> str:
    with pytest.raises(SiteConfigError) as e:
        parse_site({"files": files})
    return str(e.value)


def test_default_is_the_home_and_no_server_options():
    files = parse_site({}).files
    assert files.root is None and files.favorites == []
    assert files.server_args("/home/alice") == ()


def test_root_and_home_as_the_starting_folder():
    files = parse_site({"files": {"root": "/"}}).files
    assert files.server_args("/home/alice") == (
        "--ServerApp.root_dir=/",
        "--ContentsManager.preferred_dir=home/alice",
    )
    # A home outside the root: the browser starts at the root.
    files = parse_site({"files": {"root": "/scratch"}}).files
    assert files.server_args("/home/alice") == ("--ServerApp.root_dir=/scratch",)


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"root": "scratch"}, "files.root"),
        ({"root": "/scratch/../etc"}, "'..'"),
        ({"root": "/scr atch"}, "files.root"),
        ({"root": "/", "favorites": [{"path": "relative"}]}, "files.favorites[0].path"),
        ({"root": "/", "favorites": [{"path": "/a/../b"}]}, "'..'"),
        (
            {"root": "/scratch", "favorites": [{"path": "/project"}]},
            "favorites[0].path: /project is not under",
        ),
        ({"favorites": [{"path": "/scratch"}]}, "set files.root"),
        ({"root": "/", "favorites": [{"path": "/x", "nmae": "X"}]}, "nmae"),
        ({"rot": "/"}, "rot"),
    ],
)
def test_admin_typos_name_the_key(files, words):
    msg = _err(files)
    assert words in msg, msg
    assert "files" in msg, msg


def test_favourites_become_lab_default_settings_relative_to_the_root():
    site = parse_site(
        {
            "files": {
                "root": "/",
                "favorites": [{"path": "/scratch", "name": "Scratch"}, {"path": "/project"}],
            }
        }
    )
    files = extensions.config_files(site.extensions, site.files, Path("/opt/slurm/bin"))
    overrides = json.loads(files["labconfig/default_setting_overrides.json"])
    favs = overrides["@jlab-enhanced/favorites:favorites"]["favorites"]
    assert [(f["path"], f.get("name")) for f in favs] == [("scratch", "Scratch"), ("project", None)]
    assert all(f["contentType"] == "directory" for f in favs)
    server = json.loads(files["jupyter_server_config.d/hpchub-extensions.json"])
    assert server["ServerApp"]["jpserver_extensions"]["jupyterlab_slurm"] is True
    assert server["SlurmCommandPaths"]["squeue_path"] == "/opt/slurm/bin/squeue"
    assert server["SlurmCommandPaths"]["sacct_path"] == "/opt/slurm/bin/sacct"
