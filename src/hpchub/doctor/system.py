"""`hpchub doctor`: checks of a live deployment, each a small function returning findings."""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.names import user_name
from ..deploy.paths import DeployPaths
from ..deploy.render import render_all, sudo_commands
from ..deploy.secrets import secret_files
from ..deploy.software import writable_by_others
from ..deploy.units import UnitError, parse_service
from . import tls
from .exposed import exposed_secrets
from .findings import Finding, Runner, error, info, ok, run_checks, run_command, warning
from .gate import check_gate_bypass
from .ports import check_port_range
from .sudo import judge_sudo, parse_sudo_ll

FIXED_JUPYTERHUB = (5, 4, 5)
"""JupyterHub 5.4.5 fixed CVE-2026-40864 (XSRF bypass with Sec-Fetch-Mode: no-cors)."""


@dataclass
class Deployment:
    """What the checks look at: the site's paths, and how to run commands and read /proc."""

    paths: DeployPaths
    run: Runner = run_command
    proc: Path = Path("/proc")
    euid: int = field(default_factory=os.geteuid)

    @property
    def hub_user(self) -> str:
        return self.paths.deploy.hub_user

    def as_hub_user(self, *argv: str) -> list[str]:
        """Run a query as the hub user when we are root (it must work without sudo)."""
        if self.euid == 0:
            return ["runuser", "-u", self.hub_user, "--", *argv]
        return list(argv)


# -- Slurm -------------------------------------------------------------------------------


def check_slurm(d: Deployment) -> list[Finding]:
    """Slurm answers the hub user's queries, and offers every partition the site offers."""
    name = "slurm"
    bin_dir = d.paths.site.slurm.bin_dir
    r = d.run(d.as_hub_user(f"{bin_dir}/sinfo", "-h", "-o", "%R"))
    if r.returncode != 0:
        return [
            error(
                name,
                f"sinfo as {d.hub_user} failed: {(r.stderr or r.stdout).strip()}",
                "check that slurmctld runs, that munged runs on this node and that "
                "slurm.conf here matches the cluster's",
            )
        ]
    present = set(r.stdout.split())
    out = []
    for p in d.paths.site.slurm.partitions:
        if p.name not in present:
            out.append(
                error(
                    name,
                    f"the site offers partition {p.name!r}, which Slurm does not have",
                    f"add it to slurm.conf (see {d.paths.slurm_dir}/jupyter-partitions.conf) "
                    "or remove it from slurm.partitions",
                )
            )
    q = d.run(d.as_hub_user(f"{bin_dir}/squeue", "-h", "-o", "%i", "-t", "all"))
    if q.returncode != 0:
        out.append(
            error(
                name,
                f"squeue as {d.hub_user} failed: {(q.stderr or q.stdout).strip()}",
                "the hub watches jobs with squeue, without sudo: make squeue work for it",
            )
        )
    if not out:
        out.append(ok(name, f"Slurm answers {d.hub_user} (sinfo, squeue) and has every partition"))
    return out


# -- sudo --------------------------------------------------------------------------------


def check_sudo(d: Deployment) -> list[Finding]:
    """The hub user's sudo rules are no wider than needed (from `sudo -ll -U`)."""
    if d.euid != 0:
        return [info("sudo rules", "not checked: `sudo -l -U` needs root", "run doctor as root")]
    r = d.run(["sudo", "-n", "-ll", "-U", d.hub_user])
    if r.returncode != 0 and "not allowed to run sudo" not in r.stdout + r.stderr:
        return [
            error(
                "sudo rules",
                f"sudo -ll -U {d.hub_user} failed: {(r.stderr or r.stdout).strip()}",
                "check the sudo configuration with `visudo -c`",
            )
        ]
    return judge_sudo(parse_sudo_ll(r.stdout), sudo_commands(d.paths), d.hub_user)


# -- secrets and state -------------------------------------------------------------------


def _owner(path: Path) -> str:
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_secrets(d: Deployment) -> list[Finding]:
    """Secret files exist, mode 600, owned by who reads them; the state folder is private."""
    name = "secrets"
    out = []
    data = d.paths.data_dir
    if not data.is_dir():
        return [error(name, f"{data} does not exist", "run `hpchub install`")]
    mode = data.stat().st_mode & 0o777
    if mode & 0o077:
        out.append(
            error(
                name,
                f"{data} (database, cookie secret) is mode {mode:o}: others can look inside",
                f"chmod 700 {data}",
            )
        )
    if _owner(data) != d.hub_user:
        out.append(error(name, f"{data} belongs to {_owner(data)}", f"chown {d.hub_user} {data}"))
    for s in secret_files(d.paths):
        if not s.path.exists():
            out.append(error(name, f"{s.path} ({s.what}) is missing", "run `hpchub install`"))
            continue
        m = s.path.stat().st_mode & 0o777
        if m & 0o077:
            out.append(
                error(
                    name,
                    f"{s.path} ({s.what}) is mode {m:o}: others can read it",
                    f"chmod 600 {s.path}, then renew the secret (it may have been read)",
                )
            )
        if _owner(s.path) != s.owner:
            out.append(
                error(
                    name,
                    f"{s.path} belongs to {_owner(s.path)}, not {s.owner}",
                    f"chown {s.owner}:{s.group} {s.path}",
                )
            )
    if not out:
        out.append(ok(name, "secret files are mode 600, owned by who reads them"))
    return out


# -- the single-user environment ---------------------------------------------------------


def _jupyterhub_version(prefix: Path) -> tuple[int, ...] | None:
    for meta in sorted(prefix.glob("lib/python3*/site-packages/jupyterhub-*.dist-info/METADATA")):
        m = re.search(r"^Version:\s*(\d+)\.(\d+)\.(\d+)", meta.read_text(), re.MULTILINE)
        if m:
            return tuple(int(x) for x in m.groups())
    return None


def check_singleuser_env(d: Deployment) -> list[Finding]:
    """Users can read and run the environment their servers run from, and cannot change it."""
    name = "single-user environment"
    prefix = d.paths.prefix
    # The server command of every job (it adopts the launcher's socket).
    if not (prefix / "bin" / "hpchub-jupyterhub-singleuser").exists():
        return [
            error(
                name,
                f"{prefix}/bin/hpchub-jupyterhub-singleuser does not exist",
                f"hpchub install --software --prefix {prefix}",
            )
        ]
    out = []
    owner = prefix.stat().st_uid
    loose = list(writable_by_others(prefix))
    if loose:
        shown = ", ".join(str(p) for p in loose[:3])
        out.append(
            error(
                name,
                f"{len(loose)} entries are writable by group or others (e.g. {shown}): any user "
                "could change the code every server runs",
                f"chmod -R go-w {prefix}",
            )
        )
    strangers = _foreign_owned(prefix, {0, owner})
    if strangers:
        out.append(
            error(
                name,
                f"{len(strangers)} entries belong to neither root nor the owner of {prefix} "
                f"(e.g. {strangers[0]})",
                f"chown -R {_owner(prefix)} {prefix}",
            )
        )
    for parent in prefix.parents:
        st = parent.stat()
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            out.append(
                error(
                    name,
                    f"{parent} (above the environment) is writable by others: they could swap "
                    "the whole environment",
                    f"chmod go-w {parent}",
                )
            )
    version = _jupyterhub_version(prefix)
    if version is not None and version < FIXED_JUPYTERHUB:
        out.append(
            error(
                name,
                f"JupyterHub {'.'.join(map(str, version))} in {prefix} has the XSRF bypass "
                "CVE-2026-40864",
                f"upgrade it: hpchub install --software --prefix {prefix}",
            )
        )
    if not out:
        out.append(ok(name, f"{prefix} is readable by users and writable only by its owner"))
    return out


def _foreign_owned(root: Path, allowed: set[int], limit: int = 5) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            if p.lstat().st_uid not in allowed:
                found.append(p)
                if len(found) >= limit:
                    return found
    return found


# -- user configuration ------------------------------------------------------------------


def effective_config(config_py: Path, site_path: Path):
    """The hub's configuration as JupyterHub itself would load it (config.d included)."""
    from traitlets.config.loader import PyFileConfigLoader

    old = os.environ.get("HPCHUB_CONFIG")
    os.environ["HPCHUB_CONFIG"] = str(site_path)
    try:
        return PyFileConfigLoader(config_py.name, path=str(config_py.parent)).load_config()
    finally:
        if old is None:
            os.environ.pop("HPCHUB_CONFIG", None)
        else:
            os.environ["HPCHUB_CONFIG"] = old


def check_user_config(d: Deployment) -> list[Finding]:
    """Single-user servers ignore ~/.jupyter (on one domain, a user's own server config could
    turn off its XSRF checks or headers)."""
    name = "user configuration"
    config_d = d.paths.site.hub.config_d
    loose = [p for p in _files(config_d) if p.stat().st_mode & 0o022 or p.stat().st_uid != 0]
    if loose:
        return [
            error(
                name,
                f"{loose[0]} can be changed by someone other than root, and the hub (and this "
                "check) runs it",
                f"chown root {loose[0]} && chmod go-w {loose[0]}",
            )
        ]
    if not d.paths.config_py.exists():
        return [error(name, f"{d.paths.config_py} is missing", "run `hpchub install`")]
    try:
        cfg = effective_config(d.paths.config_py, d.paths.site_path)
    except Exception as err:  # noqa: BLE001 - the admin's Python may raise anything
        return [
            error(
                name,
                f"loading {d.paths.config_py} failed: {err}",
                "fix the file (or the jupyterhub_config.d files it loads)",
            )
        ]
    value = True
    for section in ("Spawner", "SlurmSpawner"):
        if section in cfg and "disable_user_config" in cfg[section]:
            value = cfg[section]["disable_user_config"]
    if value is not True:
        return [
            error(
                name,
                "users' ~/.jupyter configuration is honoured by their servers",
                "set singleuser.disable_user_config: true and remove any "
                "c.Spawner.disable_user_config = False from jupyterhub_config.d",
            )
        ]
    return [ok(name, "single-user servers ignore users' own Jupyter configuration")]


def _files(folder: Path) -> Iterable[Path]:
    return sorted(folder.glob("*.py")) if folder.is_dir() else []


# -- the running services ----------------------------------------------------------------


def _processes(proc: Path) -> Iterable[tuple[int, list[str], int]]:
    """(pid, argv, real uid) of every process we can see."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        m = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        if m and argv and argv[0]:
            yield int(entry.name), [a.decode(errors="replace") for a in argv if a], int(m.group(1))


def find_service(proc: Path, argv: list[str]) -> list[tuple[int, int]]:
    """(pid, uid) of processes running ``argv`` itself (directly or through its interpreter)."""
    found = []
    for pid, cmd, uid in _processes(proc):
        for start in (0, 1):
            if cmd[start : start + len(argv)] != argv:
                continue
            if start == 1 and not re.match(r"(python[0-9.]*|node(js)?)$", os.path.basename(cmd[0])):
                continue
            found.append((pid, uid))
    return found


def check_services(d: Deployment) -> list[Finding]:
    """The hub and the proxy run, and not as root."""
    out = []
    for what, unit in (("hub", d.paths.hub_unit), ("proxy", d.paths.proxy_unit)):
        name = f"{what} process"
        try:
            spec = parse_service(unit.read_text())
        except (OSError, UnitError) as err:
            out.append(error(name, f"cannot read {unit}: {err}", "run `hpchub install`"))
            continue
        running = find_service(d.proc, list(spec.argv))
        if not running:
            out.append(
                warning(
                    name,
                    f"no process runs {' '.join(spec.argv[:3])} ...",
                    f"systemctl start {unit.name}; see {d.paths.deploy.log_dir}",
                )
            )
            continue
        for pid, uid in running:
            user = user_name(uid)
            if uid == 0:
                out.append(
                    error(
                        name,
                        f"the {what} (pid {pid}) runs as root",
                        f"run it as {d.hub_user}: systemctl restart {unit.name} (User= is set)",
                    )
                )
            elif user != d.hub_user:
                out.append(
                    warning(
                        name,
                        f"the {what} (pid {pid}) runs as {user}, not {d.hub_user}",
                        f"start it from {unit}",
                    )
                )
            else:
                out.append(ok(name, f"the {what} (pid {pid}) runs as {user}"))
    return out


# -- PAM ---------------------------------------------------------------------------------


def check_pam(d: Deployment) -> list[Finding]:
    """With PAM logins, the unprivileged hub can read /etc/shadow (through the shadow group)."""
    name = "PAM"
    site = d.paths.site
    if site.hub.authenticator != "pam":
        return [info(name, "not used: users are authenticated by the web server")]
    group = d.paths.deploy.shadow_group or "shadow"
    try:
        user = pwd.getpwnam(d.hub_user)
    except KeyError:
        return [error(name, f"user {d.hub_user} does not exist", "run `hpchub install`")]
    try:
        g = grp.getgrnam(group)
    except KeyError:
        return [error(name, f"group {group} does not exist", "set deploy.shadow_group")]
    out = []
    if d.hub_user not in g.gr_mem and user.pw_gid != g.gr_gid:
        out.append(
            error(
                name,
                f"{d.hub_user} is not in group {group}: PAM cannot check any password, every "
                "login fails",
                f"usermod -aG {group} {d.hub_user}, then restart the hub",
            )
        )
    shadow = Path("/etc/shadow")
    if shadow.exists():
        st = shadow.stat()
        if st.st_gid != g.gr_gid or not st.st_mode & stat.S_IRGRP:
            out.append(
                error(
                    name,
                    f"/etc/shadow is not readable by group {group}",
                    f"chgrp {group} /etc/shadow && chmod g+r /etc/shadow (the distribution default)",
                )
            )
    if not Path("/etc/pam.d/login").exists():
        out.append(
            error(
                name,
                "/etc/pam.d/login (the PAM service JupyterHub uses) is missing",
                "install the login package, or set c.PAMAuthenticator.service in config.d",
            )
        )
    if not out:
        out.append(ok(name, f"{d.hub_user} can check passwords (group {group})"))
    return out


# -- files drifting from the site file ----------------------------------------------------


def check_installed_files(d: Deployment) -> list[Finding]:
    """The installed files are what the site file renders today."""
    name = "installed files"
    stale = []
    for f in render_all(d.paths):
        try:
            current = f.path.read_text()
        except FileNotFoundError:
            stale.append(f"{f.path} (missing)")
            continue
        except PermissionError:
            continue
        if current != f.text:
            stale.append(str(f.path))
    if stale:
        return [
            warning(
                name,
                "differ from what the site file renders: " + ", ".join(stale),
                "hpchub install --dry-run (to see how), then hpchub install",
            )
        ]
    return [ok(name, "every installed file matches the site file")]


def check_tls(d: Deployment) -> list[Finding]:
    """Apache accepts TLS 1.2 and 1.3 only, sends HSTS and redirects HTTP."""
    web = d.paths.deploy.web
    if not web.enabled:
        return [info("TLS", "not checked: no web server in front (deploy.web.enabled: false)")]
    return tls.check(web.server_name, web.https_port, web.http_port, web.hsts_max_age)


def check_gate(d: Deployment) -> list[Finding]:
    """No login reaches the password check around the SSO gate (from a compute node)."""
    return check_gate_bypass(d.paths)


SYSTEM_CHECKS: tuple[Callable[[Deployment], list[Finding]], ...] = (
    check_slurm,
    check_sudo,
    check_secrets,
    exposed_secrets,
    check_singleuser_env,
    check_user_config,
    check_services,
    check_pam,
    check_tls,
    check_gate,
    check_installed_files,
    check_port_range,
)


def run_system_checks(d: Deployment) -> list[Finding]:
    """Every check of the live deployment."""
    return run_checks(SYSTEM_CHECKS, d)
