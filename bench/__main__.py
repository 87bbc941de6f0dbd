"""`bench/run`: hpchub against batchspawner 1.3.0 on the named testbed, docs/benchmarks.md out.

Phases, in this order, on one hub, one cluster and one single-user environment:
  1. hpchub, real jupyterhub-singleuser: sequential spawns, the floor, users at once;
  2. batchspawner, real server: the same spawns; 3. batchspawner with the stand-in: K servers;
  4. hpchub with the stand-in: K servers; 5. one culling pass over many users.
Everything temporary is undone at the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pwd
import shlex
import subprocess
import sys
import time
from pathlib import Path

from hpchub.config.culling import CullingSettings
from hpchub.config.loader import load_site
from hpchub.config.models import SiteConfig
from hpchub.culling.service import CULLER_SCOPES
from hpchub_testbed import accounting
from hpchub_testbed.layout import from_environ

from . import (
    accounts,
    breakdown,
    cull,
    hubctl,
    load,
    report,
    restart,
    scale,
    slurmq,
    smoke,
    spawn,
    startup,
)
from .hubapi import Hub
from .profiles import BENCH_SCOPES, PARTITIONS, bench_profiles

REPO = Path(__file__).resolve().parent.parent
QUICK_MINUTES = 15  # how long `bench/run --quick` took on the development machine


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small run (about 15 min): fewer spawns, K=10,50, 1-min windows, 500 users",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="every phase once and small (a few minutes), for CI: exit 1 if any did not work; "
        "writes no docs",
    )
    p.add_argument("--minutes", type=float, help="window per K (default 2, quick 1)")
    p.add_argument("--ks", help="comma-separated K values (default 10,50,100)")
    p.add_argument("--sequential", type=int, help="sequential spawns (default 10)")
    p.add_argument("--concurrent", type=int, help="users spawning at once (default 20)")
    p.add_argument("--cull-users", type=int, help="users in the culling pass (default 2000)")
    p.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="spawn rounds; the spawners alternate round by round (default 2)",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="the scale run only (phases scale,restart): many users on one hub, a hub restart "
        "with many servers; its results go to --scale-results",
    )
    p.add_argument("--scale-users", type=int, default=2000, help="Unix accounts (default 2000)")
    p.add_argument("--scale-servers", type=int, default=500, help="servers held (default 500)")
    p.add_argument("--logins-per-min", type=float, default=200, help="default 200")
    p.add_argument("--spawns-per-min", type=float, default=50, help="default 50")
    p.add_argument("--scale-minutes", type=float, default=10, help="churn window (default 10)")
    p.add_argument(
        "--quiet-minutes", type=float, default=1, help="RPC windows without churn (default 1)"
    )
    p.add_argument("--scale-memory", default="8M", help="memory of the scale run's jobs")
    p.add_argument("--restart-users", type=int, default=5000, help="hub users (default 5000)")
    p.add_argument(
        "--restart-servers", type=int, default=1000, help="running servers (default 1000)"
    )
    p.add_argument(
        "--scale-results",
        type=Path,
        default=REPO / "docs" / "benchmarks" / "scale-results.json",
    )
    p.add_argument(
        "--phases", default="spawn,load,cull", help="any of spawn,load,cull,scale,restart"
    )
    p.add_argument("--variants", default="hpchub,batchspawner", help="hpchub and/or batchspawner")
    p.add_argument("--real-memory", default="384M", help="memory of the real-server jobs")
    p.add_argument("--light-memory", default="100M", help="memory of the stand-in jobs")
    p.add_argument("--results", type=Path, default=REPO / "docs" / "benchmarks" / "results.json")
    p.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--report-only", action="store_true", help="rewrite the docs from --results")
    p.add_argument("--note", default="", help="a sentence for the page on what else ran meanwhile")
    a = p.parse_args(argv)
    quick = a.quick
    a.minutes = a.minutes or (1.0 if quick else 2.0)
    a.ks = [int(k) for k in (a.ks or ("10,50" if quick else "10,50,100")).split(",")]
    a.sequential = a.sequential or (5 if quick else 10)
    a.concurrent = a.concurrent or (10 if quick else 20)
    a.cull_users = a.cull_users or (500 if quick else 2000)
    a.phases = {"scale", "restart"} if a.scale else set(a.phases.split(","))
    a.variants = [v for v in a.variants.split(",") if v]
    bad = a.phases - set(PHASES) or set(a.variants) - {"hpchub", "batchspawner"}
    if bad:
        p.error(
            f"unknown phase or variant {sorted(bad)}; phases: {','.join(PHASES)}; "
            "variants: hpchub,batchspawner"
        )
    if a.smoke:
        smoke.apply(a)
    if any(k < 1 or k > 150 for k in a.ks):
        p.error("K must be between 1 and 150 (the testbed holds about 150 stand-in jobs)")
    if not 1 <= a.concurrent <= 40 or not 1 <= a.sequential <= 100:
        p.error("--concurrent must be 1..40 and --sequential 1..100")
    if not 1 <= a.rounds <= a.sequential:
        p.error("--rounds must be between 1 and --sequential")
    if not 10 <= a.cull_users <= 5000:
        p.error("--cull-users must be 10..5000")
    if not 2 <= a.scale_servers < a.scale_users <= 9999:
        p.error("--scale-servers must be at least 2 and below --scale-users (at most 9999)")
    if not 1 <= a.restart_servers <= min(a.restart_users, 1000):
        p.error("--restart-servers must be 1..1000 and at most --restart-users")
    if a.scale_servers > 1000:
        p.error("--scale-servers must be at most 1000 (the bench partition's places)")
    return a


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


# The real server each spawner runs: hpchub's adopts the socket its launcher holds.
PHASES = ("spawn", "load", "cull", "scale", "restart")
REAL_SERVER = {"hpchub": "hpchub-jupyterhub-singleuser", "batchspawner": "jupyterhub-singleuser"}
# The floors: each server started directly on the node (report.FLOOR_LABEL names them).
FLOORS = {"stock": "jupyterhub-singleuser", "hpchub": "hpchub-jupyterhub-singleuser"}


class Bench:
    """One run: the testbed, the tokens, and the phases' configuration."""

    def __init__(self, args):
        self.args = args
        self.layout = from_environ()
        if not self.layout.name:
            raise SystemExit(
                "bench/run works on a named testbed: set HPCHUB_TESTBED_NAME (bench/run sets bench)"
            )
        self.paths = hubctl.BenchPaths(self.layout)
        self.site = load_site(str(self.layout.site_file))
        self.profiles = bench_profiles(args.real_memory, args.light_memory)
        self.token = self.culler_token = ""
        self.hub_pid = 0
        self.users: list[str] = []
        self.env_bin = self.layout.env / "bin"

    def make_hub(self) -> Hub:
        return Hub(self.layout.public_url_inside, self.token)

    def site_with_profiles(self) -> SiteConfig:
        data = self.site.model_dump(mode="json")
        data["profiles"] = [*data["profiles"], *self.profiles]
        return SiteConfig.model_validate(data)

    def phase(self, name: str, variant: str, server: str, restart_hub: bool = True) -> None:
        """Write the phase's config.d file and restart the hub with it."""
        defaults = CullingSettings()
        values = dict(
            phase=f"{variant}, {server} server",
            variant={"cull": "loopback", "restart": "restart"}.get(name, variant),
            bench_scopes=BENCH_SCOPES,
            culler_scopes=list(CULLER_SCOPES),
            profiles=[*self.profiles, scale.scale_profile(self.args.scale_memory)],
            extra_partitions=[{"name": scale.BENCH_PARTITION, "max_time": "2h"}],
            job_environment={
                "JUPYTERHUB_ACTIVITY_INTERVAL": str(defaults.activity_interval),
                "HPCHUB_BUSY_CHECK": str(defaults.busy_check),
            },
            # hpchub's launcher holds the port and hands it to the server, which adopts it.
            cmd=[str(self.env_bin / REAL_SERVER[variant])]
            if server == "real"
            else [str(self.paths.standin)],
            partition=",".join(PARTITIONS),
            memory=self.args.real_memory if server == "real" else self.args.light_memory,
            nprocs="1",
            runtime="1:00:00",
            prologue=f"export PATH={self.env_bin}:$PATH",
            loopback_port=self.layout.public_port + 90,
        )
        hubctl.write_config_d(self.paths, **values)
        if restart_hub:
            self.hub_pid = hubctl.restart_hub(self.layout, log=log)
            log(f"phase {name}: {values['phase']} (hub pid {self.hub_pid})")

    def options(self, variant: str, server: str) -> dict:
        if variant == "batchspawner":
            return {}
        return {"profile": "bench-real" if server == "real" else "bench-light"}

    # -- phases -------------------------------------------------------------------------
    def spawn_phase(self, variant: str, results: dict, rnd: int) -> None:
        """One round of a spawner's spawns; rounds alternate the spawners against drift."""
        a = self.args
        self.phase("spawn", variant, "real")
        self.make_hub().create_users(self.users)
        opts = self.options(variant, "real")
        out = results["spawn"].setdefault(variant, {"sequential": [], "concurrent": []})
        # The floors follow hpchub's spawns: stock jupyterhub-singleuser and hpchub's server,
        # each started directly on the node, without Slurm.
        floors = (
            {name: str(self.env_bin / exe) for name, exe in FLOORS.items()}
            if variant == "hpchub"
            else None
        )
        n = _share(a.sequential, a.rounds, rnd)
        log(
            f"{variant}, round {rnd + 1}/{a.rounds}: {n} sequential spawns of {self.users[0]}"
            + (", each followed by the floors" if floors else "")
        )
        timings, measured = spawn.sequential(
            self.make_hub,
            self.users[0],
            opts,
            n,
            floors,
            tuple(self.site.singleuser.port_range),
            self.paths.state / "floor.log",
            log=log,
        )
        out["sequential"] += timings
        for name, values in measured.items():
            if name.startswith("profile_"):  # one profiled start: where the start-up goes
                results["spawn"].setdefault("startup", {})[name.removeprefix("profile_")] = values
            else:
                results["spawn"].setdefault("floors", {}).setdefault(name, []).extend(values)
        log(f"{variant}, round {rnd + 1}/{a.rounds}: {a.concurrent} users spawning at once")
        out["concurrent"] += spawn.concurrent(
            self.make_hub, self.users[: a.concurrent], opts, log=log
        )

    def load_phase(self, variant: str, results: dict) -> None:
        a = self.args
        self.phase("load", variant, "stand-in")
        self.make_hub().create_users(self.users)
        log(f"{variant}: K = {a.ks}, {a.minutes:g} min each")
        results["load"][variant] = load.hold(
            self.make_hub,
            self.hub_pid,
            self.users,
            a.ks,
            self.options(variant, "stand-in"),
            hubctl.BENCH_HUB_USER,
            a.minutes,
            log=log,
        )

    def cull_phase(self, results: dict) -> None:
        a = self.args
        self.phase("cull", "hpchub", "loopback")
        standin = cull.start_loopback(
            self.layout.public_port + 90, str(self.env_bin / "python3"), self.paths.standin
        )
        try:
            results["cull"] = cull.run_pass(
                self.make_hub,
                self.paths.internal_api,
                self.layout.public_url_inside,
                self.token,
                self.culler_token,
                self.site_with_profiles(),
                a.cull_users,
                "bench-keep",
                "bench-cull",
                20,
                10,
                log=log,
            )
        finally:
            cull.cleanup(self.make_hub, a.cull_users, log=log)
            standin.terminate()

    def run(self) -> dict:
        a = self.args
        results: dict = {"meta": self.meta(), "spawn": {}, "load": {}}
        log("preparing: bench hub user, sudo rule, tokens, stand-in, users")
        self.token, self.culler_token = hubctl.prepare(self.paths)
        n_users = max([a.concurrent, *a.ks]) if "load" in a.phases else a.concurrent
        self.users = accounts.ensure_users(
            n_users, self.layout.group, self.paths.users_file, log=log
        )
        accounting.ensure_associations(self.users, log=log)  # the cluster enforces them
        baseline = "batchspawner" in a.variants and bool(a.phases & {"spawn", "load"})
        try:
            if baseline:
                # Installed once for the baseline's rounds; hpchub's rounds in between never
                # import it (the hub imports the spawner class it is configured with).
                hubctl.install_baseline(self.paths, log=log)
            try:
                if "spawn" in a.phases:
                    for rnd in range(a.rounds):
                        # A B, B A, A B...: a steady drift of the machine favours neither.
                        order = a.variants if rnd % 2 == 0 else a.variants[::-1]
                        for variant in order:
                            self.spawn_phase(variant, results, rnd)
                if baseline and "load" in a.phases:
                    self.load_phase("batchspawner", results)
            finally:
                if baseline:
                    self._stop_everything()
                    hubctl.remove_baseline(self.paths, log=log)
            if "hpchub" in a.variants and "load" in a.phases:
                self.load_phase("hpchub", results)
            if "cull" in a.phases:
                self.cull_phase(results)
            if "scale" in a.phases:
                self.scale_phase(results)
            if "restart" in a.phases:
                self.restart_phase(results)
        finally:
            self._stop_everything()
            log("restoring the testbed")
            hubctl.restore(self.paths, log=log)
        results["meta"]["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        results["meta"]["loadavg_end"] = os.getloadavg()[1]
        return results

    def scale_phase(self, results: dict) -> None:
        """Many users on one hub: real accounts, PAM logins, spawns, the API, 10 minutes."""
        a = self.args
        log(f"scale: {a.scale_users} accounts of the scale run")
        passwords = scale.create_accounts(a.scale_users, self.layout.group, log=log)
        names = list(passwords)
        try:
            self.phase("scale", "hpchub", "stand-in")
            self.make_hub().create_users(names)
            rig = scale.Rig(
                self.make_hub,
                self.layout.public_url_inside,
                self.hub_pid,
                scale.proxy_pid(self.layout.run),
                hubctl.BENCH_HUB_USER,
            )
            results["scale"] = scale.load_run(
                rig,
                passwords,
                a.scale_servers,
                a.logins_per_min,
                a.spawns_per_min,
                a.scale_minutes,
                a.quiet_minutes,
                log=log,
            )
        finally:
            try:
                scale.cleanup_hub_users(self.make_hub, names)
            except Exception as err:  # noqa: BLE001 - the accounts go whatever the hub says
                log(f"could not delete the scale run's hub users ({err})")
            scale.remove_accounts(log=log)

    def restart_phase(self, results: dict) -> None:
        """A hub restart with many users and running servers (real Slurm jobs)."""
        a = self.args
        self.phase("restart", "hpchub", "restart")
        names = restart.hub_names(a.restart_users)
        self.make_hub().create_users(names)
        port = self.layout.public_port + 90
        standin = cull.start_loopback(port, str(self.env_bin / "python3"), self.paths.standin)
        db_url = self.db_url()
        try:
            ids = restart.submit_jobs(a.restart_servers, log=log)
            restart.wait_running(ids, log=log)
            hubctl.stop_hub(self.layout)
            restart.fabricate(db_url, names[: a.restart_servers], ids, port)
            results["restart"] = restart.measure(
                lambda: hubctl.start_hub(self.layout),
                self.make_hub(),
                f"http://127.0.0.1:{self.layout.proxy_api_port}",
                self.proxy_token(),
                self.layout.logs / "hub.log",
                hubctl.BENCH_HUB_USER,
                a.restart_servers,
                log=log,
            )
            results["restart"]["users"] = a.restart_users
        finally:
            hubctl.stop_hub(self.layout)
            restart.cancel_jobs()
            restart.forget(db_url, names)
            standin.terminate()
            self.hub_pid = hubctl.restart_hub(self.layout, log=log)

    def db_url(self) -> str:
        from hpchub.deploy.database import db_url

        return db_url(load_site(str(self.layout.site_file)))

    def proxy_token(self) -> str:
        env = (self.layout.hub_data / "proxy.env").read_text()
        return env.split("CONFIGPROXY_AUTH_TOKEN=", 1)[1].split()[0]

    def _stop_everything(self) -> None:
        """Whatever happened: no server or job of the benchmark's users is left behind."""
        try:
            hub = self.make_hub()
            for u in self.users:
                hub.stop(u)
        except Exception as err:  # noqa: BLE001 - best effort; Slurm is cleaned below
            log(f"could not stop every server through the hub ({err}); cancelling their jobs")
        if self.users and not slurmq.wait_no_jobs(self.users, timeout=60):
            slurmq.cancel_all(self.users)
            slurmq.wait_no_jobs(self.users, timeout=60)

    def meta(self) -> dict:
        a = self.args
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        return {
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": rev,
            "machine": f"{os.cpu_count()} CPUs, {_mem_gib():.0f} GiB, {platform.platform()}",
            "node_cpus": os.cpu_count(),  # both nodes run on this machine's CPUs
            "loadavg_start": os.getloadavg()[1],  # 5-minute: what else the machine ran
            "testbed": self.layout.name,
            "minutes": a.minutes,
            "ks": a.ks,
            "sequential": a.sequential,
            "concurrent": a.concurrent,
            "cull_users": a.cull_users,
            "real_memory": a.real_memory,
            "light_memory": a.light_memory,
            "partitions": PARTITIONS,
            "allowed_ram_space": slurmq.memory_enforcement(),
            "quick": a.quick,
            "hub_log": str(self.layout.logs / "hub.log"),
            "rounds": a.rounds,
            "note": a.note,
            "command": _command(),
            "prefix_uncompiled": startup.uncompiled(self.layout.env),
        }


def _command(argv: list[str] | None = None) -> str:
    """This run's command line as the page shows it: the testbed's name when not the default,
    no output paths (they choose only where the results go), the note as TEXT."""
    args, out, skip = list(sys.argv[1:] if argv is None else argv), [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("--results", "--docs"):
            skip = True
            continue
        if arg.startswith(("--results=", "--docs=")):
            continue
        out.append("TEXT" if i and args[i - 1] == "--note" else arg)
    name = os.environ.get("HPCHUB_TESTBED_NAME", "bench")
    base = os.environ.get("HPCHUB_TESTBED_PORT_BASE", "8500")
    prefix = "" if name == "bench" else f"BENCH_TESTBED_NAME={name} "
    prefix += "" if base == "8500" else f"BENCH_PORT_BASE={base} "
    return prefix + shlex.join(["bench/run", *out])


def _share(total: int, parts: int, i: int) -> int:
    """Part ``i`` of ``total`` split into ``parts`` near-equal whole parts."""
    return total // parts + (1 if i < total % parts else 0)


def _mem_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def add_breakdown(results: dict) -> None:
    """Where hpchub's sequential spawns spent their time, from the logs the run left."""
    meta = results["meta"]
    since = dt.datetime.fromisoformat(meta["started"]).timestamp()
    until = dt.datetime.fromisoformat(meta["finished"]).timestamp() if "finished" in meta else None
    hub_log = Path(meta.get("hub_log") or from_environ().logs / "hub.log")
    ctld_log = Path("/var/log/slurm/slurmctld.log")
    job_logs = Path(pwd.getpwnam("bench001").pw_dir) / ".hpchub" / "logs"
    if hub_log.exists() and ctld_log.exists() and job_logs.is_dir():
        results["breakdown"] = breakdown.breakdown(
            hub_log, ctld_log, job_logs, "bench001", since, until
        )


def scale_runs(path: Path | None) -> dict:
    """The scale runs by database (sqlite, postgresql) from ``path``."""
    if not path or not path.exists():
        return {}
    data = json.loads(path.read_text())
    return data.get("runs", {"sqlite": data} if data else {})


def scale_meta(args) -> dict:
    keys = (
        "scale_users", "scale_servers", "logins_per_min", "spawns_per_min", "scale_minutes",
        "quiet_minutes", "scale_memory", "restart_users", "restart_servers",
    )  # fmt: skip
    return {k: getattr(args, k) for k in keys}


def write_docs(results: dict, docs: Path, scale_file: Path | None = None) -> None:
    png = docs.parent / "benchmarks" / "benchmarks.png"
    # bench/slurm-rpcs's figures (Slurm 24.11, its own command and run), when it has run.
    rpcs_file = docs.parent / "benchmarks" / "slurm-rpcs.json"
    rpcs = json.loads(rpcs_file.read_text()) if rpcs_file.exists() else None
    report.plot(results, png)
    runs = scale_runs(scale_file)
    scale_runs_out = []
    for db, sc in runs.items():
        png_db = docs.parent / "benchmarks" / f"scale-{db}.png"
        if sc.get("scale"):
            report.scale_plot(sc, png_db)
        scale_runs_out.append(
            {
                "db": db,
                "sc": sc,
                "scale_table": report.scale_table(sc),
                "restart_table": report.restart_table(sc),
                "targets": report.scale_targets(sc),
                "png": str(png_db.relative_to(docs.parent)),
            }
        )
    # Restart-only runs after a change of the hub (each its own --scale-results file,
    # docs/benchmarks/restart-DB.json), shown below the full runs with their own command.
    restart_followups = [
        {"db": db, "sc": sc, "table": report.restart_table(sc), "file": f.name}
        for f in sorted((docs.parent / "benchmarks").glob("restart-*.json"))
        for db, sc in scale_runs(f).items()
    ]
    # Two scale runs of one size, before and after a change of the hub (each its own
    # --scale-results file): their churn windows side by side.
    compare = {}
    for label in ("before", "after"):
        part = scale_runs(docs.parent / "benchmarks" / f"scale-{label}.json")
        if part:
            compare[label] = {"db": next(iter(part)), "sc": next(iter(part.values()))}
    text = hubctl.render_bench(
        "benchmarks.md.j2",
        r=results,
        meta=results["meta"],
        spawn_table=report.spawn_table(results),
        load_table=report.load_table(results),
        cost_table=report.cost_table(results),
        cull_table=report.cull_table(results),
        targets_table=report.targets_table(results),
        targets=report.targets(results),
        at500=report.at_500(results),
        restart_followups=restart_followups,
        spawn_rows=report.spawn_rows(results),
        breakdown_table=report.breakdown_table(results),
        floor_table=report.floor_table(results),
        startup_table=report.startup_table(results),
        node_cpu_table=report.node_cpu_table(results),
        node_cpu_rows=report.node_cpu_rows(results),
        rpcs=rpcs,
        rpcs_table=report.rpcs_table(rpcs),
        quick_min=QUICK_MINUTES,
        png=str(png.relative_to(docs.parent)),
        scale_runs=scale_runs_out,
        compare=compare,
        compare_table=report.compare_table({k: v["sc"] for k, v in compare.items()})
        if len(compare) == 2
        else "",
    )
    docs.write_text(text)


def _smoke_verdict(results: dict, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    bad = smoke.problems(results)
    for line in bad:
        log(f"SMOKE FAILED: {line}")
    minutes = results["meta"]["runtime_min"]
    log(f"smoke run {'failed' if bad else 'passed'} in {minutes:.1f} min; results in {path}")
    return 1 if bad else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_only:
        results = json.loads(args.results.read_text())
        if "breakdown" not in results and os.geteuid() == 0:
            add_breakdown(results)
            args.results.write_text(json.dumps(results, indent=1) + "\n")
    else:
        if os.geteuid() != 0:
            raise SystemExit("bench/run must run as root (it starts the hub and resets sdiag)")
        t0 = time.monotonic()
        bench = Bench(args)
        if args.smoke:
            args.results = bench.paths.state / "smoke-results.json"
        results = bench.run()
        results["meta"]["runtime_min"] = (time.monotonic() - t0) / 60
        if args.smoke:
            return _smoke_verdict(results, args.results)
        scale_part = {k: results.pop(k) for k in ("scale", "restart") if k in results}
        if scale_part:
            scale_part["meta"] = dict(results["meta"], **scale_meta(args))
            db = bench.layout.db
            runs = scale_runs(args.scale_results)
            runs[db] = scale_part  # one run per database; the other's stays
            args.scale_results.parent.mkdir(parents=True, exist_ok=True)
            args.scale_results.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
            log(f"scale results in {args.scale_results}")
        if args.phases <= {"scale", "restart"}:
            # The scale run alone: the page keeps the last full run's figures beside it.
            results = json.loads(args.results.read_text())
        else:
            add_breakdown(results)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=1) + "\n")
            log(f"results in {args.results}")
    print(
        report.spawn_table(results),
        report.floor_table(results),
        report.startup_table(results),
        report.node_cpu_table(results),
        report.load_table(results),
        report.cost_table(results),
        report.cull_table(results),
        report.targets_table(results),
        sep="\n\n",
    )
    write_docs(results, args.docs, args.scale_results)
    log(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
