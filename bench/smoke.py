"""`bench/run --smoke`: every phase once and small (a few minutes), and a verdict.

It runs the same code as the full benchmark, so CI fails when the benchmark breaks (it rotted
twice unnoticed when nothing ran it). It measures nothing worth publishing: its results go to
the bench state folder, never to docs/benchmarks.md.
"""

from __future__ import annotations

SIZES = {
    "sequential": 1,
    "rounds": 1,
    "concurrent": 1,
    "ks": [2],
    "minutes": 0.25,
    "cull_users": 20,
    "scale_users": 8,
    "scale_servers": 4,
    "logins_per_min": 30,
    "spawns_per_min": 12,
    "scale_minutes": 0.5,
    "quiet_minutes": 0.25,
    "restart_users": 20,
    "restart_servers": 5,
}
"""One spawn each for hpchub and batchspawner, one small K, a small culling pass, and the
scale run and the restart with a handful of users and servers."""


def apply(args) -> None:
    """Shrink the run to the smoke sizes (whatever else was asked)."""
    for key, value in SIZES.items():
        setattr(args, key, value)
    args.phases = {"spawn", "load", "cull", "scale", "restart"}
    args.variants = ["hpchub", "batchspawner"]


def problems(results: dict) -> list[str]:
    """What went wrong in a smoke run, one line each; empty when every phase did its job."""
    out = []
    spawns = results.get("spawn", {})
    for variant in ("hpchub", "batchspawner"):
        runs = spawns.get(variant, {})
        timings = [*runs.get("sequential", []), *runs.get("concurrent", [])]
        if not timings:
            out.append(f"spawn: no spawn of {variant} was measured")
        for t in timings:
            if t.get("error") or t.get("proxy_ok") is None:
                out.append(f"spawn: {variant} for {t.get('user')}: {t.get('error') or 'never up'}")
        windows = results.get("load", {}).get(variant) or []
        if not windows:
            out.append(f"load: no window was measured for {variant}")
        for w in windows:
            if w["running_at_start"] != w["k"]:
                out.append(f"load: {variant} had {w['running_at_start']} of {w['k']} servers up")
    floors = spawns.get("floors", {})
    for name in ("stock", "hpchub"):
        if not floors.get(name):
            out.append(f"spawn: the {name} server's floor was not measured")
    cull = results.get("cull")
    if not cull:
        out.append("cull: no culling pass was measured")
    elif cull["wrong_decisions"] or cull["culled"] != cull["expected_culls"]:
        out.append(
            f"cull: culled {cull['culled']} of {cull['expected_culls']} expected, "
            f"{cull['wrong_decisions']} wrong decisions"
        )
    out += scale_problems(results)
    return out


def scale_problems(results: dict) -> list[str]:
    """What went wrong in the scale run and the restart (smoke sizes or full)."""
    out = []
    churn = (results.get("scale") or {}).get("churn")
    if not churn:
        out.append("scale: no churn window was measured")
    else:
        if not churn["logins"] or churn["login_failures"]:
            out.append(f"scale: {churn['login_failures']} of {churn['logins']} logins failed")
        if not churn["spawns"] or churn["spawn_failures"]:
            out.append(f"scale: {churn['spawn_failures']} of {churn['spawns']} spawns failed")
        if not churn["api_requests"] or churn["api_failures"]:
            out.append(f"scale: {churn['api_failures']} API requests failed")
    r = results.get("restart")
    if not r:
        out.append("restart: no restart was measured")
    elif r["lost"] or r["ready_s"] is None or r["routes_s"] is None:
        out.append(f"restart: {r['lost']} of {r['servers']} servers lost, routes {r['routes_s']}")
    return out
