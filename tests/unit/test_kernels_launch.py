"""The launcher against a fake `lmod`, one real stand-in kernel, hub config and test argv."""

import json
import sys
from pathlib import Path

import pytest

from hpchub.config.files import FileBrowserSettings
from hpchub.config.loader import parse_site
from hpchub.hub.wiring import site_config
from hpchub.kernels import extensions, launcher, tester
from hpchub.kernels.wrap import test_argv as build_test_argv

VENV_BIN = str(Path(sys.executable).parent)

# Answers like Lmod's python shell: 'good' puts this test venv's bin first, 'bad' is unknown.
FAKE_LMOD = f"""#!/bin/sh
[ "$1" = python ] && [ "$2" = load ] || exit 9
case "$3" in
  good/1) echo 'import os'
          echo 'os.environ["PATH"] = "{VENV_BIN}:'"$PATH"'";'
          echo 'os.environ["LOADEDMODULES"] = "good/1";'
          echo "os.environ[\\"SEEN_MODULEPATH\\"] = \\"$MODULEPATH\\";"
          echo '_mlstatus = True' ;;
  nopy/1) echo 'os.environ["PATH"] = "/nonexistent";'; echo '_mlstatus = True' ;;
  *) echo 'Lmod has detected the following error: The following module(s) are unknown: "'"$3"'"' >&2
     echo '' >&2; echo 'Please check the spelling or version number.' >&2
     echo '_mlstatus = False'; exit 1 ;;
esac
"""


@pytest.fixture
def fake_lmod(tmp_path) -> Path:
    p = tmp_path / "lmod"
    p.write_text(FAKE_LMOD)
    p.chmod(0o755)
    return p


def test_environment_is_clean_site_modulepath_and_modules_loaded(fake_lmod):
    user_env = {
        "HOME": "/h",
        "MODULEPATH": "/home/u/mods",
        "LOADEDMODULES": "x/1",
        "PYTHONPATH": "/home/u/py",
        "PATH": "/home/u/bin:/usr/bin",
    }
    env = launcher.prepare_environment(
        user_env,
        "/site/a:/site/b",
        "/usr/bin:/bin",
        fake_lmod,
        ["good/1"],
        10,
        {"PYTHONPATH": "/site/py"},
    )
    assert env["SEEN_MODULEPATH"] == "/site/a:/site/b"
    assert env["PATH"] == f"{VENV_BIN}:/usr/bin:/bin"
    assert env["LOADEDMODULES"] == "good/1"
    assert env["PYTHONPATH"] == "/site/py" and env["HOME"] == "/h"


def test_failure_names_the_module_and_lmods_reason(fake_lmod):
    with pytest.raises(launcher.StartError) as err:
        launcher.prepare_environment({}, "/site", "/usr/bin", fake_lmod, ["good/1", "gone/2"], 10)
    assert str(err.value) == (
        'module "gone/2" cannot be loaded: The following module(s) are unknown: "gone/2"'
    )


def test_missing_command_and_missing_ipykernel_are_reported(fake_lmod):
    env = launcher.prepare_environment({}, "/s", "/usr/bin", fake_lmod, ["nopy/1"], 10)
    with pytest.raises(launcher.StartError, match="'python3' is not on the PATH after loading"):
        launcher.resolve_command(["python3"], env, ["nopy/1"])
    with pytest.raises(launcher.StartError, match='module "nopy/1" provides no python3'):
        launcher.run_check("python", env, ["nopy/1"], 10)


def test_no_error_kernel_exits_with_one_line(fake_lmod, capsys):
    with pytest.raises(SystemExit) as exit_:
        launcher.main(
            [
                f"--lmod={fake_lmod}",
                "--modulepath=/s",
                "--module=gone/2",
                "--display-name=Gone",
                "--connection-file=/x",
                "--no-error-kernel",
                "--",
                "python3",
            ]
        )
    assert exit_.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        'hpchub-kernel: kernel "Gone" cannot start: module "gone/2" cannot be loaded: '
        'The following module(s) are unknown: "gone/2"'
    ]


def _kernelspec(folder: Path, name: str, lmod: Path, module: str) -> None:
    d = folder / name
    d.mkdir(parents=True)
    argv = [
        str(Path(VENV_BIN) / "hpchub-kernel"),
        f"--display-name={name}",
        f"--lmod={lmod}",
        "--modulepath=/site",
        f"--module={module}",
        "--check=python",
        "--connection-file={connection_file}",
        "--",
        "python3",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    (d / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": "python"})
    )


def test_real_kernels_pass_and_fail_through_the_test_runner(tmp_path, fake_lmod):
    # Both start for real through jupyter_client; the bad one is the stand-in error kernel.
    _kernelspec(tmp_path, "good", fake_lmod, "good/1")
    _kernelspec(tmp_path, "bad", fake_lmod, "gone/2")
    ksm = tester.kernel_spec_manager(tmp_path)
    good = tester.run_one(ksm, "good", timeout=60)
    assert good.ok, good.reason
    assert good.output.strip() == str(Path(VENV_BIN) / "python3")
    bad = tester.run_one(ksm, "bad", timeout=60)
    assert not bad.ok
    assert bad.reason == (
        'hpchub-kernel: kernel "bad" cannot start: module "gone/2" cannot be '
        'loaded: The following module(s) are unknown: "gone/2"'
    )
    assert tester.run_one(ksm, "nope", timeout=5).reason == "no such kernel"


def test_hub_gets_folders_modulepath_and_git_drivers():
    site = parse_site(
        {
            "singleuser": {"prefix": "/opt/h/env", "environment": {"JUPYTER_PATH": "/admin/share"}},
            "kernels": {"shared_dir": "/opt/h/share", "modulepath": ["/m/core", "/m/apps"]},
        }
    )
    env = site_config(site).SlurmSpawner.job_environment
    assert env["JUPYTER_PATH"] == "/opt/h/share/jupyter:/admin/share"
    assert env["JUPYTER_CONFIG_PATH"] == "/opt/h/share/jupyter-config"
    assert env["MODULEPATH"] == "/m/core:/m/apps"
    assert env["LMOD_CMD"] == "/usr/share/lmod/lmod/libexec/lmod"
    pairs = {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"]
        for i in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert pairs["diff.jupyternotebook.command"] == "/opt/h/env/bin/git-nbdiffdriver diff"
    assert pairs["core.attributesFile"] == "/opt/h/share/git/attributes"
    no_nbdime = parse_site({"extensions": {"enabled": ["lmod"]}})
    assert "GIT_CONFIG_COUNT" not in site_config(no_nbdime).SlurmSpawner.job_environment


def test_extension_choice_becomes_server_and_lab_config():
    ext = parse_site(
        {
            "extensions": {
                "enabled": ["lmod", "nbdime"],
                "disabled_lab_plugins": ["@jupyterlab/foo:bar"],
            }
        }
    ).extensions
    files = extensions.config_files(ext, FileBrowserSettings(), Path("/usr/bin"))
    server = json.loads(files["jupyter_server_config.d/hpchub-extensions.json"])
    assert server["ServerApp"]["jpserver_extensions"] == {
        "jupyterlmod": True,
        "nbdime": True,
        "jupyterlab_git": False,
        "jupyter_resource_usage": False,
        "jupyterlab_slurm": False,
    }
    assert "SlurmCommandPaths" not in server
    page = json.loads(files["labconfig/page_config.json"])
    assert page["disabledExtensions"] == {
        "@jupyterlab/git": True,
        "@jupyter-server/resource-usage": True,
        "jupyterlab-slurm": True,
        "@jlab-enhanced/favorites": True,
        "@jupyterlab/foo:bar": True,
    }
    assert json.loads(files["labconfig/default_setting_overrides.json"]) == {}
    compile(files["jupyter_server_config.py"], "cfg", "exec")


def test_kernels_test_elsewhere_is_an_argument_list():
    site = parse_site({"singleuser": {"prefix": "/opt/h/env"}})
    argv = build_test_argv(site, Path("/etc/h.yaml"), ["k1"], 60, user="alice", in_slurm=True)
    assert argv[:6] == ["/usr/bin/sudo", "-n", "-u", "alice", "-i", "--"]
    assert argv[6] == "/usr/bin/srun" and "--partition=jupyter-short" in argv
    assert argv[-7:] == [
        "/opt/h/env/bin/hpchub",
        "--config=/etc/h.yaml",
        "kernels",
        "test",
        "--json",
        "--timeout=60",
        "k1",
    ]
    for bad in ({"user": "alice; id"}, {"names": ["a b"]}, {"partition": "p;x", "in_slurm": True}):
        kw = {"names": ["k1"], **bad}
        names = kw.pop("names")
        with pytest.raises(ValueError):
            build_test_argv(site, Path("/etc/h.yaml"), names, 60, **kw)
