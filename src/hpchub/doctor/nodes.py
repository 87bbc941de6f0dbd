"""Doctor on the compute nodes: can each node run the single-user environment's Python?

The environment (``singleuser.prefix``, on storage the nodes share) is a virtual environment
whose ``bin/python`` points at the interpreter it was built from, such as /usr/bin/python3.11.
A node without that interpreter, or with another minor version, cannot start any server. The
check runs that ``bin/python`` on every node of the site's partitions, in a short job each,
through the Slurm gateway.
"""

from __future__ import annotations

import asyncio
import re
from importlib import metadata
from pathlib import Path

from ..slurm.client import SlurmClient
from ..slurm.runner import Result
from .deployment import Deployment
from .findings import Finding, all_ok, error, info, warning

NAME = "node Python"
MAX_NODES = 32
"""Nodes checked in one doctor run (one short job each, at most 8 at a time)."""
UP_STATES = ("idle", "mixed", "allocated", "completing", "reserved")
PROBE = "import platform; print('hpchub-python', platform.python_version())"
_VERSION = re.compile(r"^hpchub-python (\d+)\.(\d+)(?:\.(\d+))?", re.MULTILINE)


def required_python() -> tuple[int, int]:
    """The oldest Python hpchub runs on (its Requires-Python, >=3.11)."""
    spec = metadata.metadata("hpchub").get("Requires-Python") or ""
    m = re.search(r">=\s*(\d+)\.(\d+)", spec)
    return (int(m.group(1)), int(m.group(2))) if m else (3, 11)


def environment_python(prefix: Path) -> tuple[int, int] | None:
    """The Python (major, minor) the environment was built with, from its pyvenv.cfg."""
    try:
        text = (prefix / "pyvenv.cfg").read_text()
    except OSError:
        return None
    m = re.search(r"^\s*version(?:_info)?\s*=\s*(\d+)\.(\d+)", text, re.MULTILINE)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_probe(stdout: str) -> tuple[int, int, int] | None:
    """(major, minor, micro) from what PROBE printed, or None."""
    m = _VERSION.search(stdout)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def _shown(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def _link_target(python: Path) -> str:
    try:
        return f" (a link to {python.resolve()})" if python.is_symlink() else ""
    except OSError:
        return ""


def judge(
    node: str, result: Result, python: Path, built: tuple[int, int] | None, least: tuple[int, int]
) -> Finding | None:
    """A finding for one node's answer (None: that node is fine)."""
    needed = f"Python {_shown(built)}" if built else f"Python {_shown(least)} or newer"
    why = f"the single-user environment ({python}) needs {needed}"
    found = parse_probe(result.stdout)
    if result.ok and found:
        if (built and found[:2] != built) or found[:2] < least:
            what = f"node {node} has Python {_shown(found)}, but {why}"
            fix = (
                f"install Python {_shown(built or least)} on {node} (RHEL: dnf install python3.11)"
            )
            return error(NAME, what, fix)
        return None
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    # srun's own lines: Slurm did not run the probe (no room, no association, a reservation).
    # Anything else comes from the job: slurmstepd or the interpreter itself.
    from_job = [line for line in lines if not line.startswith("srun:")]
    if not result.ok and not from_job:
        said = lines[-1] if lines else f"srun exited with status {result.returncode}"
        what = f"node {node} not checked: Slurm did not run the probe job ({said})"
        fix = "run hpchub doctor again when the node has room; doctor submits as its own user"
        return warning(NAME, what, fix)
    telling = [line for line in from_job if re.search(r"execve|No such file|denied", line)]
    said = (telling or from_job or ["it printed no version"])[-1]
    target = _link_target(python)
    what = f"node {node} cannot run {python}{target}: {said}; {why}"
    fix = (
        f"install Python {_shown(built or least)} on {node} at the path {python} links to "
        "(RHEL: dnf install python3.11), and check the prefix is mounted there"
    )
    return error(NAME, what, fix)


def check_node_python(d: Deployment) -> list[Finding]:
    """Every node of the site's partitions runs the environment's Python (version and path)."""
    site = d.paths.site
    python = d.paths.prefix / "bin" / "python"
    built = environment_python(d.paths.prefix)
    least = required_python()
    client = SlurmClient(site.slurm, d.slurm_run)  # as the doctor's user: jobs need no sudo
    try:
        nodes = asyncio.run(client.nodes())
    except Exception as err:  # noqa: BLE001 - check_slurm reports Slurm itself
        return [info(NAME, f"not checked: sinfo failed ({err})")]
    offered = [p.name for p in site.slurm.partitions]
    todo: dict[str, str] = {}
    for node in sorted(nodes.values(), key=lambda n: n.name):
        part = next((p for p in offered if p in node.partitions), None)
        if part and node.state.rstrip("*~#!%$@^-+").startswith(UP_STATES):
            todo.setdefault(node.name, part)
    if not todo:
        return [info(NAME, "not checked: no node of the site's partitions is up")]
    picked = dict(list(todo.items())[:MAX_NODES])

    async def all_nodes() -> list[Result | BaseException]:
        gate = asyncio.Semaphore(8)

        async def one(node: str, part: str) -> Result:
            async with gate:
                return await client.run_on_node(node, part, [str(python), "-c", PROBE], 60)

        jobs = [one(n, p) for n, p in picked.items()]
        return await asyncio.gather(*jobs, return_exceptions=True)

    out = []
    for node, result in zip(picked, asyncio.run(all_nodes()), strict=True):
        if isinstance(result, BaseException):
            what = f"node {node} not checked: {type(result).__name__}: {result}"
            out.append(warning(NAME, what, "check that srun works for this user"))
            continue
        finding = judge(node, result, python, built, least)
        if finding:
            out.append(finding)
    more = f" (the first {MAX_NODES} of {len(todo)})" if len(todo) > len(picked) else ""
    needed = _shown(built) if built else f"{_shown(least)}+"
    return all_ok(out, NAME, f"{len(picked)} nodes{more} run {python} (Python {needed})")
