"""The launcher in the job: the held port, its reports to the hub, who holds the range."""

import pytest

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


def test_listeners_take_only_listen_state_in_the_range():
    from hpchub.core.ports import Listener, listeners

    # 0xAFC8 = 45000: one listener (inode 4242) and a TIME_WAIT self-connect that is not one.
    assert listeners([TCP_TABLE], 45000, 45000) == [Listener(45000, 1001, "4242")]
    assert listeners([TCP_TABLE], 8000, 8000) == [Listener(8000, 999, "777")]
    assert listeners([TCP_TABLE], 45001, 49999) == []


def test_exhausted_range_names_who_holds_it(monkeypatch):
    from hpchub.core import ports
    from hpchub.singleuser import launch

    monkeypatch.setattr(ports, "user_name", lambda uid: {1001: "bob", 999: "carol"}[uid])
    msg = launch.exhausted_message(45000, 45000, [TCP_TABLE])
    assert "every port of singleuser.port_range 45000-45000 on " in msg
    assert "bob holds 1 port (45000)" in msg and "carol" not in msg
    assert "widen the range" in msg
    assert "by sockets we cannot see" in launch.exhausted_message(45001, 45002, [TCP_TABLE])


def test_summary_lists_the_biggest_holder_first():
    from hpchub.core.ports import summary

    held = {"bob": list(range(40000, 40010)), "alice": [40011]}
    assert summary(held) == "bob holds 10 ports (40000, 40001, 40002, ...), alice 1 port (40011)"


def test_doctor_reports_who_holds_the_range(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from hpchub.core import ports
    from hpchub.doctor.ports import check_port_range

    monkeypatch.setattr(ports, "user_name", lambda uid: {1001: "bob", 999: "carol"}[uid])
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP_TABLE)
    site = SimpleNamespace(singleuser=SimpleNamespace(port_range=(45000, 45000)))
    d = SimpleNamespace(paths=SimpleNamespace(site=site), proc=tmp_path)
    [finding] = check_port_range(d)
    assert finding.severity.name == "ERROR" and "bob holds 1 port (45000)" in finding.what
    site.singleuser.port_range = (45001, 45010)
    assert check_port_range(d)[0].severity.name == "OK"


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
