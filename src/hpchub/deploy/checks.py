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


def _check_with(tool: str, default: str, args: Sequence[str], label: str) -> CheckResult:
    """Run ``tool`` (at ``default`` or on PATH) with ``args``; ok if it exits 0."""
    exe = _tool(tool, default)
    if exe is None:
        return CheckResult(tool, False, f"{tool} is not installed", skipped=True)
    code, out = _run([exe, *args])
    return CheckResult(label, code == 0, out)


def check_sudoers(candidate: Path) -> CheckResult:
    """visudo -cf on the candidate file alone."""
    return _check_with("visudo", "/usr/sbin/visudo", ["-cf", str(candidate)], "visudo -cf")


def check_sudoers_all() -> CheckResult:
    """visudo -c on the whole sudo configuration (after a file was put in place)."""
    return _check_with("visudo", "/usr/sbin/visudo", ["-c"], "visudo -c")


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


DEBIAN_MODULE_FILES = Path("/usr/lib/apache2/modules")
RHEL_BASE_MODULES = (
    # conf.modules.d/00-mpm.conf (RHEL 9: event), 00-ssl.conf (mod_ssl)
    "mpm_event", "ssl",
    # 00-base.conf
    "access_compat", "actions", "alias", "allowmethods", "auth_basic", "auth_digest",
    "authn_anon", "authn_core", "authn_dbd", "authn_dbm", "authn_file", "authn_socache",
    "authz_core", "authz_dbd", "authz_dbm", "authz_groupfile", "authz_host", "authz_owner",
    "authz_user", "autoindex", "cache", "cache_disk", "cache_socache", "data", "dbd", "deflate",
    "dir", "dumpio", "echo", "env", "expires", "ext_filter", "filter", "headers", "include",
    "info", "log_config", "logio", "macro", "mime_magic", "mime", "negotiation", "remoteip",
    "reqtimeout", "request", "rewrite", "setenvif", "slotmem_plain", "slotmem_shm",
    "socache_dbm", "socache_memcache", "socache_shmcb", "status", "substitute", "suexec",
    "unique_id", "unixd", "userdir", "version", "vhost_alias", "watchdog",
    # 00-proxy.conf
    "proxy", "lbmethod_bybusyness", "lbmethod_byrequests", "lbmethod_bytraffic",
    "lbmethod_heartbeat", "proxy_ajp", "proxy_balancer", "proxy_connect", "proxy_express",
    "proxy_fcgi", "proxy_fdpass", "proxy_ftp", "proxy_http", "proxy_hcheck", "proxy_scgi",
    "proxy_uwsgi", "proxy_wstunnel",
)  # fmt: skip
"""The modules RHEL 9's httpd and mod_ssl load by default (conf.modules.d), by the names
their LoadModule lines use; where Debian builds one into the server, it has no file."""
RHEL_LOG_FORMAT = (
    r'LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"" combined'
)


def _rhel_root_on_debian(tmp: Path, modules: Sequence[str]) -> list[str]:
    """A ServerRoot laid out like RHEL's /etc/httpd (modules/, logs/, conf.modules.d/ with
    RHEL's LoadModule lines), whose modules/ is Debian's folder of the same module files."""
    (tmp / "modules").symlink_to(DEBIAN_MODULE_FILES)
    (tmp / "logs").mkdir()
    missing = [m for m in modules if not (DEBIAN_MODULE_FILES / f"mod_{m}.so").exists()]
    if missing:
        raise FileNotFoundError(
            f"Apache modules {' '.join(missing)} are not installed here "
            f"(no mod_NAME.so in {DEBIAN_MODULE_FILES})"
        )
    names = dict.fromkeys([*RHEL_BASE_MODULES, *modules])
    lines = [
        f"LoadModule {n}_module modules/mod_{n}.so"
        for n in names
        if (DEBIAN_MODULE_FILES / f"mod_{n}.so").exists()  # else built in
    ]
    folder = tmp / "conf.modules.d"
    folder.mkdir()
    (folder / "00-hpchub-check.conf").write_text("\n".join(lines) + "\n")
    return [f"Include {folder}/*.conf", RHEL_LOG_FORMAT]


def _stand_in_certificates(text: str, tmp: Path) -> tuple[str, list[str]]:
    """``text`` with certificate files that do not exist on this machine replaced by a
    throw-away pair (a file rendered for another machine names that machine's paths)."""
    pair = {
        "SSLCertificateFile": tmp / "stand-in.crt",
        "SSLCertificateKeyFile": tmp / "stand-in.key",
    }
    replaced = []
    for directive, stand_in in pair.items():
        for m in re.finditer(rf"^\s*{directive}\s+(\S+)\s*$", text, re.MULTILINE):
            if not Path(m.group(1)).exists():
                replaced.append(m.group(1))
                text = text.replace(m.group(0), m.group(0).replace(m.group(1), str(stand_in)))
    if replaced:
        _run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=hpchub-check.invalid", "-keyout", str(pair["SSLCertificateKeyFile"]),
             "-out", str(pair["SSLCertificateFile"])]
        )  # fmt: skip
    return text, replaced


def check_apache(
    candidate: Path, modules: Sequence[str], apachectl: str, family: str = "debian"
) -> CheckResult:
    """apachectl -t with a configuration that includes only the candidate virtual host.

    A virtual host for a RHEL node (``family`` rhel) checked on Debian's Apache is parsed in a
    ServerRoot laid out like RHEL's, with RHEL's LoadModule lines over Debian's module files;
    certificates that exist only on the target are stood in for, and the result says so.
    """
    if not Path(apachectl).exists():
        return CheckResult("apachectl", False, f"{apachectl} is not installed", skipped=True)
    layout = apache_layout()
    if layout is None:
        return CheckResult("apachectl", False, "no Apache configuration found", skipped=True)
    root, kind = layout
    notes = []
    with tempfile.TemporaryDirectory(prefix="hpchub-apache-") as tmp:
        try:
            if family == "rhel" and kind == "debian":
                root = Path(tmp)
                loads = _rhel_root_on_debian(root, modules)
                text, replaced = _stand_in_certificates(candidate.read_text(), root)
                candidate = root / candidate.name
                candidate.write_text(text)
                notes.append("parsed in a RHEL-style ServerRoot with Debian's module files")
                if replaced:
                    notes.append(f"stand-in certificate for {', '.join(replaced)}")
            elif kind == "debian":
                loads = _debian_load_lines(root, modules)
            else:
                loads = [f"Include {root}/conf.modules.d/*.conf"]
        except FileNotFoundError as err:
            return CheckResult("apachectl -t", False, str(err))
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
    return CheckResult("apachectl -t", code == 0, "\n".join([out, *notes]).strip())


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
    r"^.*(Parsing error|is not a valid (?:option|number)|Could not open/read/parse|"
    r"cannot find cgroup plugin|"
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
    if "cannot create auth context" in out:
        # Newer slurmd sets up munge before the cgroup plugin; the file was parsed by then.
        return CheckResult(
            tool, True, "parsed; slurmd stopped before the cgroup plugin: munge is not running here"
        )
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


def check_python(candidate: Path) -> CheckResult:
    """py_compile with the system's Python (the interpreter the script's first line names)."""
    args = ["-I", "-m", "py_compile", str(candidate)]
    return _check_with("python3", "/usr/bin/python3", args, "python3 -m py_compile")


def check_shell(candidate: Path) -> CheckResult:
    """sh -n: the script parses (it is run later, on the machine it was rendered for)."""
    return _check_with("sh", "/bin/sh", ["-n", str(candidate)], "sh -n")
