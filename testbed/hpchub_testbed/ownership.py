"""The testbed only touches a machine it set up itself.

`up` overwrites /etc/slurm/slurm.conf, the site file and a sudoers file, and creates demo users
with passwords: on a real hub node that would take the cluster down. Before it writes anything,
each such file that exists must be one the testbed wrote (its header says so), or this
testbed's marker must be there from an earlier `up`.
"""

from __future__ import annotations

from pathlib import Path

from hpchub.core.files import atomic_write

from .layout import Layout

SLURM_HEADER = "# Written by `hpchub testbed up`"
"""The first line of the testbed's slurm.conf (the command's old name, kept: a change to
slurm.conf restarts slurmctld under every testbed on the machine)."""
SITE_HEADER = "# Site file written by `hpchub testbed up`"
"""The first line of the testbed's site file."""


def _starts_with(path: Path, header: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().startswith(header)
    except OSError:
        return False


def foreign_files(layout: Layout) -> list[Path]:
    """Files `up` would overwrite that the testbed did not write."""
    found = []
    for name in ("slurm.conf", "gres.conf"):
        conf = layout.slurm_etc / name
        if conf.exists() and not _starts_with(conf, SLURM_HEADER):
            found.append(conf)
    if not layout.marker.exists():
        site_is_ours = _starts_with(layout.site_file, SITE_HEADER)
        if layout.site_file.exists() and not site_is_ours:
            found.append(layout.site_file)
        if layout.sudoers_file.exists() and not site_is_ours:
            found.append(layout.sudoers_file)
    return found


def refusal(layout: Layout) -> str | None:
    """One line saying why the testbed will not touch this machine, or None."""
    found = foreign_files(layout)
    if not found:
        return None
    names = ", ".join(str(p) for p in found)
    return (
        f"refusing to touch this machine: the testbed did not write {names} (a real cluster "
        "or hub?); run it only on a development machine that it set up itself"
    )


def claim(layout: Layout) -> None:
    """Mark this testbed's files as its own (after `refusal` found nothing foreign)."""
    layout.state.mkdir(parents=True, exist_ok=True)
    if not layout.marker.exists():
        atomic_write(
            layout.marker,
            f"hpchub-testbed {layout.hub_name} owns {layout.etc} and {layout.sudoers_file}\n",
            0o644,
        )
