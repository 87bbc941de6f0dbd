"""Capture what this machine's Slurm and sudo print, in the formats hpchub asks for.

`python -m hpchub_testbed.capture DIR` (as root, on a running testbed) submits four small jobs
as the outsider demo user on the batch partition (running, held, killed for memory, done),
then writes each command's output to DIR: the unit tests run hpchub's parsers over the files of
every Slurm generation (tests/unit/data/slurm-*). The formats come from hpchub itself.
"""

from __future__ import annotations

import json
import pwd
import re
import subprocess
import sys
import time
from pathlib import Path

from hpchub.slurm.parsers import (
    HUB_JOBS_FORMAT,
    PENDING_FORMAT,
    SINFO_NODE_FORMAT,
    SINFO_STATE_FIELDS,
    SQUEUE_FORMAT,
    STATE_ONLY_FORMAT,
)

from .layout import from_environ

HUB = "capture"
"""The hub name the captured jobs carry in their comment (hpchub:capture)."""
OOM_OUT = "hpchub-capture-oom.out"
"""In the user's home (the job's working folder); read back as that user."""
OOM_PROGRAM = "b = bytearray(900 * 1024 * 1024); import time; time.sleep(5)"


def _run(*argv: str, user: str | None = None) -> subprocess.CompletedProcess:
    full = ["sudo", "-u", user, *argv] if user else list(argv)
    cwd = pwd.getpwnam(user).pw_dir if user else "/"
    return subprocess.run(full, capture_output=True, text=True, cwd=cwd)  # noqa: S603


def _out(*argv: str) -> str:
    r = _run(*argv)
    if r.returncode != 0:
        raise SystemExit(f"capture: {' '.join(argv)} failed: {r.stderr.strip()}")
    return r.stdout


def _submit(user: str, *args: str) -> str:
    r = _run(
        "sbatch",
        "--parsable",
        "--partition=batch",
        "--time=5",
        f"--comment=hpchub:{HUB}",
        *args,
        user=user,
    )
    if r.returncode != 0:
        raise SystemExit(f"capture: sbatch {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def _state(job: str) -> str:
    return _run("squeue", "-h", "--states=all", "-j", job, "-o", "%T").stdout.strip()


def _wait(job: str, states: tuple[str, ...], timeout: float = 90) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state = _state(job)
        if state in states:
            return state
        time.sleep(1)
    raise SystemExit(f"capture: job {job} did not reach {'/'.join(states)} in {timeout:g} s")


def capture(out: Path) -> None:
    layout = from_environ()
    user = layout.outsider
    out.mkdir(parents=True, exist_ok=True)
    _run("rm", "-f", OOM_OUT, user=user)
    sbatch_text = _submit(user, "--mem=100M", "-o", "/dev/null", "--wrap=sleep 300")
    jobs = {"running": sbatch_text.strip().split(";")[0]}
    jobs["pending"] = _submit(user, "--hold", "--mem=100M", "-o", "/dev/null", "--wrap=true")
    jobs["oom"] = _submit(
        user, "--mem=50M", "-o", OOM_OUT, f"--wrap=exec python3 -c '{OOM_PROGRAM}'"
    )
    jobs["completed"] = _submit(user, "--mem=50M", "-o", "/dev/null", "--wrap=true")
    jobs = {k: v.strip() for k, v in jobs.items()}
    try:
        _wait(jobs["running"], ("RUNNING",))
        jobs["oom_state"] = _wait(jobs["oom"], ("OUT_OF_MEMORY", "FAILED", "COMPLETED"))
        _wait(jobs["completed"], ("COMPLETED",))
        ids = ",".join(jobs[k] for k in ("running", "pending", "oom", "completed"))
        files = {
            "sbatch_parsable.txt": sbatch_text,
            "squeue_jobs.txt": _out(
                "squeue", "--noheader", "--states=all", f"--jobs={ids}", f"--format={SQUEUE_FORMAT}"
            ),
            "squeue_start.txt": _out(
                "squeue", "--start", "-h", "-t", "PENDING", f"--format={PENDING_FORMAT}"
            ),
            "squeue_pending_partitions.txt": _out("squeue", "-h", "-t", "PENDING", "-o", "%P"),
            "squeue_hub_jobs.txt": _out(
                "squeue", "--noheader", f"--users={user}", f"--format={HUB_JOBS_FORMAT}"
            ),
            "sinfo_nodes.txt": _out("sinfo", "-N", "--noheader", f"--format={SINFO_NODE_FORMAT}"),
            "sinfo_state.txt": _out("sinfo", "-N", "-h", "-O", SINFO_STATE_FIELDS),
            "scontrol_job_running.txt": _out("scontrol", "show", "job", "-o", jobs["running"]),
            "scontrol_job_pending.txt": _out("scontrol", "show", "job", "-o", jobs["pending"]),
            "scontrol_job_oom.txt": _out("scontrol", "show", "job", "-o", jobs["oom"]),
            "sudo_ll_hub.txt": _out("sudo", "-ll", "-U", layout.hub_user),
            "slurmd_C.txt": _out("/usr/sbin/slurmd", "-C"),
            "squeue_version.txt": _out("squeue", "--version"),
        }
        time.sleep(2)  # the OOM message is written when the step ends
        files["oom_log.txt"] = _run("cat", OOM_OUT, user=user).stdout
        state_only = _run(
            "squeue",
            "--only-job-state",
            "--noheader",
            "--states=all",
            f"--jobs={ids}",
            f"--format={STATE_ONLY_FORMAT}",
        )
        if state_only.returncode == 0:
            files["squeue_only_job_state.txt"] = state_only.stdout
        else:
            files["squeue_only_job_state.error.txt"] = state_only.stderr
        versions = {
            "slurm": files["squeue_version.txt"].split()[-1],
            "sudo": _out("sudo", "-V").splitlines()[0].split()[-1],
            "python": sys.version.split()[0],
        }
        for name, text in files.items():
            (out / name).write_text(text)
        (out / "jobs.json").write_text(
            json.dumps({**jobs, "hub": HUB, **versions}, indent=1) + "\n"
        )
    finally:
        _run("scancel", *(v for k, v in jobs.items() if re.fullmatch(r"\d+", v)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m hpchub_testbed.capture DIR")
    capture(Path(sys.argv[1]))
