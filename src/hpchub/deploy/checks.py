"""Check a candidate file with the real tool before it may replace the installed one.

visudo -cf for sudoers, apachectl -t for the virtual host (in a configuration that loads the
modules it needs and includes only the candidate), systemd-analyze verify for units and
logrotate -d for the rotation rule. A tool that is not on this machine is reported as a
skipped check, never as a pass.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.commands import run_command


@dataclass(frozen=True)
class CheckResult:
    """What the checking tool said about one candidate."""

    tool: str
    ok: bool
    output: str = ""
    skipped: bool = False

    def summary(self) -> str:
        if self.skipped:
            return f"not checked ({self.output})"
        return f"{self.tool}: " + ("ok" if self.ok else "FAILED")


def _run(argv: Sequence[str]) -> tuple[int, str]:
    r = run_command(argv, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def _tool(name: str, *candidates: str) -> str | None:
    for c in (*candidates, shutil.which(name)):
        if c and Path(c).exists():
            return c
    return None


def check_sudoers(candidate: Path) -> CheckResult:
    """visudo -cf on the candidate file alone."""
    visudo = _tool("visudo", "/usr/sbin/visudo")
    if visudo is None:
        return CheckResult("visudo", False, "visudo is not installed", skipped=True)
    code, out = _run([visudo, "-cf", str(candidate)])
    return CheckResult("visudo -cf", code == 0, out)


def check_sudoers_all() -> CheckResult:
    """visudo -c on the whole sudo configuration (after a file was put in place)."""
    visudo = _tool("visudo", "/usr/sbin/visudo")
    if visudo is None:
        return CheckResult("visudo", False, "visudo is not installed", skipped=True)
    code, out = _run([visudo, "-c"])
    return CheckResult("visudo -c", code == 0, out)


# -- Apache -----------------------------------------------------------------------------


def apache_layout() -> tuple[Path, str] | None:
    """(server root, kind) of this machine's Apache: Debian's or Red Hat's, else None."""
    if Path("/etc/apache2/mods-available").is_dir():
        return Path("/etc/apache2"), "debian"
    if Path("/etc/httpd/conf.modules.d").is_dir():
        return Path("/etc/httpd"), "redhat"
    return None


def _debian_load_lines(root: Path, modules: Sequence[str]) -> list[str]:
    """LoadModule lines for the enabled modules plus ``modules`` and what they depend on."""
    avail = root / "mods-available"
    wanted = [p.stem for p in sorted((root / "mods-enabled").glob("*.load"))]
    todo = list(modules)
    while todo:
        name = todo.pop(0)
        if name in wanted:
            continue
        load = avail / f"{name}.load"
        if not load.exists():
            raise FileNotFoundError(f"Apache module {name!r} is not installed ({load} is missing)")
        wanted.append(name)
        m = re.search(r"^#\s*Depends:\s*(.*)$", load.read_text(), re.MULTILINE)
        if m:
            todo.extend(m.group(1).split())
    lines = []
    for name in wanted:
        path = avail / f"{name}.load"
        if not path.exists():
            path = root / "mods-enabled" / f"{name}.load"
        lines.append(f"Include {path}")
    return lines


def check_apache(candidate: Path, modules: Sequence[str], apachectl: str) -> CheckResult:
    """apachectl -t with a configuration that includes only the candidate virtual host."""
    if not Path(apachectl).exists():
        return CheckResult("apachectl", False, f"{apachectl} is not installed", skipped=True)
    layout = apache_layout()
    if layout is None:
        return CheckResult("apachectl", False, "no Apache configuration found", skipped=True)
    root, kind = layout
    with tempfile.TemporaryDirectory(prefix="hpchub-apache-") as tmp:
        if kind == "debian":
            try:
                loads = _debian_load_lines(root, modules)
            except FileNotFoundError as err:
                return CheckResult("apachectl -t", False, str(err))
        else:
            loads = [f"Include {root}/conf.modules.d/*.conf"]
        conf = Path(tmp) / "check.conf"
        conf.write_text(
            "\n".join(
                [
                    f"ServerRoot {root}",
                    f"DefaultRuntimeDir {tmp}",
                    f"PidFile {tmp}/apache.pid",
                    f"ErrorLog {tmp}/error.log",
                    "ServerName hpchub-check.invalid",
                    *loads,
                    f"Include {candidate}",
                    "",
                ]
            )
        )
        code, out = _run([apachectl, "-t", "-f", str(conf)])
    return CheckResult("apachectl -t", code == 0, out)


def check_apache_all(apachectl: str) -> CheckResult:
    """apachectl -t on the whole live configuration (after the vhost was put in place)."""
    if not Path(apachectl).exists():
        return CheckResult("apachectl", False, f"{apachectl} is not installed", skipped=True)
    code, out = _run([apachectl, "-t"])
    return CheckResult("apachectl -t", code == 0, out)


# -- systemd, logrotate ------------------------------------------------------------------

_SYSTEMD_PROBLEMS = re.compile(r"Unknown (key|section|lvalue)|Failed to parse|Invalid", re.I)


def check_units(candidates: dict[str, str]) -> CheckResult:
    """systemd-analyze verify on unit texts (name -> text), written under their own names."""
    tool = _tool("systemd-analyze", "/usr/bin/systemd-analyze")
    if tool is None:
        return CheckResult(
            "systemd-analyze", False, "systemd-analyze is not installed", skipped=True
        )
    with tempfile.TemporaryDirectory(prefix="hpchub-units-") as tmp:
        files = []
        for name, text in candidates.items():
            p = Path(tmp) / name
            p.write_text(text)
            files.append(str(p))
        code, out = _run([tool, "verify", "--man=no", "--recursive-errors=no", *files])
    out = out.replace(tmp + "/", "")
    ok = code == 0 and not _SYSTEMD_PROBLEMS.search(out)
    return CheckResult("systemd-analyze verify", ok, out)


def check_logrotate(candidate: Path) -> CheckResult:
    """logrotate -d (debug: reads the rule, rotates nothing)."""
    tool = _tool("logrotate", "/usr/sbin/logrotate")
    if tool is None:
        return CheckResult("logrotate", False, "logrotate is not installed", skipped=True)
    with tempfile.TemporaryDirectory(prefix="hpchub-logrotate-") as tmp:
        code, out = _run([tool, "-d", "-s", f"{tmp}/state", str(candidate)])
    # Only mistakes in the rule itself count ("error: FILE:LINE ..."); -d also looks at the logs,
    # which may not exist yet.
    bad = re.findall(rf"^error: {re.escape(str(candidate))}:\d+.*$", out, re.MULTILINE)
    return CheckResult("logrotate -d", not bad, "\n".join(bad) or out)


# -- Slurm's cgroup.conf -------------------------------------------------------------------

_CGROUP_CONF_BAD = re.compile(
    r"^.*(Parsing error|is not a valid|Could not open/read/parse|cannot find cgroup plugin|"
    r"Couldn't find the specified plugin).*$",
    re.MULTILINE,
)
_CGROUP_PLUGIN_LOADED = re.compile(r"plugin type:(cgroup/v[12])|(cgroup/v[12]): init:")


def check_cgroup_conf(candidate: Path, slurm_lines: Sequence[str]) -> CheckResult:
    """slurmd -G (print the node's GRES and exit) on a throw-away slurm.conf with the
    candidate as its cgroup.conf: slurmd parses it and loads the cgroup plugin it names.

    A plugin that loads but cannot start on this machine (cgroup/v2 on a kernel that mounts
    v1) counts as parsed, and the result says so.
    """
    slurmd = _tool("slurmd", "/usr/sbin/slurmd")
    if slurmd is None:
        return CheckResult(
            "slurmd", False, "slurmd is not installed here (a Slurm client needs none)", True
        )
    with tempfile.TemporaryDirectory(prefix="hpchub-cgroup-") as tmp:
        conf = Path(tmp) / "slurm.conf"
        conf.write_text(
            "\n".join(
                [
                    "ClusterName=hpchub-check",
                    "SlurmctldHost=localhost",
                    f"SlurmdSpoolDir={tmp}/spool",
                    f"SlurmdPidFile={tmp}/slurmd.pid",
                    *slurm_lines,
                    "NodeName=hpchub-check CPUs=1 RealMemory=100",
                    "PartitionName=check Nodes=hpchub-check",
                    "",
                ]
            )
        )
        (Path(tmp) / "cgroup.conf").write_text(candidate.read_text())
        log = Path(tmp) / "slurmd.log"
        argv = [slurmd, "-G", "-f", str(conf), "-N", "hpchub-check", "-L", str(log), "-vvvv"]
        code, out = _run(argv)
        if log.exists():
            out = f"{out}\n{log.read_text()}".strip()
    tool = "slurmd -G (cgroup.conf)"
    bad = [m.group(0).strip() for m in _CGROUP_CONF_BAD.finditer(out)]
    if bad:
        return CheckResult(tool, False, "\n".join(bad))
    if code == 0:
        return CheckResult(tool, True, "slurmd accepted it")
    loaded = _CGROUP_PLUGIN_LOADED.search(out)
    fatal = re.search(r"^.*fatal: .*$", out, re.MULTILINE)
    if loaded and fatal:
        plugin = loaded.group(1) or loaded.group(2)
        return CheckResult(
            tool,
            True,
            f"parsed, and {plugin} loaded; it cannot start on this machine: "
            + fatal.group(0).split("fatal: ", 1)[1],
        )
    return CheckResult(tool, False, out[-2000:])
