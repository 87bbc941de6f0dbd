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


# A server that adopts the launcher's socket, like hpchub-jupyterhub-singleuser does.
ADOPTING_SERVER = (
    "import os, socket, time; s = socket.socket(fileno=int(os.environ['HPCHUB_LISTEN_FD']));"
    "time.sleep(0.3); s.setblocking(True); c, _ = s.accept(); c.recv(100);"
    "c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\n'); c.close(); time.sleep(0.3)"
)


def _fake_hub(monkeypatch, launch):
    told = []
    monkeypatch.setattr(launch, "tell_hub", lambda url, tok, msg, **kw: told.append(msg))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    return told


def test_launch_reports_once_serving_then_says_ended(monkeypatch):
    import sys

    from hpchub.singleuser import launch

    told = _fake_hub(monkeypatch, launch)
    with pytest.raises(SystemExit) as e:
        launch.main(["--port-range=45000-45999", "--", sys.executable, "-c", ADOPTING_SERVER])
    assert e.value.code == 0
    assert len(told) == 2 and 45000 <= told[0]["port"] <= 45999
    assert told[1] == {"ended": True}


def test_launch_never_reports_a_server_that_died(monkeypatch):
    import sys

    from hpchub.singleuser import launch

    told = _fake_hub(monkeypatch, launch)
    with pytest.raises(SystemExit) as e:
        launch.main(["--port-range=45000-45999", "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert e.value.code == 3 and told == []


def test_port_is_held_on_both_families_until_closed():
    import socket

    from hpchub.singleuser.listen import answer_ended, bind_port, http_answers

    def other_can_bind(family, host, port):
        with socket.socket(family) as t:
            if family == socket.AF_INET6:
                t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                t.bind((host, port))
            except OSError:
                return False
            return True

    sock = bind_port(0)
    port = sock.getsockname()[1]
    assert not other_can_bind(socket.AF_INET, "0.0.0.0", port)  # noqa: S104
    if sock.family == socket.AF_INET6:
        assert not other_can_bind(socket.AF_INET6, "::", port)
    answer_ended(sock)
    assert http_answers(port)  # 503 from the launcher, and the port is still held
    assert not other_can_bind(socket.AF_INET, "0.0.0.0", port)  # noqa: S104
    sock.close()


def test_exhausted_range_is_named():
    from hpchub.singleuser.listen import PortsExhausted, bind_port, open_listener

    held = bind_port(0)
    port = held.getsockname()[1]
    try:
        with pytest.raises(PortsExhausted, match=f"every port of {port}-{port}"):
            open_listener(port, port)
    finally:
        held.close()


TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:AFC8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 4242 1 0
   1: 0100007F:AFC8 0100007F:AFC8 06 00000000:00000000 03:00000000 00000000  1001        0 0 3 0
   2: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 777 1 0
"""


def test_listening_inodes_takes_only_listen_state_on_the_port():
    from hpchub.singleuser.launch import listening_inodes

    # 0xAFC8 = 45000: one listener (inode 4242) and a TIME_WAIT self-connect that is not one.
    assert listening_inodes(45000, [TCP_TABLE]) == {"4242"}
    assert listening_inodes(8000, [TCP_TABLE]) == {"777"}
    assert listening_inodes(45001, [TCP_TABLE]) == set()


def test_answers_probes_from_another_loopback_address():
    import socket

    from hpchub.singleuser.launch import answers

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not answers(port)
        s.listen()
        assert answers(port)


def test_launch_passes_the_socket_through_a_wrapper(monkeypatch):
    """Spawner.cmd may be a wrapper: the server is then a grandchild and still gets the socket."""
    import sys

    from hpchub.singleuser import launch

    told = _fake_hub(monkeypatch, launch)
    wrapper = f'{sys.executable} -c "{ADOPTING_SERVER}"; true'
    with pytest.raises(SystemExit) as e:
        launch.main(["--port-range=46000-46999", "--", "/bin/sh", "-c", wrapper])
    assert e.value.code == 0
    assert len(told) == 2 and 46000 <= told[0]["port"] <= 46999
