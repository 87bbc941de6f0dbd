"""Render the spawn form's fields (HTML, autoescaped) from the catalog and the live state."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.apps import APP_TITLES
from ..config.profiles import CUSTOM_KEY
from ..config.units import format_duration, format_memory
from ..core.templates import render
from ..resources.catalog import Catalog
from ..resources.reservations import ReservationOffer
from ..slurm.livestate import Snapshot
from ..slurm.parsers import PartitionState, UserAccounts


@dataclass(frozen=True)
class LiveLine:
    text: str
    css: str = ""


def _live_lines(partitions: list[str], snap: Snapshot, gpus: bool = False) -> list[LiveLine]:
    """'jupyter-short: 6 CPUs, 5G free, 0 waiting' per partition, first one first (``gpus``:
    with the GPUs free, by type)."""
    if not snap.available:
        return []
    out = []
    for i, name in enumerate(partitions):
        p = snap.partitions.get(name)
        if p is None:
            continue
        role = "" if i == 0 else " (overflow, used when full)"
        busy = p.memory_free == 0 or p.pending > 0
        waiting = f"{p.pending} waiting" if p.pending else "no queue"
        out.append(
            LiveLine(
                f"{name}{role}: {format_memory(p.memory_free) if p.memory_free else 'no'} memory free, "
                f"{waiting}{_gpu_note(p) if gpus else ''}",
                "busy" if busy else "",
            )
        )
    return out


def _gpu_note(p: PartitionState) -> str:
    """', 1 of 2 tesla GPUs free' for a partition with GPUs (by type), else ''."""
    return "".join(
        f", {p.gpus_free(kind)} of {total} {kind + ' ' if kind else ''}GPUs free"
        for kind, total in sorted(p.gpus.items())
    )


def _gpu_choices(catalog: Catalog, snap: Snapshot, previous: dict) -> dict | None:
    """The custom server's GPU fields: the types the custom partitions have (from Slurm's
    GRES) and, per partition, the most one server may have; None when the site offers none."""
    c = catalog.custom
    if not c.max_gpus:
        return None
    caps, types = [], set()
    for name in c.partitions:
        site_cap = catalog.partitions[name].max_gpus
        part = snap.partitions.get(name)
        if site_cap == 0 or (snap.available and (part is None or not part.gpus)):
            continue
        cap = min(c.max_gpus, site_cap if site_cap is not None else c.max_gpus)
        if part is not None and part.gpus:
            cap = min(cap, part.node_gpus_any)
            types |= {k for k in part.gpus if k}
            kinds = ", ".join(
                f"{min(cap, n)} {k or 'untyped'} ({part.gpus_free(k)} free now)"
                for k, n in sorted(part.node_gpus.items())
            )
            caps.append(f"{name}: up to {kinds}")
        else:
            caps.append(f"{name}: up to {cap}")
    if not caps:
        return None
    return {
        "types": sorted(types),
        "caps": "; ".join(caps),
        "max": c.max_gpus,
        "type": previous.get("gpu_type", ""),
    }


def _idle_rule_text(catalog: Catalog) -> str:
    parts = []
    for rule in catalog.custom.idle_timeouts:
        if rule.max_memory is None:
            parts.append(f"more: {format_duration(rule.idle_timeout)}")
        else:
            parts.append(
                f"up to {format_memory(rule.max_memory)}: {format_duration(rule.idle_timeout)}"
            )
    return "; ".join(parts)


def _account_choices(accounts: UserAccounts | None, previous: dict) -> dict | None:
    """The user's accounts, the last one chosen (else Slurm's default) selected, each with its
    fair share or usage where Slurm reports them; None when there is nothing to choose."""
    if accounts is None or not accounts.accounts:
        return None
    current = previous.get("account")
    if current not in accounts.accounts:
        current = accounts.default if accounts.default in accounts.accounts else None
    options = []
    for name in accounts.accounts:
        share = accounts.shares.get(name)
        notes = []
        if name == accounts.default:
            notes.append("your default")
        if share is not None and share.fair_share:
            notes.append(f"fair share {share.fair_share:.2f}")
        if share is not None and share.raw_usage:
            notes.append(f"used {share.raw_usage / 3600:.1f} CPU-hours recently")
        label = name + (f" ({', '.join(notes)})" if notes else "")
        options.append({"name": name, "label": label})
    return {"options": options, "current": current or accounts.accounts[0]}


def _app_choices(apps: tuple[str, ...], previous: dict) -> dict | None:
    """The apps the site offers, the last one chosen selected; None when JupyterLab is all."""
    if len(apps) < 2:
        return None
    current = previous.get("app")
    options = [{"name": a, "label": APP_TITLES[a]} for a in apps]
    return {"options": options, "current": current if current in apps else apps[0]}


def _when(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def _maintenance_lines(res: ReservationOffer) -> list[str]:
    lines = []
    for m in res.maintenance:
        r = m.reservation
        if m.fits_seconds <= 0:
            lines.append(
                f"Maintenance is under way until {_when(r.end)}: new servers start after it."
            )
            continue
        lines.append(
            f"Maintenance on the Jupyter nodes from {_when(r.start)} to {_when(r.end)}. A server "
            f"started now can run for at most {format_duration(m.fits_seconds)} before it; one "
            "with a longer time limit waits in the queue until the maintenance is over."
        )
    return lines


def _reservation_choices(res: ReservationOffer, previous: dict) -> dict | None:
    """Reservations open to the user (a course lab's, say), the last one chosen, else the
    first, selected; None when there is none."""
    if not res.usable:
        return None
    current = previous.get("reservation")
    if current not in res.names:
        current = res.names[0]
    options = [
        {
            "name": r.name,
            "label": f"{r.name} (until {_when(r.end)}: a server in it ends with it, "
            f"{format_duration(res.left_seconds.get(r.name, 0))} from now)",
        }
        for r in res.usable
    ]
    return {"options": options, "current": current}


def render_form(
    catalog: Catalog,
    user: str,
    groups: set[str],
    snap: Snapshot,
    previous: dict | None = None,
    course_labels: dict[str, str] | None = None,
    accounts: UserAccounts | None = None,
    reservations: ReservationOffer | None = None,
) -> str:
    """The form fields, prefilled with ``previous`` (the user's last or rejected choice)."""
    previous = dict(previous or {})
    course_labels = course_labels or {}
    reservations = reservations or ReservationOffer()
    fits = reservations.fits_seconds()
    visible = catalog.visible(user, groups)  # the user's course profiles come first
    choices = [
        {
            "key": p.key,
            "display_name": p.display_name,
            "description": p.description,
            "memory": format_memory(p.memory),
            "cpus": p.cpus,
            "gpus": p.gpus,
            "gpu_type": p.gpu_type,
            "time": format_duration(p.time),
            "idle": format_duration(p.idle_timeout),
            "live": _live_lines(list(p.partitions), snap, bool(p.gpus))
            + (
                [LiveLine("waits until after the maintenance (longer than the time left)", "busy")]
                if fits is not None and p.time > fits and not p.reservation
                else []
            ),
            "course": course_labels.get(p.key, ""),
        }
        for p in visible
    ]
    keys = [c["key"] for c in choices]
    custom = None
    if catalog.custom_allowed(user, groups):
        c = catalog.custom
        keys.append(CUSTOM_KEY)
        parts = []
        for name in c.partitions:
            gpus = bool(c.max_gpus) and catalog.partitions[name].max_gpus != 0
            live = _live_lines([name], snap, gpus)
            parts.append(
                {
                    "name": name,
                    "label": name + (f" ({live[0].text.split(': ', 1)[1]})" if live else ""),
                }
            )
        custom = {
            "partitions": parts,
            "max_memory": format_memory(c.max_memory),
            "max_cpus": c.max_cpus,
            "max_time": format_duration(c.max_time),
            "gpu": _gpu_choices(catalog, snap, previous),
            "idle_rule": _idle_rule_text(catalog),
            "current": {
                "partition": previous.get("partition", c.partitions[0]),
                "memory": previous.get("memory", format_memory(c.default_memory)),
                "cpus": previous.get("cpus", c.default_cpus),
                "time": previous.get(
                    "time",
                    format_duration(
                        c.default_time if not fits or fits >= c.default_time else fits // 60 * 60
                    ),
                ),
                "gpus": previous.get("gpus", 0),
            },
        }
    selected = previous.get("profile")
    if selected not in keys:
        selected = keys[0] if keys else None
    return render(
        "form/options.html.j2",
        choices=choices,
        custom=custom,
        selected=selected,
        live=snap,
        apps=_app_choices(catalog.apps, previous),
        account=_account_choices(accounts, previous),
        reservation=_reservation_choices(reservations, previous),
        maintenance=_maintenance_lines(reservations),
    )
