"""The benchmark's pure parts: sdiag and /proc parsers, statistics, tables, the stand-in."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import report, startup
from bench.procstat import job_cpu_seconds, parse_stat, parse_status_kib
from bench.sdiag import parse_sdiag
from bench.standin import port_and_prefix
from bench.stats import percentile, ratio, summary

DATA = Path(__file__).parent / "data"


def test_sdiag_counts_by_type_and_user():
    st = parse_sdiag((DATA / "sdiag.txt").read_text())
    assert st.since == 1795658715 and st.at == 1795658773
    assert st.by_type["REQUEST_JOB_INFO_SINGLE"] == 45
    assert st.by_type["REQUEST_PARTITION_INFO"] == 61
    assert st.by_user == {"jupyterhub-daemon": 163, "root": 14, "alice": 10}
    assert st.total == sum(st.by_type.values()) == 187
    assert st.users_total(["alice", "root", "nobody"]) == 24


def test_sdiag_rejects_other_text():
    with pytest.raises(ValueError):
        parse_sdiag("squeue: error: Unable to contact slurm controller")


def test_proc_stat_and_status():
    stat = "1234 (python3 (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 30 20 0 0"
    t = parse_stat(stat, ticks=100)
    assert (t.own, t.children) == (3.0, 0.5)
    status = "Name:\tpython3\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert parse_status_kib(status, "VmRSS") == 102400
    assert parse_status_kib(status, "VmSwap") == 0


def test_percentiles():
    assert percentile([3, 1, 2], 50) == 2
    assert percentile(list(range(1, 11)), 95) == pytest.approx(9.55)
    assert math.isnan(percentile([], 50))
    assert summary([1.0])["p95"] == 1.0
    assert math.isnan(ratio(1, 0))


def test_standin_takes_the_port_like_the_real_server():
    env = {
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:41234/user/a/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/a/",
    }
    assert port_and_prefix(["--SingleUserNotebookApp.default_url=/lab"], env) == (41234, "/user/a/")
    assert port_and_prefix(["--port=8490", "--any-prefix"], {}) == (8490, "/")
    with pytest.raises(SystemExit):
        port_and_prefix([], {})


def _timings(values):
    return [{"user": "u", "requested_status": 202, "proxy_ok": v, "hub_ready": v} for v in values]


def _window(k, rpc, cpu):
    return {
        "k": k,
        "seconds": 120.0,
        "running_at_start": k,
        "running_at_end": k,
        "disturbed": False,
        "rpc_total_all_users": rpc + 10,
        "rpc_by_type_all_users": {"REQUEST_JOB_INFO": rpc},
        "rpc_by_user": {},
        "rpc_this_hub": rpc,
        "rpc_this_hub_per_min": rpc / 2,
        "rpc_all_per_min": (rpc + 10) / 2,
        "hub_cpu_s": cpu,
        "hub_children_cpu_s": cpu / 2,
        "hub_rss_peak_mib": 150.0,
        "hub_vmhwm_mib": 160.0,
    }


RESULTS = {
    "meta": {},
    "spawn": {
        "floor": [1.0, 1.2, 1.1],
        "hpchub": {"sequential": _timings([1.8, 1.9, 2.0]), "concurrent": _timings([5, 6])},
        "batchspawner": {"sequential": _timings([3.0, 3.2, 3.4]), "concurrent": _timings([8, 9])},
    },
    "load": {
        "hpchub": [_window(10, 8, 1.0), _window(100, 8, 1.5)],
        "batchspawner": [_window(10, 120, 5.0), _window(100, 1200, 40.0)],
    },
}


def test_spawn_rows_ratio_and_overhead():
    seq, conc = report.spawn_rows(RESULTS)
    assert seq["hpchub"]["p50"] == 1.9 and seq["batchspawner"]["p50"] == 3.2
    assert seq["ratio_p50"] == pytest.approx(1.9 / 3.2)
    assert seq["overhead_p50"] == pytest.approx(0.8)
    assert conc["floor"] is None


def test_targets_verdicts():
    t = {x["target"]: x for x in report.targets(RESULTS)}
    assert t["spawn p50 ≤ 0.8 × batchspawner's (1 user, sequential)"]["met"] is True
    # An older run's single floor is the stock server's: 1.9 - 1.1 = 0.8 s above it.
    assert t["spawn p50 ≤ 0.5 s above hpchub's floor"]["met"] is False
    flat = t["hpchub's RPCs/min do not grow with K, ≤ 2/min at K = 100"]
    assert flat["met"] is False  # 4/min: more than 2, although flat
    assert "why" in flat


def test_tables_and_500_extrapolation():
    assert "| 1 user × sequential spawns |" in report.spawn_table(RESULTS)
    assert "| batchspawner 1.3.0 | 100 |" in report.load_table(RESULTS)
    at = report.at_500(RESULTS)
    assert at["hpchub"]["rpc_per_min"] == pytest.approx(4.0)
    assert at["batchspawner"]["rpc_per_min"] == pytest.approx(3000)  # 6 per server


HUB_LOG = """\
[I 2026-11-26 02:30:06.286 JupyterHub slurm:352] Submitted job 460 for bench001
[I 2026-11-26 02:30:12.653 JupyterHub callback:68] Job 460 of bench001 listens on port 46492
[I 2026-11-26 02:30:12.713 JupyterHub base:1192] User bench001 took 6.548 seconds to start
[I 2026-11-26 02:30:38.277 JupyterHub slurm:352] Submitted job 481 for bench001
[I 2026-11-26 02:30:38.343 JupyterHub slurm:352] Submitted job 482 for bench014
[I 2026-11-26 02:30:44.000 JupyterHub callback:68] Job 481 of bench001 listens on port 40000
[I 2026-11-26 02:30:44.100 JupyterHub base:1192] User bench001 took 5.9 seconds to start
"""
CTLD_LOG = """\
[2026-11-26T02:30:06.280] _slurm_rpc_submit_batch_job: JobId=460 InitPrio=4294901300 usec=378
[2026-11-26T02:30:07.101] sched: Allocate JobId=460 NodeList=vm #CPUs=1 Partition=jupyter-short
"""


def test_breakdown_of_a_lone_spawn(tmp_path):
    from bench.breakdown import breakdown, hub_spawns

    # Job 481 started together with another user's: not a lone spawn.
    assert list(hub_spawns(HUB_LOG, "bench001")) == ["460"]
    (tmp_path / "hub.log").write_text(HUB_LOG)
    (tmp_path / "ctld.log").write_text(CTLD_LOG)
    (tmp_path / "jupyter-460.log").write_text(
        "[I 2026-11-26 02:30:12.488 ServerApp] Jupyter Server 2.21.1 is running at:\n"
    )
    b = breakdown(tmp_path / "hub.log", tmp_path / "ctld.log", tmp_path, "bench001", 0)
    assert b["schedule"]["p50"] == pytest.approx(0.815, abs=1e-3)
    assert b["launch_and_jupyter"]["p50"] == pytest.approx(5.387, abs=1e-3)
    assert b["report"]["p50"] == pytest.approx(0.165, abs=1e-3)
    assert b["route"]["p50"] == pytest.approx(0.060, abs=1e-3)


HUB_LOG_KV = """\
[I 2026-11-30 10:17:52.621 JupyterHub slurm:276] job submitted user=bench001 server="" job=1552 profile=bench-real partitions=jupyter-short
[I 2026-11-30 10:17:54.495 JupyterHub callback:81] port reported user=bench001 server="" job=1552 port=43119
[I 2026-11-30 10:17:54.518 JupyterHub base:1192] User bench001 took 1.963 seconds to start
[I 2026-11-30 10:17:55.000 JupyterHub slurm:276] job submitted user=bench001 server="" job=1553 profile=bench-real
[I 2026-11-30 10:17:55.100 JupyterHub slurm:276] job submitted user=bench002 server="" job=1554 profile=bench-real
"""


def test_breakdown_reads_the_hubs_key_value_lines():
    from bench.breakdown import hub_spawns

    got = hub_spawns(HUB_LOG_KV, "bench001")
    assert list(got) == ["1552"]  # 1553 never reported (and had company)
    assert got["1552"]["reported"] - got["1552"]["submitted"] == pytest.approx(1.874, abs=1e-3)


def test_standin_serves_on_the_socket_hpchubs_launcher_holds(monkeypatch):
    """Under hpchub the launcher holds the port; the stand-in adopts it, as the real server does."""
    import socket
    import threading
    import urllib.request

    from bench.standin import make_handler, serve

    held = socket.create_server(("127.0.0.1", 0))
    port = held.getsockname()[1]
    monkeypatch.setenv("HPCHUB_LISTEN_FD", str(held.detach()))  # the stand-in owns it now
    server = serve(port, make_handler("/user/a/", "now"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/user/a/api/status") as r:  # noqa: S310
            assert r.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_answers_probes_from_another_loopback_address():
    import socket

    from bench.spawn import answers

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not answers(port)
        s.listen()
        assert answers(port)


FLOORS = {
    **RESULTS,
    "meta": {"concurrent": 2, "node_cpus": 2},
    "spawn": {
        **RESULTS["spawn"],
        "floors": {
            "stock": [{"wall": 3.0, "cpu": 2.8}, {"wall": 3.2, "cpu": 3.0}],
            "hpchub": [{"wall": 1.9, "cpu": 1.7}, {"wall": 2.0, "cpu": 1.8}],
        },
        "hpchub": {
            "sequential": _timings([2.2, 2.3, 2.4]),
            "concurrent": [
                {**t, "node_cpu_s": c} for t, c in zip(_timings([5, 6]), [2.0, 2.2], strict=True)
            ],
        },
    },
}


def test_both_floors_and_their_targets():
    seq = report.spawn_rows(FLOORS)[0]
    assert seq["floor"]["p50"] == pytest.approx(1.95)  # hpchub's floor
    assert seq["stock_floor"]["p50"] == pytest.approx(3.1)
    assert seq["overhead_p50"] == pytest.approx(0.35)
    t = {x["target"]: x for x in report.targets(FLOORS)}
    assert t["spawn p50 ≤ 0.5 s above hpchub's floor"]["met"] is True
    cut = t["hpchub's floor p50 ≥ 30% below stock jupyterhub-singleuser's"]
    assert cut["met"] is True and "-37%" in cut["measured"]
    table = report.floor_table(FLOORS)
    assert "| stock `jupyterhub-singleuser` | 2 | 3.10 / 3.19 | 2.90 / 2.99 | +0% (+0%) |" in table
    assert "-37% (-40%)" in table


def test_node_cpu_per_start_and_the_machines_bound():
    (row,) = report.node_cpu_rows(FLOORS)
    assert row["variant"] == "hpchub" and row["mean"] == pytest.approx(2.1)
    assert row["machine_bound_s"] == pytest.approx(2 * 2.1 / 2)
    assert "| hpchub | 2 |" in report.node_cpu_table(FLOORS)
    assert report.node_cpu_table(RESULTS) == "_not measured in this run_"


SERVER_LOG = """import time: self [us] | cumulative | imported package
import time:    120000 |     130000 |         rfc3987_syntax.syntax_helpers
import time:      2000 |     132000 |       rfc3987_syntax
import time:     50000 |      50000 |   jupyter_server.serverapp
[D 2026-11-30 10:04:20.328 ServerApp] Extension package jupyter_lsp took 0.0789s to import
[I 2026-11-30 10:04:24.700 ServerApp] notebook_shim | extension was successfully linked.
[I 2026-11-30 10:04:24.792 ServerApp] notebook_shim | extension was successfully loaded.
[I 2026-11-30 10:04:25.434 ServerApp] nbdime | extension was successfully loaded.
[I 2026-11-30 10:04:25.500 ServerApp] Jupyter Server 2.21.1 is running at:
"""


def test_startup_profile_of_a_server_log():
    p = startup.profile(SERVER_LOG)
    assert p["imports"]["top"] == {"rfc3987_syntax": 0.122, "jupyter_server": 0.05}
    assert p["imports"]["total"] == pytest.approx(0.172)
    assert p["extension_import"] == {"jupyter_lsp": 0.0789}
    assert p["extension_load"]["notebook_shim"] == pytest.approx(0.092, abs=1e-6)
    assert p["extension_load"]["nbdime"] == pytest.approx(0.642, abs=1e-6)
    assert p["first_line_to_serving"] == pytest.approx(5.172, abs=1e-6)
    res = {"spawn": {"startup": {"stock": [{"wall": 3.0, "cpu": 2.0, "profile": p}]}}}
    assert "| import `rfc3987_syntax` (own time) | 0.12 |" in report.startup_table(res)


def test_uncompiled_files_of_a_prefix(tmp_path):
    sp = tmp_path / "lib/python3.11/site-packages/pkg"
    sp.mkdir(parents=True)
    (sp / "a.py").write_text("")
    (sp / "b.py").write_text("")
    import py_compile

    py_compile.compile(str(sp / "a.py"))
    assert startup.uncompiled(tmp_path) == {"py_files": 2, "without_pyc": 1}


def test_job_cpu_from_cgroup_v1_and_v2(tmp_path):
    v1 = tmp_path / "v1/cpuacct/slurm_vm/uid_1001/job_42"
    v1.mkdir(parents=True)
    (v1 / "cpuacct.usage").write_text("2500000000\n")
    assert job_cpu_seconds("42", tmp_path / "v1") == pytest.approx(2.5)
    assert job_cpu_seconds("43", tmp_path / "v1") is None
    v2 = tmp_path / "v2/system.slice/slurmstepd.scope/job_7"
    v2.mkdir(parents=True)
    (tmp_path / "v2/cgroup.controllers").write_text("cpu memory\n")
    (v2 / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    assert job_cpu_seconds("7", tmp_path / "v2") == pytest.approx(1.5)


def test_rpcs_table_with_a_missing_form():
    rpcs = {
        "meta": {"poll_interval_s": 30.0},
        "forms": {
            "classic": {
                "argv": ["squeue", "--jobs=ID,..."],
                "rpcs_per_call": 2.0,
                "by_type_per_call": {"REQUEST_JOB_INFO": 1.0, "REQUEST_PARTITION_INFO": 1.0},
                "controller_ms_per_call": 2.1,
                "rpcs_per_min": 4.0,
                "client_cpu_ms_per_call": 30.0,
                "output_bytes": 4000,
            },
            "json": {"argv": ["squeue", "--json"], "error": ["squeue: unrecognized option"]},
        },
    }
    table = report.rpcs_table(rpcs)
    assert (
        "| `squeue --jobs=ID,...` | 2.00 (JOB_INFO 1.00, PARTITION_INFO 1.00) | 2.10 | 4.0 |"
        in table
    )
    assert "not available: squeue: unrecognized option" in table
    assert report.rpcs_table(None).startswith("_not measured")


def test_a_floor_start_whose_port_was_taken_is_recognised(tmp_path):
    from bench.spawn import _port_taken

    log = tmp_path / "floor.log"
    log.write_text(
        "[I 2026-11-30 10:30:27.442 AdoptingServerApp] The port 44525 is already in use.\n"
        "[C 2026-11-30 10:30:27.442 AdoptingServerApp] ERROR: the Jupyter server could not be "
        "started because port 44525 is not available.\n"
        # A profiled start goes on logging its language-server search after the error.
        + "[D 2026-11-30 11:34:42.543 AdoptingServerApp] Checking for /usr/node_modules/x\n"
        * 500
    )
    assert _port_taken(log, 44525) is True
    assert _port_taken(log, 44526) is False


def _scale_results(spawn_failures=0, api_p95=0.2, quiet=(4.0, 4.0), ready_s=6.0, lost=0):
    s = {"n": 10, "p50": 0.1, "p95": api_p95, "min": 0.01, "max": 1.0}
    return {
        "scale": {
            "quiet": [
                {"servers": 100, "rpc_per_min": quiet[0], "hub_cpu_s_per_min": 1.0,
                 "disturbed": False},
                {"servers": 500, "rpc_per_min": quiet[1], "hub_cpu_s_per_min": 2.0,
                 "disturbed": False},
            ],
            "churn": {
                "users": 2000, "servers_at_end": 500, "minutes": 10.0, "logins": 2000,
                "login_failures": 0, "login_s": s, "spawns": 500,
                "spawn_failures": spawn_failures, "spawn_s": s, "api_requests": 2400,
                "api_failures": 0, "api_s": s, "hub_cpu_pct": 40.0, "hub_children_cpu_s": 30.0,
                "hub_rss_peak_mib": 300.0, "proxy_rss_peak_mib": 90.0,
                "rpc_this_hub_per_min": 400.0, "rpc_all_per_min": 500.0, "disturbed": False,
            },
        },
        "restart": {
            "users": 5000, "servers": 1000, "answers_s": 5.0, "routes_s": ready_s,
            "now_running_s": ready_s, "ready_s": ready_s, "ready_after": 1000 - lost,
            "lost": lost, "rpc_this_hub": 2,
        },
    }  # fmt: skip


def test_scale_targets_met_and_missed():
    met = {t["target"]: t["met"] for t in report.scale_targets(_scale_results())}
    assert all(met.values()) and len(met) == 4
    missed = report.scale_targets(
        _scale_results(spawn_failures=1, api_p95=0.7, quiet=(4.0, 40.0), ready_s=12.0, lost=3)
    )
    assert not any(t["met"] for t in missed)
    assert "700 ms" in missed[1]["measured"] and "3 lost" in missed[3]["measured"]


def test_scale_and_restart_tables():
    sc = _scale_results()
    assert "| 2000 / 500 |" in report.scale_table(sc)
    assert "quiet window, 500 servers" in report.scale_table(sc)
    assert "| 5000 / 1000 | 5.00 | 6.00 | 6.00 | 1000 (0 lost) | 2 |" in report.restart_table(sc)
    assert report.scale_table({}) == report.restart_table({}) == "_not measured yet_"


def test_smoke_verdict_of_the_scale_run():
    from bench import smoke

    assert smoke.scale_problems(_scale_results()) == []
    bad = _scale_results(spawn_failures=2, lost=1)
    assert len(smoke.scale_problems(bad)) == 2
    assert smoke.scale_problems({}) == ["scale: no churn window was measured",
                                       "restart: no restart was measured"]  # fmt: skip


def test_scale_run_names_are_its_own():
    from bench import restart, scale

    assert scale.account_names(2) == ["hpcbs0001", "hpcbs0002"]
    assert restart.hub_names(1) == ["hpcbr0001"]
    assert scale.scale_profile("8M")["partitions"] == ["hpchub-bench"]


def test_rpc_meter_adds_up_across_someone_elses_reset():
    from bench.sdiag import RpcStats
    from bench.slurmq import RpcMeter

    m = object.__new__(RpcMeter)
    m.by_user, m.by_type, m.resets = {}, {}, 0
    m._last = RpcStats(1, 100, {"JOB_INFO": 10}, {"hub": 10})
    m._add(RpcStats(2, 100, {"JOB_INFO": 14}, {"hub": 14}))  # +4
    m._add(RpcStats(3, 200, {"JOB_INFO": 3}, {"hub": 3}))  # reset by another: +3
    m._add(RpcStats(4, 200, {"JOB_INFO": 5}, {"hub": 5, "x": 1}))  # +2, x +1
    assert m.users_total(["hub"]) == 9 and m.total == 9 and m.resets == 1
