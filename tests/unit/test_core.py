"""Foundations: the one name rule, safe file changes, printable text."""

from __future__ import annotations

import os
import stat

import pytest

from hpchub.core.files import UnsafePath, atomic_write, open_dir, set_owner_mode
from hpchub.core.names import check_name, is_name, is_unix_name, user_name
from hpchub.core.text import printable


@pytest.mark.parametrize("name", ["alice", "anna.lee", "_svc", "a" * 32, "x-1"])
def test_unix_names_accepted(name):
    assert is_unix_name(name)


@pytest.mark.parametrize(
    "name", ["alice\n", "Alice", "-h", "", "a" * 33, "al ice", "root;id", "../x", None, 3]
)
def test_unix_names_refused_including_a_trailing_newline(name):
    assert not is_unix_name(name)
    with pytest.raises(ValueError, match="lower-case letters"):
        check_name("unix", name)


def test_every_kind_uses_fullmatch():
    assert is_name("slurm", "jupyter-short") and not is_name("slurm", "jupyter-short\n")
    assert is_name("course", "ml101") and not is_name("course", "ml101\n")


def test_printable_strips_escape_sequences_and_newlines():
    assert printable("job\x1b]0;pwned\x07\nname\x9b") == "job?]0;pwned??name?"
    assert printable("tab\tkept") == "tab\tkept"


def test_atomic_write_sets_mode_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "secret"
    atomic_write(target, "one", 0o600)
    atomic_write(target, b"two", 0o640)
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["secret"]


def test_atomic_write_cleans_up_on_failure(tmp_path):
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "f", 42, 0o600)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_a_link_planted_by_a_user_is_never_followed(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_text("root's")
    victim.chmod(0o600)
    (shared / "file").symlink_to(victim)
    (shared / "dir").symlink_to(tmp_path)
    os.lchown(shared / "file", 65534, 65534)
    with pytest.raises(UnsafePath):
        set_owner_mode(shared / "file", 0o666)
    with pytest.raises(UnsafePath):
        open_dir(shared / "dir")
    with pytest.raises(UnsafePath):
        atomic_write(shared / "dir" / "victim", "x", 0o644)
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert victim.read_text() == "root's"


def test_root_links_in_root_only_folders_are_followed():
    fd = open_dir("/var/run")  # Debian: a link to /run, made by root in /var
    os.close(fd)


def test_set_owner_mode_on_a_missing_file_says_so(tmp_path):
    assert set_owner_mode(tmp_path / "none", 0o600) is False


def test_user_name_falls_back_to_the_number():
    assert user_name(0) == "root"
    assert user_name(2**31 - 7) == str(2**31 - 7)
