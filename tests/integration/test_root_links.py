"""Root never follows a link that a less trusted user planted (issue 12, item 3).

The hub user writes its data folder, where `hpchub install` (root) fixes the owner and mode of
the secrets. A link planted there must make install refuse with one clear line and leave the
link's target untouched. The target here is a root-only decoy standing in for /etc/shadow (on
the code before the fix the test would otherwise chown the machine's real /etc/shadow).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hpchub.config.loader import load_site
from hpchub.deploy.paths import DeployPaths

HPCHUB = str(Path(sys.executable).with_name("hpchub"))


def _as_hub_user(testbed, *argv: str) -> None:
    subprocess.run(["runuser", "-u", testbed["hub_user"], "--", *argv], check=True)


def _install(testbed) -> subprocess.CompletedProcess:
    argv = [HPCHUB, "--config", testbed["site_file"], "install"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def _owner_mode(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.fixture
def decoys(testbed, tmp_path_factory):
    """A root-only file and folder (root:root, 644/755), like /etc/shadow for the attack."""
    etc = Path(load_site(testbed["site_file"]).deploy.etc_dir)
    file, folder = etc / "root-only-decoy", etc / "root-only-decoy.d"
    file.write_text("root's\n")
    os.chmod(file, 0o644)
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o755)  # noqa: S103 - a decoy like /etc, readable by all
    (folder / "cookie").write_text("x\n")
    yield file, folder
    file.unlink()
    (folder / "cookie").unlink()
    folder.rmdir()


def _secret(testbed, name: str) -> Path:
    paths = DeployPaths(load_site(testbed["site_file"]), Path(testbed["site_file"]))
    return getattr(paths, name)


@pytest.mark.parametrize("secret", ["cookie_secret", "proxy_env", "frontend_secret"])
@pytest.mark.parametrize("how", ["link to the file", "link to a folder holding it"])
def test_install_refuses_a_secret_linked_by_the_hub_user(testbed, decoys, secret, how):
    file, folder = decoys
    path = _secret(testbed, secret)
    assert path.exists(), f"the test bed should have {path}"
    target = file if how == "link to the file" else folder / "cookie"
    before = {p: _owner_mode(p) for p in (file, folder, folder / "cookie", Path("/etc/shadow"))}
    saved = path.with_name(path.name + ".saved-by-test")
    _as_hub_user(testbed, "mv", str(path), str(saved))
    try:
        if how == "link to the file":
            _as_hub_user(testbed, "ln", "-s", str(target), str(path))
        else:
            # The secret's name is kept, but the data folder's subfolder is the link.
            sub = path.parent / "sub"
            _as_hub_user(testbed, "ln", "-s", str(folder), str(sub))
            _as_hub_user(testbed, "ln", "-s", f"sub/{target.name}", str(path))
        r = _install(testbed)
    finally:
        _as_hub_user(testbed, "rm", "-f", str(path), str(path.parent / "sub"))
        _as_hub_user(testbed, "mv", str(saved), str(path))
    after = {p: _owner_mode(p) for p in before}
    assert after == before, "install changed the owner or mode of a file it was led to"
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "symbolic link" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_install_still_works_without_links(testbed):
    r = _install(testbed)
    assert r.returncode == 0, r.stdout + r.stderr
