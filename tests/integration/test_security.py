"""Issue 7, security end to end through Apache with TLS: what one user can do to another, and
what the hub user can do as root. Every request goes to Apache on the hub's host (https_url) with
the test bed's own certificate unless a test says it bypasses Apache on purpose."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from hpchub.deploy.secrets import read_proxy_token
from hpchub.doctor.sudo import judge_sudo, parse_sudo_ll
from hpchub.doctor.tls import VERSIONS, accepts

from .hubclient import HubClient, home_api_path


def server_env(testbed, user: str) -> dict[str, str]:
    """The environment of ``user``'s server started by this test bed's hub (other test beds on
    the machine may run servers for the same demo users)."""
    from hpchub.config.loader import load_site

    site = load_site(testbed["site_file"])
    api = (site.hub.hub_connect_url or site.hub.hub_bind_url).rstrip("/")
    pids = subprocess.run(
        ["pgrep", "-u", user, "-f", "jupyterhub-singleuser"], capture_output=True, text=True
    ).stdout.split()
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        env = dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
        if env.get("JUPYTERHUB_API_URL", "").startswith(api):
            return {**env, "PID": pid}
    raise AssertionError(f"no server of {user} from the hub at {api}")


def _server_token(testbed, user: str) -> str:
    return server_env(testbed, user)["JUPYTERHUB_API_TOKEN"]


# Explicit options: an empty request would reuse whatever the user asked for last.
START = {"profile": "small-long"}


def tls_client(testbed, index: int) -> HubClient:
    """A user's browser-like session through Apache (HTTPS, the test bed's certificate)."""
    u = testbed["users"][index]
    c = HubClient(testbed["https_url"])
    c.s.verify = testbed["tls_cert"]
    r = c.login(u["name"], u["password"])
    assert r.status_code == 302, r.text
    c.make_token()
    _stop(c)
    return c


def _stop(c: HubClient) -> None:
    for name in list(c.model().get("servers", {})):
        c.stop(name)
        c.wait_stopped(name)


@pytest.fixture
def alice(testbed):
    c = tls_client(testbed, 0)
    yield c
    _stop(c)


@pytest.fixture
def bob(testbed):
    c = tls_client(testbed, 1)
    yield c
    _stop(c)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


# -- TLS -----------------------------------------------------------------------------------


def test_only_tls_1_2_and_1_3_are_accepted(testbed):
    port = _port(testbed["https_url"])
    host = testbed["hub_addr"]
    seen = {label: accepts(host, port, host, v) for label, v in VERSIONS.items()}
    assert seen == {"TLS 1.0": False, "TLS 1.1": False, "TLS 1.2": True, "TLS 1.3": True}


def test_hsts_and_http_redirect(testbed):
    s = requests.Session()
    s.trust_env = False
    r = s.get(testbed["https_url"] + "/hub/login", verify=testbed["tls_cert"])
    assert r.headers["Strict-Transport-Security"] == "max-age=63072000"
    r = s.get(testbed["http_url"] + "/hub/login?next=%2Fhub%2F", allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"] == testbed["https_url"] + "/hub/login?next=%2Fhub%2F"


def test_certificate_is_checked_by_clients(testbed):
    s = requests.Session()
    s.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        s.get(testbed["https_url"] + "/hub/login", verify=True)  # self-signed: not trusted
    ctx = ssl.create_default_context(cafile=testbed["tls_cert"])
    assert ctx.cert_store_stats()["x509"] == 1


def test_login_cookie_is_secure_through_apache(testbed):
    u = testbed["users"][0]
    c = HubClient(testbed["https_url"])
    c.s.verify = testbed["tls_cert"]
    r = c.login(u["name"], u["password"])
    assert r.status_code == 302
    cookies = {ck.name: ck for ck in c.s.cookies}
    login = [ck for name, ck in cookies.items() if name.startswith("jupyterhub-hub-login")]
    assert login and all(ck.secure for ck in login)
    assert all(ck.has_nonstandard_attr("HttpOnly") for ck in login)


# -- one user against another --------------------------------------------------------------


def test_another_users_cookie_or_token_cannot_reach_a_server(alice, bob, testbed):
    assert alice.start(options=START).status_code in (201, 202)
    alice.wait_ready()
    status = alice.server_url() + "api/status"
    assert alice.s.get(status, headers=alice._auth()).status_code == 200
    # Bob's token, at alice's server and at the hub's API about alice.
    assert bob.s.get(status, headers=bob._auth()).status_code == 403
    assert bob.s.get(alice.server_url() + "api/contents", headers=bob._auth()).status_code == 403
    r = bob.s.get(testbed["https_url"] + "/hub/api/users/alice", headers=bob._auth())
    assert r.status_code in (403, 404)
    r = bob.s.delete(testbed["https_url"] + "/hub/api/users/alice/server", headers=bob._auth())
    assert r.status_code in (403, 404)
    # Bob's browser session (cookies only): the hub refuses to let him into alice's server.
    r = bob.s.get(alice.server_url() + "lab")
    assert r.status_code == 403
    assert "alice" not in r.url or "/hub/" in r.url
    # Alice's own browser session does get in (so the 403 above is about bob).
    assert alice.s.get(alice.server_url() + "lab").status_code == 200
    r = alice.s.get(alice.server_url() + "api/status")
    assert r.status_code == 200 and "started" in r.json()
    assert alice.server()["ready"]


def test_users_own_jupyter_config_has_no_effect(alice, testbed):
    pw = pwd.getpwnam("alice")
    folder = Path(pw.pw_dir) / ".jupyter"
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    cfg = folder / "jupyter_server_config.py"
    assert not cfg.exists(), "alice has her own server config: refusing to overwrite it"
    cfg.write_text(
        "c.ServerApp.disable_check_xsrf = True\n"
        "c.ServerApp.tornado_settings = {'headers': {'Content-Security-Policy': "
        "\"frame-ancestors *\", 'X-Hpchub-Test': 'user-config'}}\n"
    )
    for p in (folder, cfg):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    try:
        assert alice.start(options=START).status_code in (201, 202)
        alice.wait_ready()
        base = alice.server_url()
        r = alice.s.get(base + "lab")  # a page: the browser logs in through the hub's OAuth
        assert r.status_code == 200
        assert "X-Hpchub-Test" not in r.headers
        assert "frame-ancestors *" not in r.headers.get("Content-Security-Policy", "")
        # XSRF still holds for cookie-authenticated requests to the user's own server...
        r = alice.s.post(base + "api/contents", json={"type": "notebook"})
        assert r.status_code == 403
        # ...and with the token from the server's XSRF cookie, the same request works.
        xsrf = alice.s.cookies.get("_xsrf", path="/user/alice/")
        assert xsrf
        home = home_api_path(testbed["site_file"], "alice")  # files.root may be above it
        r = alice.s.post(
            base + f"api/contents/{home}", json={"type": "notebook"}, headers={"X-XSRFToken": xsrf}
        )
        assert r.status_code == 201, r.text
        alice.s.delete(base + "api/contents/" + r.json()["path"], headers={"X-XSRFToken": xsrf})
    finally:
        cfg.unlink()
        if created:
            shutil.rmtree(folder, ignore_errors=True)


def test_port_callback_accepts_only_an_integer_from_the_servers_own_token(alice, bob, testbed):
    assert alice.start(options=START).status_code in (201, 202)
    alice.wait_ready()
    url = testbed["https_url"] + "/hub/api/hpchub/port"
    s = requests.Session()
    s.trust_env = False
    s.verify = testbed["tls_cert"]
    token = _server_token(testbed, "alice")
    auth = {"Authorization": f"token {token}"}
    for body in (
        {"port": "40001"},
        {"port": 40001.0},
        {"port": True},
        {"port": 40001, "ip": "10.9.9.9"},
        {"port": 40001, "exec_prefix": "touch /tmp/hpchub-pwned"},
        [40001],
    ):
        r = s.post(url, headers=auth, data=json.dumps(body))
        assert r.status_code == 400, (body, r.status_code, r.text)
    assert (
        s.post(
            url, headers={"Authorization": f"token {alice.token}"}, json={"port": 40002}
        ).status_code
        == 403
    )
    assert (
        s.post(
            url, headers={"Authorization": f"token {bob.token}"}, json={"port": 40002}
        ).status_code
        == 403
    )
    assert s.post(url, json={"port": 40002}).status_code == 403
    # A ready server cannot be moved to another port afterwards.
    assert s.post(url, headers=auth, json={"port": 40002}).status_code == 409
    assert alice.s.get(alice.server_url() + "api/status", headers=alice._auth()).status_code == 200
    assert not Path("/tmp/hpchub-pwned").exists()


# -- secrets -------------------------------------------------------------------------------


def _others_can_enter(folder: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (folder, *folder.parents))


def _world_readable_files(roots, max_size=5 * 1024 * 1024):
    """Files any user could read: readable by others, in folders others can enter."""
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            if not _others_can_enter(Path(dirpath)):
                dirs.clear()
                continue
            for name in files:
                p = Path(dirpath) / name
                try:
                    st = p.lstat()
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IROTH and st.st_size < max_size:
                    yield p


def test_no_secret_in_logs_job_scripts_or_world_readable_files(alice, bob, testbed):
    assert alice.start(options=START).status_code in (201, 202)
    alice.wait_ready()
    env = server_env(testbed, "alice")
    job = env["SLURM_JOB_ID"]
    hub_data = Path(testbed["proxy_token_file"]).parent
    secrets = {
        "server token": env["JUPYTERHUB_API_TOKEN"],
        "alice's API token": alice.token,
        "bob's API token": bob.token,
        "proxy token": read_proxy_token(Path(testbed["proxy_token_file"])),
        "cookie secret": (hub_data / "jupyterhub_cookie_secret").read_text().strip(),
    }
    assert all(v and len(v) >= 16 for v in secrets.values())
    logs = [
        *Path(testbed["logs"]).glob("*.log"),
        *Path("/var/log/apache2").glob("*.log"),
        *Path(testbed["apache_logs"]).glob("*.log"),
        *Path("/var/log/slurm").glob("*.log"),
    ]
    for log in logs:
        text = log.read_text(errors="replace")
        for what, value in secrets.items():
            assert value not in text, f"{what} is in {log}"
    # The job script Slurm keeps: no token in it, and bob cannot even read it.
    script = subprocess.run(
        ["scontrol", "write", "batch_script", job, "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "#SBATCH" in script
    for what, value in secrets.items():
        assert value not in script, f"{what} is in the job script"
    as_bob = subprocess.run(
        ["runuser", "-u", "bob", "--", "scontrol", "write", "batch_script", job, "-"],
        capture_output=True,
        text=True,
    )
    # (scontrol exits 0 here, but says why it wrote nothing.)
    assert "#SBATCH" not in as_bob.stdout and "Invalid user id" in as_bob.stderr
    # The server's environment (which holds its token) is alice's alone.
    pid = env["PID"]
    peek = subprocess.run(
        ["runuser", "-u", "bob", "--", "cat", f"/proc/{pid}/environ"], capture_output=True
    )
    assert peek.returncode != 0 and b"JUPYTERHUB_API_TOKEN" not in peek.stdout
    # World-readable files anywhere the deployment or the jobs write.
    roots = [
        Path(testbed["site_file"]).parent,
        hub_data.parent,
        Path("/etc/apache2"),
        Path(testbed["apache_confdir"]),
        Path("/etc/sudoers.d"),
        Path("/var/spool/slurm"),
        Path("/var/lib/slurm"),
        Path("/tmp"),
        Path(pwd.getpwnam("alice").pw_dir),
    ]
    for f in _world_readable_files([r for r in roots if r.exists()]):
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for what, value in secrets.items():
            assert value not in text, f"{what} is in world-readable {f}"


# -- XSRF (CVE-2026-40864) -------------------------------------------------------------------


def _jupyterhub_version(prefix: str) -> tuple[int, ...]:
    out = subprocess.run(
        [f"{prefix}/bin/python", "-c", "import jupyterhub; print(jupyterhub.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(int(x) for x in out.strip().split(".")[:3])


def test_hub_runs_a_jupyterhub_with_the_xsrf_fix(testbed):
    assert _jupyterhub_version(testbed["prefix"]) >= (5, 4, 5)


CROSS_SITE = [
    {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "cross-site"},
    {},
]


@pytest.mark.parametrize("through", ["apache", "hub-port"])
def test_form_posts_without_xsrf_are_refused(testbed, through):
    """The no-cors bypass class, at Apache and (bypassing Apache) at the hub itself."""
    base = testbed["https_url"] if through == "apache" else testbed["hub_api_url"]
    u = testbed["users"][0]
    c = HubClient(base)
    c.s.verify = testbed["tls_cert"]
    assert c.login(u["name"], u["password"]).status_code == 302
    for headers in CROSS_SITE:
        for path in ("/hub/spawn", "/hub/spawn/alice", "/hub/accept-share"):
            r = c.s.post(base + path, data={"code": "x"}, headers=headers, allow_redirects=False)
            assert r.status_code == 403, (path, headers, r.status_code)
    # Nothing was started.
    assert (
        c.s.get(base + "/hub/api/user", headers={"X-XSRFToken": c._xsrf()}).json()["servers"] == {}
    )


def test_form_post_with_its_xsrf_token_works(alice, testbed):
    """The control: the same form post, with the page's _xsrf token, does start the server."""
    base = testbed["https_url"]
    xsrf = alice._xsrf()
    r = alice.s.post(base + "/hub/spawn", data={"_xsrf": xsrf}, allow_redirects=False)
    assert r.status_code == 302, r.text
    alice.wait_ready()


# -- the hub user and sudo -----------------------------------------------------------------


def _as_hub(testbed, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", testbed["hub_user"], "--", *argv],
        capture_output=True,
        text=True,
        input="",
        timeout=60,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["sudo", "-n", "true"],
        ["sudo", "-n", "-u", "root", "/usr/bin/sbatch", "--parsable"],
        ["sudo", "-n", "-u", "root", "/usr/bin/scancel", "1"],
        ["sudo", "-n", "-u", "alice", "/bin/sh", "-c", "id"],
        ["sudo", "-n", "-u", "alice", "/usr/bin/sbatch", "--parsable", "--wrap=id"],
        ["sudo", "-n", "-u", "alice", "/usr/bin/sbatch", "--wrap=id"],
        ["sudo", "-n", "-u", "alice", "/usr/bin/srun", "id"],
        ["sudo", "-n", "-u", "mallory", "/usr/bin/sbatch", "--parsable"],
        ["sudo", "-n", "-u", "#0", "/usr/bin/sbatch", "--parsable"],
        ["sudo", "-n", "-e", "/etc/shadow"],
    ],
)
def test_hub_user_can_run_nothing_else(testbed, argv):
    r = _as_hub(testbed, *argv)
    assert r.returncode != 0
    assert (
        "a password is required" in r.stderr or "not allowed" in r.stderr or "may not" in r.stderr
    )


def test_hub_user_can_run_what_it_needs(testbed):
    r = _as_hub(testbed, "sudo", "-n", "-u", "alice", "/usr/bin/scancel", "999999999")
    assert "a password is required" not in r.stderr and "not allowed" not in r.stderr
    helper = f"{testbed['prefix']}/bin/hpchub-user"
    r = _as_hub(
        testbed,
        "sudo",
        "-n",
        "-u",
        "alice",
        helper,
        "log-tail",
        "--dir",
        "~/.hpchub/logs",
        "--job",
        "1",
    )
    assert r.returncode == 0, r.stderr
    # Queries need no sudo at all.
    assert _as_hub(testbed, "squeue", "-h").returncode == 0


def test_sudo_listing_reaches_no_root(testbed):
    out = subprocess.run(
        ["sudo", "-n", "-ll", "-U", testbed["hub_user"]], capture_output=True, text=True, check=True
    ).stdout
    entries = parse_sudo_ll(out)
    assert entries
    for e in entries:
        assert "ALL" not in e.runas_users and "root" not in e.runas_users
        if all(c.endswith("/hpchub-extend-job *") for c in e.commands):
            # The Extend helper (time.extend): one generated command, as SlurmUser, not root.
            assert e.runas_users == ["slurm"]
        else:
            assert "!root" in e.runas_users
    # This test bed's own Extend rule (other named test beds on the machine add theirs).
    helper = str(Path(testbed["site_file"]).parent / "hpchub-extend-job *")
    extend = ("slurm", helper)
    ours = [
        e
        for e in entries
        if not any("/hpchub-extend-job" in c for c in e.commands) or e.commands == [helper]
    ]
    others = [c for e in ours for c in e.commands if c != helper]
    findings = judge_sudo(ours, others, testbed["hub_user"], extend)
    assert all(f.severity.name == "OK" for f in findings)


# -- websockets and hub restarts, through Apache ----------------------------------------------


def test_kernel_websocket_through_apache(alice, testbed, monkeypatch):
    # websocket-client verifies TLS against this bundle (the test bed's self-signed cert).
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", testbed["tls_cert"])
    assert alice.start(options=START).status_code in (201, 202)
    alice.wait_ready()
    assert alice.server_url().startswith("https://")
    assert alice.run_code("print(6 * 7)").strip() == "42"


def test_servers_stay_reachable_while_the_hub_restarts(alice, testbed):
    from hpchub_testbed import procs
    from hpchub_testbed.layout import from_environ

    assert alice.start(options=START).status_code in (201, 202)
    alice.wait_ready()
    status = alice.server_url() + "api/status"
    assert alice.s.get(alice.server_url() + "lab").status_code == 200  # browser login, cached
    layout = from_environ()
    unit = Path(testbed["site_file"]).parent / "systemd" / f"{layout.unit_prefix}.service"
    proxy_pid = procs.read_pid(layout.run / "proxy.pid")
    assert procs.stop("hub", layout.run)
    try:
        # The hub is down: its own pages fail, the user's server still answers.
        assert alice.s.get(testbed["https_url"] + "/hub/api/").status_code >= 500
        assert alice.s.get(status).status_code == 200
    finally:
        # Started from its unit, by a separate process (as the test bed does; it detaches).
        code = (
            "import sys; from pathlib import Path; from hpchub_testbed import services; "
            "services.start_unit('hub', Path(sys.argv[1]), Path(sys.argv[2]), "
            "netns=Path(sys.argv[3]))"
        )
        argv = [str(unit), str(layout.run), testbed["hub_netns"]]
        subprocess.run([sys.executable, "-c", code, *argv], check=True)
        procs.wait_for(
            lambda: alice.s.get(testbed["https_url"] + "/hub/api/").status_code == 200,
            60,
            "the hub to come back",
        )
    assert procs.read_pid(layout.run / "proxy.pid") == proxy_pid  # the proxy never restarted
    assert alice.server()["ready"]  # the hub found the job again
    assert alice.s.get(status, headers=alice._auth()).status_code == 200
