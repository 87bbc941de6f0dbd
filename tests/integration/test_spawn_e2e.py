"""Issue 2 end to end: PAM login, a server as the user's own Slurm job, kernel, stop."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import requests

from .conftest import allowed_ram_percent, squeue_ids
from .hubclient import HubClient
from .hubhost import on_hub_host

KERNEL_PROBE = r"""
import os
lim = None
try:
    path = [l.split(':', 2)[2].strip() for l in open('/proc/self/cgroup') if ':memory:' in l][0]
    while path and not os.path.basename(path).startswith('job_'):
        path = os.path.dirname(path)
    lim = int(open('/sys/fs/cgroup/memory' + path + '/memory.limit_in_bytes').read())
except Exception:
    pass
print(os.getuid(), os.environ.get('SLURM_JOB_ID'), lim, os.environ.get('SLURM_MEM_PER_NODE'))
"""


def test_wrong_password_is_403(testbed):
    c = HubClient(testbed["hub_url"])
    r = c.login(testbed["users"][0]["name"], "not-the-password")
    assert r.status_code == 403


def test_user_outside_allowed_group_is_403(testbed):
    c = HubClient(testbed["hub_url"])
    r = c.login(testbed["outsider"]["name"], testbed["outsider"]["password"])
    assert r.status_code == 403


def test_spawn_runs_as_user_in_slurm_job_with_memory_limit(alice, testbed):
    import pwd

    r = alice.start(options={"profile": "custom", "memory": "768M"})
    assert r.status_code in (201, 202), r.text
    alice.wait_ready()
    jobs = squeue_ids("alice")
    assert len(jobs) == 1
    out = alice.run_code(KERNEL_PROBE).split()
    uid, job_id, cgroup_limit, slurm_mem = out
    assert int(uid) == pwd.getpwnam("alice").pw_uid
    assert job_id == jobs[0]
    assert slurm_mem == "768"
    if testbed["memory_enforcement"] == "cgroup":
        # The request is the soft limit; the hard limit is AllowedRAMSpace (the site's memory
        # factor) times it.
        hard = int(768 * 1024 * 1024 * allowed_ram_percent() / 100)
        assert abs(int(cgroup_limit) - hard) < 1024 * 1024
    # The job's log is private to the user.
    log = Path(pwd.getpwnam("alice").pw_dir) / ".hpchub" / "logs" / f"jupyter-{job_id}.log"
    assert log.stat().st_uid == pwd.getpwnam("alice").pw_uid
    assert (log.stat().st_mode & 0o777) == 0o600
    assert (log.parent.stat().st_mode & 0o777) == 0o700
    # Stop: the Slurm job is gone.
    assert alice.stop().status_code in (202, 204)
    alice.wait_stopped()
    assert squeue_ids("alice") == [] or _all_ended(jobs)


def _all_ended(job_ids) -> bool:
    r = subprocess.run(
        ["squeue", "-h", "--states=all", "-j", ",".join(job_ids), "-o", "%T"],
        capture_output=True,
        text=True,
    )
    return all(s not in ("RUNNING", "PENDING", "CONFIGURING") for s in r.stdout.split())


def _server_token(user: str) -> str:
    """The API token of ``user``'s running server of the hub under test (others may share users)."""
    hub_port = int(os.environ.get("HPCHUB_TESTBED_PORT_BASE", "8000")) + 81
    pids = subprocess.run(
        ["pgrep", "-u", user, "-f", "jupyterhub-singleuser"], capture_output=True, text=True
    )
    for pid in pids.stdout.split():
        try:
            env = dict(
                kv.split(b"=", 1)
                for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                if b"=" in kv
            )
        except OSError:
            continue
        if (
            f":{hub_port}/".encode() in env.get(b"JUPYTERHUB_API_URL", b"")
            and b"JUPYTERHUB_API_TOKEN" in env
        ):
            return env[b"JUPYTERHUB_API_TOKEN"].decode()
    raise AssertionError(f"no running server of {user} for the hub on port {hub_port}")


def _routes(testbed) -> dict:
    from hpchub.deploy.secrets import read_proxy_token

    token = read_proxy_token(Path(testbed["proxy_token_file"]))
    s = requests.Session()
    s.trust_env = False
    # The proxy's API answers only on the hub's own host.
    return on_hub_host(
        testbed,
        lambda: s.get(
            testbed["proxy_api_url"] + "/api/routes", headers={"Authorization": f"token {token}"}
        ).json(),
    )


def test_port_callback_accepts_only_port_from_own_token(alice, testbed):
    assert alice.start().status_code in (201, 202)
    alice.wait_ready()
    before = _routes(testbed)["/user/alice"]["target"]
    server_token = _server_token("alice")
    url = testbed["hub_api_url"] + "/hub/api/hpchub/port"  # where a job reports its port
    s = requests.Session()
    s.trust_env = False
    for body in (
        {"port": 40001, "exec_prefix": "touch /tmp/hpchub-pwned"},
        {"port": 40001, "ip": "10.1.2.3"},
        {"exec_prefix": "id"},
        {"port": "40001"},
        {"port": 22},
    ):
        r = s.post(url, headers={"Authorization": f"token {server_token}"}, data=json.dumps(body))
        assert r.status_code == 400, (body, r.status_code, r.text)
    # Another token of the same user (not the server's) is refused.
    r = s.post(url, headers={"Authorization": f"token {alice.token}"}, json={"port": 40002})
    assert r.status_code == 403
    # No token at all.
    assert s.post(url, json={"port": 40002}).status_code == 403
    # batchspawner's handler does not exist here.
    r = s.post(
        testbed["hub_api_url"] + "/hub/api/batchspawner",
        headers={"Authorization": f"token {server_token}"},
        json={"exec_prefix": "id"},
    )
    assert r.status_code == 404
    # Nothing changed: same route, server still answers.
    assert _routes(testbed)["/user/alice"]["target"] == before
    assert not Path("/tmp/hpchub-pwned").exists()
    assert alice.s.get(alice.server_url() + "api/status", headers=alice._auth()).status_code == 200


def test_sbatch_refusal_shows_sbatch_message(alice):
    # The site file offers `batch`, but an admin has just made it inactive in Slurm: only
    # sbatch knows, and its own words must reach the user.
    subprocess.run(["scontrol", "update", "PartitionName=batch", "State=INACTIVE"], check=True)
    try:
        r = alice.start(options={"profile": "custom", "partition": "batch", "memory": "256M"})
    finally:
        subprocess.run(["scontrol", "update", "PartitionName=batch", "State=UP"], check=True)
    assert r.status_code == 400, r.text
    msg = r.json()["message"]
    assert "Slurm refused the job" in msg
    assert "sbatch: error" in msg and "partition" in msg.lower()
    assert squeue_ids("alice") == []


def test_invalid_options_are_400_and_submit_nothing(alice):
    r = alice.start(options={"profile": "custom", "memory": "4G\n#SBATCH --uid=0"})
    assert r.status_code == 400
    assert "memory: must be a single line" in r.json()["message"]
    r = alice.start(options={"profile": "custom", "memory": "64G"})
    assert r.status_code == 400
    assert "memory: 64G is more than jupyter-short allows (1M to 8G)" in r.json()["message"]
    r = alice.start(options={"exec_prefix": "id"})
    assert r.status_code == 400 and "exec_prefix: unknown key" in r.json()["message"]
    assert squeue_ids("alice") == []
