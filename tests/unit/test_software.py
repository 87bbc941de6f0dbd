"""`hpchub install --software`: a world-readable, owner-writable environment, without root."""

# ruff: noqa: S103 - loose modes are what these tests are about

import os
import subprocess
from pathlib import Path

import pytest

from hpchub.deploy import software
from hpchub.deploy.software import TOOLS, SoftwareError, install_software, writable_by_others


def test_world_readable_owner_writable(tmp_path):
    (tmp_path / "bin").mkdir()
    os.chmod(tmp_path / "bin", 0o770)
    script = tmp_path / "bin" / "tool"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o770)
    data = tmp_path / "data.txt"
    data.write_text("x")
    os.chmod(data, 0o666)
    (tmp_path / "link").symlink_to("/etc/passwd")
    assert set(writable_by_others(tmp_path)) == {tmp_path / "bin", script, data}
    software._make_world_readable(tmp_path)
    assert list(writable_by_others(tmp_path)) == []
    assert script.stat().st_mode & 0o777 == 0o755
    assert data.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "bin").stat().st_mode & 0o777 == 0o755


def test_requirement_copies_a_checkout(tmp_path):
    src = tmp_path / "src"
    (src / ".git").mkdir(parents=True)
    (src / "src" / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pyproject.toml").write_text("[project]\n")
    out = tmp_path / "out"
    out.mkdir()
    req = software._requirement(str(src), out)
    assert req == f"{out / 'src'}[singleuser]"
    assert (out / "src" / "pyproject.toml").exists() and not (out / "src" / ".git").exists()
    assert (out / "src/src/pkg").is_dir() and not (out / "src/src/pkg/__pycache__").exists()
    assert software._requirement(None, out).startswith("hpchub[singleuser]==")
    with pytest.raises(SoftwareError):
        software._requirement("hpchub; rm -rf /", out)


def test_refuses_a_folder_that_is_not_an_environment(tmp_path):
    (tmp_path / "something").write_text("x")
    with pytest.raises(SoftwareError, match="not a Python environment"):
        install_software(tmp_path, run=lambda *a, **k: None)


def test_install_with_a_fake_pip(tmp_path):
    prefix = tmp_path / "env"
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            (prefix / "bin").mkdir(parents=True)
            (prefix / "pyvenv.cfg").write_text("home = /usr/bin\n")
        else:
            for tool in TOOLS:
                (prefix / "bin" / tool).write_text("#!/bin/sh\n")
        return subprocess.CompletedProcess(argv, 0, "", "")

    record = install_software(prefix, python="/usr/bin/python3", run=run, log=lambda m: None)
    assert calls[0] == ["/usr/bin/python3", "-m", "venv", str(prefix)]
    assert calls[1][-1].startswith("hpchub[singleuser]==")
    # Within the versions hpchub was tested with.
    c = calls[1].index("-c")
    assert Path(calls[1][c + 1]).name == "constraints.txt"
    assert "jupyterhub==" in Path(calls[1][c + 1]).read_text()
    assert record["python"] == "/usr/bin/python3"
    assert (prefix / software.MARKER).exists()
    assert list(writable_by_others(prefix)) == []


def test_pip_failure_is_reported(tmp_path):
    def run(argv, **kw):
        return subprocess.CompletedProcess(argv, 1, "", "ERROR: No matching distribution\n")

    with pytest.raises(SoftwareError, match="No matching distribution"):
        install_software(tmp_path / "env", run=run, log=lambda m: None)


def test_cli_needs_a_prefix(capsys):
    from hpchub.cli.main import main

    assert main(["install", "--software"]) == 2
    assert "--prefix DIR is required" in capsys.readouterr().err
    assert main(["install", "--prefix", "/x"]) == 2


def test_render_cli_writes_below_out(tmp_path, capsys):
    import yaml

    from hpchub.cli.main import main

    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"hub": {"allowed_groups": ["jupyter"]}}))
    assert main(["--config", str(site), "render", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out/etc/sudoers.d/hpchub").stat().st_mode & 0o777 == 0o440
    assert (tmp_path / "out/etc/systemd/system/hpchub.service").exists()
    assert "Secrets are not rendered" in capsys.readouterr().out
    assert main(["--config", str(site), "render", "--out", "/"]) == 2
