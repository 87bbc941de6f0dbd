"""Issue 14: a command line as people type it, and messages that point the right way."""

import contextlib
import http.server
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
import yaml

from hpchub import __version__
from hpchub.cli import config_cmd
from hpchub.cli import main as cli_main
from hpchub.cli.main import main

GOOD = {"hub": {"allowed_groups": ["jupyter"]}}


@pytest.fixture
def site_file(tmp_path):
    p = tmp_path / "hpchub.yaml"
    p.write_text(yaml.safe_dump(GOOD))
    return p


def test_config_is_accepted_after_the_subcommand(site_file, capsys):
    assert main(["config", "validate", "--config", str(site_file)]) == 0
    assert f"{site_file}: valid" in capsys.readouterr().out


def test_config_before_the_subcommand_still_works_and_is_not_reset(site_file, capsys):
    assert main(["--config", str(site_file), "config", "validate"]) == 0
    assert f"{site_file}: valid" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"hpchub {__version__}"


def test_exit_codes_are_in_every_help(capsys):
    for argv in (["--help"], ["config", "validate", "--help"], ["doctor", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "exit codes:" in out and "70   an internal error" in out


def test_a_crash_is_one_line_and_a_private_file(site_file, monkeypatch, tmp_path, capsys):
    def boom(args):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(config_cmd, "validate", boom)
    monkeypatch.setattr(cli_main, "crash_folder", lambda: tmp_path / "cache" / "hpchub")
    assert main(["config", "validate", "--config", str(site_file)]) == 70
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "secret detail" not in err
    where = Path(err.split("details written to ")[1].strip())
    assert where.parent == tmp_path / "cache" / "hpchub"
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    assert "RuntimeError: secret detail" in where.read_text()


def test_a_missing_site_file_is_an_error_for_commands_that_use_it(tmp_path, capsys):
    missing = str(tmp_path / "none.yaml")
    for argv in (["config", "validate"], ["doctor"], ["kernels", "sync", "--dry-run"]):
        assert main([*argv, "--config", missing]) == 2
        err = capsys.readouterr().err
        assert missing in err and "hpchub config init" in err


def test_kernels_test_refuses_a_negative_timeout(site_file, capsys):
    with pytest.raises(SystemExit) as e:
        main(["kernels", "test", "--timeout", "-5", "--config", str(site_file)])
    assert e.value.code == 2
    assert "-5 is not between 0 (excluded) and 3600 seconds" in capsys.readouterr().err


def test_doctor_user_root_does_not_say_to_add_root_to_a_group():
    from hpchub.config.models import SiteConfig
    from hpchub.doctor.user import check_account

    (finding,) = check_account("root", SiteConfig())
    text = f"{finding.what} {finding.fix}"
    assert "uid 0" in text and "add root" not in text


def test_course_status_as_root_with_no_data_dir_says_it_does_not_exist(tmp_path, capsys):
    site = tmp_path / "site.yaml"
    data = {
        "hub": {"allowed_groups": ["jupyter"], "data_dir": str(tmp_path / "never")},
        "courses": [
            {"name": "w1", "users": ["alice"], "source": {"path": str(tmp_path / "materials")}},
        ],
    }
    site.write_text(yaml.safe_dump(data))
    assert main(["course", "status", "w1", "--config", str(site)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "run as root" not in err


def test_kernels_sync_names_a_missing_module_folder(tmp_path):
    from hpchub.kernels import lmod

    with pytest.raises(lmod.LmodError) as e:
        lmod.discover(Path("/bin/true"), f"{tmp_path}/nowhere")
    assert "do not exist" in str(e.value) and "JSON" not in str(e.value)
    assert lmod.parse_spider_json("[]") == []


def test_plain_http_on_the_tls_port_is_named_as_such():
    from hpchub.doctor import tls

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        findings = tls.check("localhost", server.server_address[1], None, 0)
    finally:
        server.shutdown()
        server.server_close()
    assert len(findings) == 1 and "answers plain HTTP, not TLS" in findings[0].what
    assert "refused" not in findings[0].what


def test_a_tls_port_that_also_answers_plain_http_is_not_called_plain(tmp_path):
    """Apache's TLS ports answer a plain request with '400 Bad Request': that is TLS."""
    import ssl
    import subprocess

    from hpchub.doctor import tls

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        with contextlib.suppress(OSError):  # the listener is closed when the test ends
            conn, _ = listener.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except ssl.SSLError:  # a plain request: answer as Apache does
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        assert tls.speaks_plain_http("127.0.0.1", port) is False
    finally:
        listener.close()


def test_no_cli_module_prints_a_traceback_itself():
    root = Path(__file__).resolve().parents[2] / "src" / "hpchub" / "cli"
    assert not [p for p in root.glob("*.py") if "print_exc" in p.read_text()]
    assert os.path.exists(root / "main.py")


def test_root_writes_crash_details_only_into_its_own_home():
    env = {"XDG_CACHE_HOME": "/home/bob/.cache", "HOME": "/home/bob"}
    assert cli_main.crash_folder(env, euid=0) == Path("/root/.cache/hpchub")
    assert cli_main.crash_folder(env, euid=1000) == Path("/home/bob/.cache/hpchub")
