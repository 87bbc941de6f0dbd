"""Controller load and hub cost with K servers held running for M minutes."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from . import slurmq
from .hubapi import Hub, HubError
from .procstat import cpu_times, memory_kib

SETTLE_S = 35  # past the start-up polling of both spawners, before the window opens


def start_servers(make_hub, users: list[str], options: dict, workers: int = 10, log=print) -> None:
    """Start the servers of ``users`` (``workers`` requests at a time) and wait until all are up."""

    def one(user: str) -> str | None:
        h = make_hub()
        try:
            if h.start(user, options) == 202:
                h.wait_ready_event(user)
        except HubError as err:
            return f"{user}: {err}"
        return None

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        errors = [e for e in ex.map(one, users) if e]
    if errors:
        raise HubError(f"{len(errors)} servers did not start, e.g. {errors[0]}")
    log(f"  {len(users)} servers started in {time.monotonic() - t0:.0f} s")


def stop_servers(make_hub, users: list[str], workers: int = 10) -> None:
    hub = make_hub()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        list(ex.map(hub.stop, users))
    for u in users:
        with contextlib.suppress(HubError):
            hub.wait_stopped(u, timeout=120)
    if not slurmq.wait_no_jobs(users, timeout=120):
        slurmq.cancel_all(users)
        slurmq.wait_no_jobs(users, timeout=60)


def window(
    hub: Hub, hub_pid: int, users: list[str], hub_user: str, minutes: float, log=print
) -> dict:
    """Reset sdiag, hold for ``minutes``, and report RPCs, hub CPU and hub memory."""
    running = sum(1 for u in users if (hub.server(u) or {}).get("ready"))
    slurmq.sdiag_reset()
    reset_at = slurmq.sdiag().since
    cpu0 = cpu_times(hub_pid)
    t0 = time.monotonic()
    peak_rss = 0
    end = t0 + minutes * 60
    while time.monotonic() < end:
        rss, _hwm = memory_kib(hub_pid)
        peak_rss = max(peak_rss, rss)
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    st = slurmq.sdiag()
    cpu1 = cpu_times(hub_pid)
    elapsed = time.monotonic() - t0
    rss, hwm = memory_kib(hub_pid)
    peak_rss = max(peak_rss, rss)
    still = sum(1 for u in users if (hub.server(u) or {}).get("ready"))
    mine = st.users_total([hub_user, *users])
    result = {
        "k": len(users),
        "running_at_start": running,
        "running_at_end": still,
        "seconds": elapsed,
        "disturbed": st.since != reset_at,
        "rpc_total_all_users": st.total,
        "rpc_by_type_all_users": st.by_type,
        "rpc_by_user": st.by_user,
        "rpc_this_hub": mine,
        "rpc_this_hub_per_min": mine * 60 / elapsed,
        "rpc_all_per_min": st.total * 60 / elapsed,
        "hub_cpu_s": cpu1.own - cpu0.own,
        "hub_children_cpu_s": cpu1.children - cpu0.children,
        "hub_rss_peak_mib": peak_rss / 1024,
        "hub_vmhwm_mib": hwm / 1024,
    }
    log(
        f"  K={len(users)}: {result['rpc_this_hub_per_min']:.1f} RPC/min from this hub "
        f"({result['rpc_all_per_min']:.1f} all), hub CPU {result['hub_cpu_s']:.1f} s "
        f"+ children {result['hub_children_cpu_s']:.1f} s, peak RSS {result['hub_rss_peak_mib']:.0f} MiB"
        + (" [DISTURBED: sdiag was reset or slurmctld restarted]" if result["disturbed"] else "")
    )
    return result


def hold(
    make_hub,
    hub_pid: int,
    users: list[str],
    ks: list[int],
    options: dict,
    hub_user: str,
    minutes: float,
    log=print,
) -> list[dict]:
    """For each K (ascending): bring the running servers up to K, settle, measure a window."""
    hub = make_hub()
    results = []
    up = 0
    try:
        for k in sorted(ks):
            log(f"  starting servers {up + 1}..{k}")
            start_servers(make_hub, users[up:k], options, log=log)
            up = k
            time.sleep(SETTLE_S)
            res = window(hub, hub_pid, users[:k], hub_user, minutes, log=log)
            if res["disturbed"]:
                log("  the window was disturbed; measuring it once more")
                res = window(hub, hub_pid, users[:k], hub_user, minutes, log=log)
            results.append(res)
    finally:
        log(f"  stopping {up} servers")
        stop_servers(make_hub, users[:up])
    return results
