"""`bench/slurm-rpcs`: what one poll of hpchub's monitor costs slurmctld, squeue form by form.

Runs where the Slurm to measure runs (bench/slurm-rpcs starts it in the Debian 13 root, Slurm
24.11, through `hpchub-testbed generation --run`; it also runs on this machine's own Slurm).
It submits held jobs (pending, they take no resources), then for each form of the query
resets `sdiag`, runs the query a number of times for all those jobs, and reads `sdiag`: the
RPCs per call and the controller's time per call, by RPC type. The argument lists are the
monitor's own (SlurmClient.squeue_argv), so the figures are those of what hpchub sends.
Everything it submitted is cancelled at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from hpchub.config.models import SlurmSettings
from hpchub.slurm.client import SlurmClient

from .sdiag import parse_sdiag

NAME = "hpchub-rpc-bench"
# The monitor's default interval (slurm.poll_interval): what "a minute" of polling is.
POLL_S = SlurmSettings().poll_interval


def forms(client: SlurmClient, ids: list[str]) -> dict[str, list[str]]:
    """The query forms compared, each an argument list for all of ``ids``."""
    classic = client.squeue_argv(ids)
    squeue = classic[0]
    return {
        "classic": classic,
        "only_job_state": client.squeue_argv(ids, state_only=True),
        "json": [squeue, "--json", f"--jobs={','.join(ids)}"],
        "only_job_state_json": [squeue, "--only-job-state", "--json", f"--jobs={','.join(ids)}"],
    }


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120)  # noqa: S603


def submit(n: int) -> list[str]:
    """``n`` held jobs (pending forever, no resources), one sbatch each, like n servers."""
    ids = []
    for _ in range(n):
        out = _run(
            [
                "sbatch",
                "--parsable",
                "--hold",
                f"--job-name={NAME}",
                "--output=/dev/null",
                "--wrap=true",
            ]  # fmt: skip
        ).stdout
        ids.append(out.strip().split(";")[0])
    return ids


def cancel() -> None:
    _run(["scancel", f"--name={NAME}"], check=False)


def measure(argv: list[str], calls: int) -> dict:
    """``calls`` runs of ``argv`` between an sdiag reset and an sdiag: per-call figures."""
    probe = _run(argv, check=False)
    if probe.returncode != 0:
        return {"error": (probe.stderr or probe.stdout).strip().splitlines()[-1:]}
    me = _run(["id", "-un"]).stdout.strip()
    _run(["sdiag", "--reset"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for _ in range(calls):
        _run(argv)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = parse_sdiag(_run(["sdiag"]).stdout)
    # The reset and the final sdiag are ours too, not the query's.
    by_type = {k: n for k, n in stats.by_type.items() if k != "REQUEST_STATS_INFO"}
    times = {k: t for k, t in stats.time_by_type_us.items() if k != "REQUEST_STATS_INFO"}
    mine = stats.by_user.get(me, 0) - stats.by_type.get("REQUEST_STATS_INFO", 0)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "calls": calls,
        "rpcs_per_call": mine / calls,
        "rpcs_all_users": sum(by_type.values()),
        "by_type_per_call": {k: n / calls for k, n in sorted(by_type.items())},
        "controller_ms_per_call": sum(times.values()) / 1000 / calls,
        "controller_ms_by_type_per_call": {k: t / 1000 / calls for k, t in sorted(times.items())},
        "client_cpu_ms_per_call": cpu * 1000 / calls,
        "wall_ms_per_call": wall * 1000 / calls,
        "output_bytes": len(probe.stdout),
        "rpcs_per_min": mine / calls * 60 / POLL_S,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench/slurm-rpcs", description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=400, help="held jobs queried (default 400)")
    p.add_argument("--calls", type=int, default=30, help="calls per form (default 30)")
    p.add_argument("--out", type=Path, required=True, help="JSON results")
    a = p.parse_args(argv)
    if not 1 <= a.jobs <= 2000 or not 1 <= a.calls <= 500:
        p.error("--jobs must be 1..2000 and --calls 1..500")
    if os.geteuid() != 0:
        raise SystemExit("bench/slurm-rpcs must run as root (it resets sdiag)")
    client = SlurmClient(SlurmSettings())
    version = _run(["squeue", "--version"]).stdout.strip()
    print(f"{version}: {a.jobs} held jobs, {a.calls} calls per form", flush=True)
    cancel()
    results: dict = {
        "meta": {
            "slurm": version,
            "jobs": a.jobs,
            "calls": a.calls,
            "poll_interval_s": POLL_S,
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        "forms": {},
    }
    try:
        ids = submit(a.jobs)
        for name, cmd in forms(client, ids).items():
            r = measure(cmd, a.calls)
            shown = [
                Path(cmd[0]).name,
                *("--jobs=ID,..." if c.startswith("--jobs=") else c for c in cmd[1:]),
            ]
            results["forms"][name] = {"argv": shown, **r}
            if "error" in r:
                print(f"  {name}: not available: {r['error']}", flush=True)
            else:
                print(
                    f"  {name}: {r['rpcs_per_call']:.2f} RPC/call, "
                    f"{r['controller_ms_per_call']:.2f} ms controller/call, "
                    f"{r['rpcs_per_min']:.1f} RPC/min at one poll per {POLL_S:g} s",
                    flush=True,
                )
    finally:
        cancel()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
