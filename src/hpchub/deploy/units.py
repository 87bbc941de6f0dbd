"""Read a systemd service unit: what it runs, as whom, with which environment.

Machines without systemd (containers, the test bed) start the services from these very
files, and `hpchub doctor` finds the running processes by their command lines.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path


class UnitError(ValueError):
    """The unit file cannot be run without systemd (or is not a service unit)."""


@dataclass(frozen=True)
class ServiceSpec:
    """The parts of a [Service] section that decide how its process is started."""

    argv: tuple[str, ...]
    user: str | None = None
    working_directory: str = "/"
    environment: dict[str, str] = field(default_factory=dict)
    environment_files: tuple[str, ...] = ()
    stdout_append: str | None = None
    supplementary_groups: tuple[str, ...] = ()
    umask: int | None = None


def sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """Section name -> [(key, value)] in order (continuation lines joined, comments dropped)."""
    out: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = out.setdefault(line[1:-1], [])
            continue
        if current is None or "=" not in line:
            raise UnitError(f"not a unit file line: {line!r}")
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return out


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as systemd's EnvironmentFile= reads them (quotes removed)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def parse_service(text: str) -> ServiceSpec:
    """The ServiceSpec of a unit file's text."""
    service = sections(text).get("Service")
    if service is None:
        raise UnitError("no [Service] section")
    argv: tuple[str, ...] = ()
    env: dict[str, str] = {}
    env_files: list[str] = []
    user = None
    cwd = "/"
    stdout = None
    groups: list[str] = []
    umask = None
    for key, value in service:
        if key == "ExecStart":
            if value[:1] in "-@+!:":
                raise UnitError(f"ExecStart prefixes are not supported here: {value!r}")
            argv = tuple(shlex.split(value))
        elif key == "User":
            user = value
        elif key == "WorkingDirectory":
            cwd = value.lstrip("-")
        elif key == "Environment":
            for item in shlex.split(value):
                name, _, val = item.partition("=")
                env[name] = val
        elif key == "EnvironmentFile":
            env_files.append(value)
        elif key == "StandardOutput" and value.startswith("append:"):
            stdout = value.removeprefix("append:")
        elif key == "SupplementaryGroups":
            groups += value.split()
        elif key == "UMask":
            umask = int(value, 8)
    if not argv:
        raise UnitError("no ExecStart")
    return ServiceSpec(argv, user, cwd, env, tuple(env_files), stdout, tuple(groups), umask)


def service_environment(spec: ServiceSpec) -> dict[str, str]:
    """Environment= then each EnvironmentFile= (a leading '-' means optional), as systemd does."""
    env = dict(spec.environment)
    for name in spec.environment_files:
        optional = name.startswith("-")
        path = Path(name.lstrip("-"))
        if not path.exists():
            if optional:
                continue
            raise UnitError(f"EnvironmentFile {path} does not exist")
        env.update(read_environment_file(path))
    return env
