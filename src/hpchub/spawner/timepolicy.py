"""Time left and what the Extend button may add: the site's policy as pure functions.

Read by the home page (``reporting.py``) and the REST endpoint (``timeleft.py``).
"""

from __future__ import annotations

from ..config.timelimit import ExtendSettings
from ..config.units import format_duration, parse_duration_seconds
from ..core import clock
from .progress import ends_at


def extension_refusal(
    asked_s: int,
    limit_s: int,
    extended_s: int,
    policy: ExtendSettings,
    partition: str,
    allowed: list[str],
    cap_s: int | None,
) -> str | None:
    """Why adding ``asked_s`` to a job's limit of ``limit_s`` is refused, naming the rule
    (None when it fits the site's policy)."""
    f = format_duration
    if not policy.enabled:
        return "this hub does not extend time limits (time.extend.enabled is off)"
    if partition not in allowed:
        return f"jobs in partition {partition} cannot be extended; only in {', '.join(allowed)}"
    if asked_s < 60 or asked_s % 60:
        return f"ask for whole minutes, at least 1m; you asked {f(asked_s)}"
    if asked_s > policy.max_per_extension:
        return f"at most {f(policy.max_per_extension)} per extension; you asked {f(asked_s)}"
    left = policy.max_total - extended_s
    if left <= 0:
        return f"your server has used its {f(policy.max_total)} of extensions"
    if asked_s > left:
        return (
            f"your server has {f(left)} of extensions left (of {f(policy.max_total)}); "
            f"you asked {f(asked_s)}"
        )
    if cap_s is not None and limit_s + asked_s > cap_s:
        room = max(0, cap_s - limit_s)
        return (
            f"partition {partition} allows at most {f(cap_s)} in all; your server's limit is "
            f"{f(limit_s)}, so at most {f(room)} more; you asked {f(asked_s)}"
        )
    return None


def allowed_partitions(spawner) -> list[str]:
    """Where the site lets jobs be extended."""
    ext = spawner.site.time.extend
    return list(ext.partitions or [p.name for p in spawner.site.slurm.partitions])


def site_cap(spawner, partition: str) -> int | None:
    """The site's max_time of ``partition`` in seconds (None if it sets none)."""
    try:
        return spawner.site.slurm.partition(partition).max_time
    except KeyError:
        return None


def time_info(spawner, cap_s: int | None = None) -> dict:
    """What the status bar and the home page show: the end, what is left, what may be added."""
    t = spawner.site.time
    out: dict = {
        "job_id": spawner.job_id,
        "running": False,
        "warn_before_s": sorted(t.warn_before, reverse=True),
        "queue_notice_after_s": t.queue_notice_after,
    }
    if not spawner.job_id:
        return out
    st = spawner.monitor.status(spawner.job_id)
    info = st.info
    out["state"] = st.state
    if st.state != "RUNNING" or info is None:
        return out
    try:
        limit_s = parse_duration_seconds(info.time_limit)
    except (TypeError, ValueError):
        return out
    end = ends_at(info.start_time, f"{limit_s // 60}")
    if end is None:
        return out
    end_s = end.timestamp()
    if cap_s is None:
        cap_s = site_cap(spawner, info.partition)
    ext = t.extend
    step_refusal = extension_refusal(
        ext.step,
        limit_s,
        spawner.extended_s,
        ext,
        info.partition,
        allowed_partitions(spawner),
        cap_s,
    )
    out.update(
        running=True,
        partition=info.partition,
        end=end_s,
        left_s=max(0, int(end_s - clock.now())),
        limit_s=limit_s,
        extended_s=spawner.extended_s,
        extend={
            "enabled": ext.enabled,
            "step_s": ext.step,
            "step": format_duration(ext.step),
            "left": format_duration(max(0, ext.max_total - spawner.extended_s)),
            "max_per_extension_s": ext.max_per_extension,
            "max_total_s": ext.max_total,
            "left_s": max(0, ext.max_total - spawner.extended_s),
            "refusal": step_refusal,
        },
    )
    return out
