"""The benchmark's pure parts: sdiag and /proc parsers, statistics, tables, the stand-in."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import report
from bench.procstat import parse_stat, parse_status_kib
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
    assert t["spawn p50 ≤ 1 s above the floor"]["met"] is True
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
