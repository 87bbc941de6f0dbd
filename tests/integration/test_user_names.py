"""User names as sites have them (issue 15, item 7): anna.lee, a name with a dot, end to end;
and names from a realm (anna.lee@EXAMPLE.ORG), typed at the form or vouched for by the gate."""

from __future__ import annotations

import html
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from tornado import web
from tornado.httputil import HTTPHeaders

from hpchub.auth.remote_user import RemoteUserAuthenticator

from .conftest import squeue_ids
from .gate_vhosts import Recorder
from .hubclient import HubClient
from .test_security import _stop as stop_servers
from .test_security import tls_client
from .test_spawn_e2e import _routes
from .test_spawn_form import batch_script, form_post

DOTTED = "anna.lee"


def _user(testbed, name: str) -> dict:
    return next(u for u in testbed["users"] if u["name"] == name)


@pytest.fixture
def anna(testbed, monkeypatch):
    """anna.lee's browser-like session through Apache (HTTPS), with a token of hers."""
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", testbed["tls_cert"])
    c = tls_client(testbed, [u["name"] for u in testbed["users"]].index(DOTTED))
    yield c
    stop_servers(c)


def _job(user: str) -> dict:
    """The one job of ``user`` from this test bed's hub, as squeue shows it."""
    (job_id,) = squeue_ids(user)
    out = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%u|%j|%k|%T"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    owner, name, comment, state = out.split("|")
    return {"id": job_id, "user": owner, "name": name, "comment": comment, "state": state}


def test_a_dotted_name_spawns_end_to_end_through_apache(anna, testbed):
    account = pwd.getpwnam(DOTTED)
    # The form, as a browser posts it.
    r = form_post(anna, {"profile": "small-long"})
    assert r.status_code == 302, r.text[:500]
    anna.wait_ready()
    job = _job(DOTTED)
    assert job["user"] == DOTTED
    assert job["name"] == f"jupyter-{DOTTED}"
    assert job["comment"] == testbed["hub_name"].join(("hpchub:", ""))
    script = batch_script(job["id"])
    assert f"#SBATCH --output={account.pw_dir}/.hpchub/logs/jupyter-%j.log" in script
    assert f"#SBATCH --chdir={account.pw_dir}" in script
    # The port callback routed /user/anna.lee (and no look-alike) to her server, which answers
    # there through Apache; its kernel runs as her uid.
    routes = [r for r in _routes(testbed) if DOTTED in r]
    assert routes == [f"/user/{DOTTED}"], routes
    assert anna.server_url() == f"{testbed['https_url']}/user/{DOTTED}/"
    uid, job_id = anna.run_code("import os; print(os.getuid(), os.environ['SLURM_JOB_ID'])").split()
    assert (int(uid), job_id) == (account.pw_uid, job["id"])
    log = Path(account.pw_dir) / ".hpchub" / "logs" / f"jupyter-{job['id']}.log"
    assert log.stat().st_uid == account.pw_uid and (log.stat().st_mode & 0o777) == 0o600
    assert anna.stop().status_code in (202, 204)
    anna.wait_stopped()
    assert squeue_ids(DOTTED) == []


# -- names from a realm ------------------------------------------------------------------------


def _page_text(r) -> str:
    return html.unescape(r.text)


def _hub_log(testbed) -> str:
    return (Path(testbed["logs"]) / "hub.log").read_text()


def _whoami(c: HubClient) -> str:
    r = c.s.get(c.base + "/hub/api/user", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["name"]


def test_a_realm_name_typed_at_the_login_form_is_the_local_account(testbed):
    anna = _user(testbed, DOTTED)
    c = HubClient(testbed["https_url"])
    c.s.verify = testbed["tls_cert"]
    # As a directory writes it, in the realm's usual upper case.
    r = c.login(f"Anna.Lee@{testbed['realm']}", anna["password"])
    assert r.status_code == 302, r.text[:300]
    assert _whoami(c) == DOTTED


def test_a_foreign_realm_is_refused_in_words_before_any_password(testbed):
    anna = _user(testbed, DOTTED)
    name = f"{DOTTED}@{testbed['foreign_realm']}"
    c = HubClient(testbed["https_url"])
    c.s.verify = testbed["tls_cert"]
    r = c.login(name, anna["password"])
    assert r.status_code == 403
    realm, ours = testbed["foreign_realm"].lower(), testbed["realm"].lower()
    assert f"{name!r} is from realm {realm!r}: this hub takes accounts of {ours} only" in (
        _page_text(r)
    )
    log = _hub_log(testbed)
    assert f"Login refused: {name!r} is from realm {realm!r}" in log
    assert f"PAM Authentication failed ({name!r}" not in log  # PAM never saw it


def _gate_client(base: str, testbed, identity: str, password: str) -> HubClient:
    c = HubClient(base)
    c.s.verify = testbed["tls_cert"]
    c.s.auth = (identity, password)  # what the SSO gate (basic authentication here) checks
    return c


def test_the_gate_vouches_for_a_realm_name_and_the_hub_maps_it(gated, testbed):
    anna = _user(testbed, DOTTED)
    c = _gate_client(gated, testbed, f"{DOTTED}@{testbed['realm']}", anna["password"])
    assert c.s.get(gated + "/hub/login").status_code == 200  # through the gate
    assert c.login(DOTTED, anna["password"]).status_code == 302
    assert _whoami(c) == DOTTED
    # Typed as the directory gives it: the same account, and the gate agrees.
    c = _gate_client(gated, testbed, f"{DOTTED}@{testbed['realm']}", anna["password"])
    assert c.login(f"{DOTTED}@{testbed['realm']}", anna["password"]).status_code == 302
    assert _whoami(c) == DOTTED


def test_the_gates_realm_name_cannot_log_in_as_another_account(gated, testbed):
    anna, alice = _user(testbed, DOTTED), testbed["users"][0]
    c = _gate_client(gated, testbed, f"{DOTTED}@{testbed['realm']}", anna["password"])
    r = c.login(alice["name"], alice["password"])  # anna passed the gate, knows alice's password
    assert r.status_code == 403
    assert f"Login as 'alice' refused: the gate identified {DOTTED!r}" in _hub_log(testbed)


def test_the_gate_vouching_for_a_foreign_realm_is_refused_in_words(gated, testbed):
    anna = _user(testbed, DOTTED)
    identity = f"{DOTTED}@{testbed['foreign_realm']}"
    c = _gate_client(gated, testbed, identity, anna["password"])
    r = c.login(DOTTED, anna["password"])
    assert r.status_code == 403
    assert f"{identity!r} is from realm {testbed['foreign_realm'].lower()!r}" in _page_text(r)


async def test_remote_user_maps_what_apache_sends_for_a_realm_name(remote_user, testbed):
    """Apache alone (hub.authenticator remote_user): the identity Apache really sends, read by
    the hub's authenticator with the test bed's realms."""
    base, paths = remote_user
    anna = _user(testbed, DOTTED)
    auth = RemoteUserAuthenticator(
        frontend_secret_file=str(paths.frontend_secret), realms=paths.site.hub.realms
    )

    def sent_for(identity: str) -> HTTPHeaders:
        s = requests.Session()
        s.trust_env = False
        s.verify = testbed["tls_cert"]
        s.auth = (identity, anna["password"])
        Recorder.seen.clear()
        assert s.get(base + "/hub/login").status_code == 200
        return HTTPHeaders(Recorder.seen[-1][1])

    class Handler:
        class request:  # noqa: N801 - shaped like tornado's handler.request
            remote_ip = "127.0.0.1"

    Handler.request.headers = sent_for(f"{DOTTED}@{testbed['realm']}")
    assert Handler.request.headers["X-Hpchub-Remote-User"] == f"{DOTTED}@{testbed['realm']}"
    assert (await auth.authenticate(Handler()))["name"] == DOTTED
    Handler.request.headers = sent_for(f"{DOTTED}@{testbed['foreign_realm']}")
    with pytest.raises(web.HTTPError) as err:
        await auth.authenticate(Handler())
    assert err.value.status_code == 403
    assert "this hub takes accounts of" in err.value.log_message % err.value.args


# -- the commands that take a user name, with a dotted name ------------------------------------


def _hpchub(site_file, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("hpchub")
    return subprocess.run(
        [str(exe), "--config", str(site_file), *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def course_for_anna(testbed):
    """A site file with one more course: anna.lee takes it; its target holds {user}, in a
    shared scratch folder (sticky, like /scratch/work); its materials are a folder."""
    root = Path(tempfile.mkdtemp(prefix="hpchub-names-", dir="/tmp"))
    root.chmod(0o755)
    materials = root / "materials"
    materials.mkdir()
    (materials / "README.md").write_text("# Welcome, anna.lee\n")
    (materials / "README.md").chmod(0o644)
    materials.chmod(0o755)
    scratch = root / "scratch"
    scratch.mkdir()
    scratch.chmod(0o1777)
    name = "names" + uuid.uuid4().hex[:8]
    data = yaml.safe_load(Path(testbed["site_file"]).read_text())
    course = {
        "name": name,
        "users": [DOTTED],
        "source": {"path": str(materials)},
        "target": f"{scratch}/{{user}}/{name}",
    }
    data["courses"] = [*data.get("courses", []), course]
    site_file = root / "hpchub.yaml"
    site_file.write_text(yaml.safe_dump(data))
    site_file.chmod(0o644)
    data_dir = Path(data["hub"]["data_dir"])
    yield {"name": name, "site_file": site_file, "target": scratch / DOTTED / name}
    shutil.rmtree(root, ignore_errors=True)
    for part in ("reports", "cache"):
        shutil.rmtree(data_dir / "courses" / part / name, ignore_errors=True)


def test_a_course_is_staged_into_the_dotted_users_folder_as_her(course_for_anna, testbed):
    c = course_for_anna
    # An instructor pastes the name as the directory gives it: the account it maps to.
    out = _hpchub(
        c["site_file"], "course", "stage", c["name"], "--user", f"Anna.Lee@{testbed['realm']}"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == f"{DOTTED}: ok: 1 added\n"
    readme = c["target"] / "README.md"
    uid = pwd.getpwnam(DOTTED).pw_uid
    assert readme.read_text() == "# Welcome, anna.lee\n"
    assert readme.stat().st_uid == uid and c["target"].parent.stat().st_uid == uid
    assert (c["target"].parent.stat().st_mode & 0o777) == 0o700
    out = _hpchub(c["site_file"], "course", "status", c["name"], "--user", DOTTED)
    assert out.returncode == 0 and f"{DOTTED} in {c['name']}: ok, 1 added" in out.stdout, out
    # A name of another realm, or a path, is refused in words, and nothing runs.
    for bad, words in (
        (f"{DOTTED}@{testbed['foreign_realm']}", "is from realm"),
        ("..", "'..' is not a user name"),
    ):
        out = _hpchub(c["site_file"], "course", "stage", c["name"], "--user", bad)
        assert out.returncode == 2 and words in out.stderr, out
        assert "Traceback" not in out.stderr


def test_doctor_checks_the_dotted_users_account(testbed):
    out = _hpchub(testbed["site_file"], "doctor", "--user", f"{DOTTED}@{testbed['realm']}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"is the account {DOTTED}" in out.stdout
    assert "0 errors" in out.stdout


def test_kernels_test_runs_as_the_dotted_user_in_slurm(testbed):
    out = _hpchub(
        testbed["site_file"], "kernels", "test", "--user", f"anna.lee@{testbed['realm']}",
        "--in-slurm", "python3",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(f"kernels tested as {DOTTED} on ")
    assert "in Slurm job" in out.stdout and "1 passed, 0 failed" in out.stdout
