import os
import time

import pytest

from hpchub.singleuser.usertool import _log_dir, log_tail, main, prepare_logs


def test_prepare_creates_private_folder_and_cleans_old(tmp_path):
    folder = tmp_path / "logs"
    prepare_logs(folder, 7)
    assert (folder.stat().st_mode & 0o777) == 0o700
    old = folder / "jupyter-1.log"
    new = folder / "jupyter-2.log"
    other = folder / "notes.txt"
    for f in (old, new, other):
        f.write_text("x")
    past = time.time() - 8 * 86400
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    prepare_logs(folder, 7)
    assert not old.exists() and new.exists() and other.exists()


def test_log_tail(tmp_path):
    (tmp_path / "jupyter-5.log").write_text("\n".join(f"line {i}" for i in range(100)))
    assert log_tail(tmp_path, "5", 3) == "line 97\nline 98\nline 99"
    assert log_tail(tmp_path, "6", 3) == ""
    with pytest.raises(SystemExit):
        log_tail(tmp_path, "../x", 3)


@pytest.mark.parametrize("bad", ["relative", "~/../../etc", "/tmp/$(id)", "/a b"])
def test_log_dir_checked(bad):
    with pytest.raises(SystemExit):
        _log_dir(bad)


def test_refuses_root(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(SystemExit, match="never as root"):
        main(["prepare-logs", "--dir", str(tmp_path)])
