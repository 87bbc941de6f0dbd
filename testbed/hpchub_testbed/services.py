"""Start the hub and the proxy the way systemd would: from their rendered unit files.

There is no systemd on the test bed, so the unit's own ExecStart, User, Environment,
EnvironmentFile, WorkingDirectory, StandardOutput and UMask are read and honoured here.
"""

from __future__ import annotations

import dataclasses
import grp
import pwd
from pathlib import Path

from hpchub.deploy.units import ServiceSpec, UnitError, parse_service, service_environment

from . import procs


def spec_of(unit: Path) -> ServiceSpec:
    """The unit's service, checked for what this launcher can honour."""
    spec = parse_service(unit.read_text())
    if spec.user is None or spec.stdout_append is None:
        raise UnitError(f"{unit}: needs User= and StandardOutput=append:")
    for group in spec.supplementary_groups:
        # runuser gives the user their groups from /etc/group, as systemd's User= does.
        if spec.user not in grp.getgrnam(group).gr_mem:
            raise UnitError(f"{unit}: {spec.user} is not in group {group}")
    return spec


def start_unit(
    name: str, unit: Path, run_dir: Path, user: str | None = None, netns: Path | None = None
) -> int:
    """Start the unit's process (as its user, or ``user``; in ``netns``, the hub's host, if
    given) unless it runs; its pid."""
    spec = spec_of(unit)
    if user is not None:
        spec = dataclasses.replace(spec, user=user)
    pwd.getpwnam(spec.user or "")
    return procs.start(
        name,
        spec.argv,
        run_dir,
        Path(spec.stdout_append or "/dev/null"),
        user=spec.user,
        env=service_environment(spec),
        cwd=spec.working_directory,
        umask=spec.umask if spec.umask is not None else -1,
        netns=netns,
    )
