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


def test_launch_reports_only_once_listening(monkeypatch):
    import sys

    from hpchub.singleuser import launch

    reported = []
    monkeypatch.setattr(launch, "report_port", lambda url, tok, port: reported.append(port))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    server = (
        "import socket,time,os; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
        "time.sleep(0.3); s.bind(('0.0.0.0', int(os.environ['JUPYTERHUB_SERVICE_URL'].rsplit(':',1)[1].strip('/'))));"
        "s.listen(); time.sleep(0.5)"
    )
    with pytest.raises(SystemExit) as e:
        launch.main(["--port-range=45000-45999", "--", sys.executable, "-c", server])
    assert e.value.code == 0
    assert len(reported) == 1 and 45000 <= reported[0] <= 45999


def test_launch_never_reports_a_server_that_died(monkeypatch):
    import sys

    from hpchub.singleuser import launch

    reported = []
    monkeypatch.setattr(launch, "report_port", lambda *a: reported.append(a))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    with pytest.raises(SystemExit) as e:
        launch.main(["--port-range=45000-45999", "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert e.value.code == 3 and reported == []


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


def test_serves_is_true_only_for_the_process_tree_that_listens():
    import socket
    import subprocess
    import sys

    from hpchub.singleuser.launch import serves

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not serves(os.getpid(), port)  # bound, not listening yet
        s.listen()
        assert serves(os.getpid(), port)
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            # Someone else's listener on the port does not make another process its server.
            assert not serves(other.pid, port)
        finally:
            other.kill()
            other.wait()


def test_answers_probes_from_another_loopback_address():
    import socket

    from hpchub.singleuser.launch import answers

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not answers(port)
        s.listen()
        assert answers(port)


def test_launch_reports_a_server_started_by_a_wrapper(monkeypatch):
    """Spawner.cmd may be a wrapper: the listener is then a grandchild of the launcher."""
    import sys

    from hpchub.singleuser import launch

    reported = []
    monkeypatch.setattr(launch, "report_port", lambda url, tok, port: reported.append(port))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    server = (
        "import socket,time,os; s=socket.socket();"
        "s.bind(('0.0.0.0', int(os.environ['JUPYTERHUB_SERVICE_URL'].rsplit(':',1)[1].strip('/'))));"
        "s.listen(); time.sleep(0.5)"
    )
    wrapper = f'{sys.executable} -c "{server}"; true'
    with pytest.raises(SystemExit) as e:
        launch.main(["--port-range=46000-46999", "--", "/bin/sh", "-c", wrapper])
    assert e.value.code == 0
    assert len(reported) == 1 and 46000 <= reported[0] <= 46999
