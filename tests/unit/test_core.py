"""Foundations: the one name rule, safe file changes, printable text."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from hpchub.core.files import (
    LockBusy,
    UnsafePath,
    atomic_symlink,
    atomic_write,
    file_lock,
    open_dir,
    open_owned_dir,
    set_owner_mode,
    sha256_fd,
)
from hpchub.core.names import check_name, is_name, is_unix_name, user_name
from hpchub.core.privileges import AsUserError, run_as
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


def test_atomic_write_into_an_opened_folder(tmp_path):
    # The staging helper works through /proc/self/fd/N: it writes relative to the folder it opened.
    (tmp_path / "d").mkdir()
    fd = os.open(tmp_path / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        atomic_write("f", "one", 0o600, dir_fd=fd)
        with pytest.raises(UnsafePath, match="not a plain file name"):
            atomic_write("../escape", "x", dir_fd=fd)
    finally:
        os.close(fd)
    assert (tmp_path / "d" / "f").read_text() == "one"
    assert os.listdir(tmp_path / "d") == ["f"] and not (tmp_path / "escape").exists()


def test_sha256_fd(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert sha256_fd(fd, chunk=2) == hashlib.sha256(b"abc").hexdigest()
    finally:
        os.close(fd)


def test_file_lock_waits_then_gives_up(tmp_path):
    # A second open file description is a second holder, as another process would be.
    with (
        file_lock(tmp_path / "lock"),
        pytest.raises(LockBusy, match="locked by another process"),
        file_lock(tmp_path / "lock", wait=0.1),
    ):
        pass
    with file_lock(tmp_path / "lock", wait=0.1):
        pass
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError), file_lock(tmp_path / "link"):
        pass
    assert not (tmp_path / "elsewhere").exists()


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
    # The message names the whole path, so the one line an admin sees says where to look.
    with pytest.raises(UnsafePath, match=f"^{shared / 'file'} is a symbolic link"):
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


def test_open_owned_dir_makes_the_missing_folders_private(tmp_path):
    at = len(tmp_path.parts)  # scratch/alice and below are the user's
    fd = open_owned_dir(tmp_path / "scratch" / "alice" / "course", os.getuid(), at)
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "scratch" / "alice" / "course").stat().st_mode) == 0o700


def test_open_owned_dir_refuses_a_link_where_a_users_folder_goes(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "shared" / "alice").symlink_to(tmp_path / "elsewhere")
    at = len((tmp_path / "shared" / "alice").parts) - 1
    with pytest.raises(UnsafePath, match="shared/alice is a symbolic link made by"):
        open_owned_dir(tmp_path / "shared" / "alice" / "course", os.getuid(), at)
    assert not (tmp_path / "elsewhere" / "course").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's folder")
def test_open_owned_dir_refuses_a_folder_someone_else_made_first(tmp_path):
    folder = tmp_path / "shared" / "alice"
    folder.mkdir(parents=True)
    os.chown(folder, 65534, 65534)
    with pytest.raises(UnsafePath, match="alice belongs to .*, not to"):
        open_owned_dir(folder / "course", os.getuid(), len(folder.parts) - 1)
    assert not (folder / "course").exists()


def test_open_owned_dir_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "alice").write_text("x")
    with pytest.raises(UnsafePath, match="exists and is not a folder"):
        open_owned_dir(tmp_path / "alice" / "c", os.getuid(), len(tmp_path.parts))


def test_one_jinja_environment_escapes_html_only():
    from hpchub.core.templates import environment

    env = environment()
    assert env.autoescape("form/options.html.j2") is True
    assert env.autoescape("slurm/jupyter-job.sh.j2") is False
    assert env.from_string("{{ x | q }}").render(x="a b'c") == "'a b'\"'\"'c'"


def test_one_clock_can_be_moved():
    from hpchub.core import clock

    clock.set_clock(lambda: 42.0)
    try:
        assert clock.now() == 42.0
    finally:
        clock.set_clock(None)
    assert clock.now() > 42.0


def test_accounts_exist_or_not():
    from hpchub.core.accounts import group_exists, user_exists

    assert user_exists("root") and group_exists("root")
    assert not user_exists("no-such-user-xyz") and not group_exists("no-such-group-xyz")


def test_user_name_falls_back_to_the_number():
    assert user_name(0) == "root"
    assert user_name(2**31 - 7) == str(2**31 - 7)


def test_one_runner_reports_a_missing_program_and_a_timeout_as_exit_codes(tmp_path):
    from hpchub.core.commands import MISSING, TIMED_OUT, run_command

    r = run_command(["sh", "-c", "echo out; echo err >&2"], cwd=str(tmp_path))
    assert (r.returncode, r.stdout, r.stderr) == (0, "out\n", "err\n")
    assert run_command([str(tmp_path / "nothing")]).returncode == MISSING
    slow = run_command(["sleep", "5"], timeout=0.2)
    assert slow.returncode == TIMED_OUT and "did not finish in 0.2 s" in slow.stderr
    with pytest.raises(TypeError):
        run_command("echo hi")


def test_accounts_name_a_uid_and_give_ids_only_when_chowning():
    from hpchub.core.accounts import owner_ids
    from hpchub.core.names import user_name

    assert user_name(0) == "root"
    assert user_name(987654) == "987654"  # no such user: the number, still good for chown
    assert owner_ids("root", "root") == (0, 0)
    assert owner_ids("no-such-user", "no-such-group", chown=False) == (-1, -1)


# -- core.logline: one line per event, never a secret ------------------------------------------
def test_event_line_names_user_server_and_job():
    from hpchub.core.logline import event_line

    line = event_line("job submitted", user="alice", server="", job="123", partition="short")
    assert line == 'job submitted user=alice server="" job=123 partition=short'
    assert event_line("x", reason="Slurm said no", n=3) == 'x reason="Slurm said no" n=3'


def test_event_line_is_one_line_whatever_the_values():
    from hpchub.core.logline import event_line

    line = event_line("ended", user="alice", error="boom\nINFO forged user=bob\x1b[2J")
    assert "\n" not in line and "\x1b" not in line
    assert line.count("user=") == 2 and 'error="boom?INFO forged user=bob?[2J"' in line


def test_event_line_never_carries_a_secret():
    import secrets

    from hpchub.core.logline import HIDDEN, event_line

    hub_token = secrets.token_hex(16)  # JupyterHub's API tokens: 32 hex digits
    urlsafe = "aB3" + secrets.token_urlsafe(32)
    lines = [
        event_line("start", user="alice", api_token=hub_token),
        event_line("start", user="alice", password="hunter2", cookie_secret="c"),
        event_line("failed", error=f"sbatch: env JUPYTERHUB_API_TOKEN={hub_token} rejected"),
        event_line("failed", error=f"Authorization: token {hub_token}"),
        event_line("failed", error=f"Authorization: Bearer x{hub_token}y"),
        event_line("failed", error=f"proxy said {urlsafe}"),
        event_line(f"callback with token {hub_token}"),
    ]
    for line in lines:
        assert hub_token not in line and urlsafe not in line and "hunter2" not in line, line
        assert HIDDEN in line
    # What is not a secret stays readable: job ids, paths, node names, ports.
    plain = event_line("up", job="4242", host="node-17", log="/home/alice/.hpchub/logs/j.log")
    assert HIDDEN not in plain


def test_atomic_symlink_replaces_a_link_at_once_and_leaves_no_temporary(tmp_path):
    atomic_symlink(tmp_path / "current", "releases/a")
    atomic_symlink(tmp_path / "current", "releases/b")
    assert os.readlink(tmp_path / "current") == "releases/b"
    assert [p.name for p in tmp_path.iterdir()] == ["current"]


def test_atomic_symlink_never_writes_through_a_linked_folder(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (tmp_path / "real").mkdir()
    (shared / "planted").symlink_to(tmp_path / "real")
    os.lchown(shared / "planted", 65534, 65534)
    with pytest.raises(UnsafePath):
        atomic_symlink(shared / "planted" / "current", "releases/a")
    assert list((tmp_path / "real").iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can change its uid")
def test_run_as_reads_with_the_users_rights_only(tmp_path):
    secret = tmp_path / "root-only"
    secret.write_text("root's")
    secret.chmod(0o600)
    assert run_as(65534, 65534, lambda: str(os.getuid()).encode()) == b"65534"
    with pytest.raises(AsUserError, match="PermissionError"):
        run_as(65534, 65534, secret.read_bytes)
