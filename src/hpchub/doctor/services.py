"""Doctor's checks of what runs: the hub and the proxy (not as root), and PAM's access."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from ..core.names import user_name
from ..deploy.units import UnitError, parse_service
from .deployment import Deployment
from .findings import Finding, all_ok, error, info, ok, warning


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
    for kind, unit in (("hub", d.paths.hub_unit), ("proxy", d.paths.proxy_unit)):
        name = f"{kind} process"
        try:
            spec = parse_service(unit.read_text())
        except (OSError, UnitError) as err:
            out.append(error(name, f"cannot read {unit}: {err}", "run `hpchub install`"))
            continue
        running = find_service(d.proc, list(spec.argv))
        if not running:
            fix = f"systemctl start {unit.name}; see {d.paths.deploy.log_dir}"
            out.append(warning(name, f"no process runs {' '.join(spec.argv[:3])} ...", fix))
        for pid, uid in running:
            user = user_name(uid)
            if uid == 0:
                fix = f"run it as {d.hub_user}: systemctl restart {unit.name} (User= is set)"
                out.append(error(name, f"the {kind} (pid {pid}) runs as root", fix))
            elif user != d.hub_user:
                what = f"the {kind} (pid {pid}) runs as {user}, not {d.hub_user}"
                out.append(warning(name, what, f"start it from {unit}"))
            else:
                out.append(ok(name, f"the {kind} (pid {pid}) runs as {user}"))
    return out


def _pam_service_file(d: Deployment) -> tuple[str, Path]:
    service = d.paths.deploy.pam_service or "login"
    return service, d.pam_dir / service


def check_pam_without_shadow(d: Deployment) -> list[Finding]:
    """RHEL (no shadow group): the hub's PAM service asks sssd, which must be running."""
    name = "PAM"
    service, path = _pam_service_file(d)
    if not path.exists():
        fix = "run `hpchub install` (it writes the service for os_family rhel)"
        return [error(name, f"{path} (the PAM service the hub uses) is missing", fix)]
    text = path.read_text(errors="replace")
    # One level of include/substack (e.g. a service that includes authselect's system-auth).
    for m in re.finditer(r"^\s*\w+\s+(?:include|substack)\s+(\S+)", text, re.MULTILINE):
        with contextlib.suppress(OSError):
            text += (d.pam_dir / Path(m.group(1)).name).read_text(errors="replace")
    if "pam_sss" not in text:
        what = (
            f"{path} does not use pam_sss: the unprivileged hub cannot read /etc/shadow, so "
            "pam_unix fails every login but the hub user's own"
        )
        return [error(name, what, "authenticate through sssd (pam_sss.so), as install renders")]
    if not d.sssd_socket.exists():
        what = f"sssd's PAM responder ({d.sssd_socket}) is not there: every login fails"
        return [error(name, what, "systemctl enable --now sssd (with the pam service enabled)")]
    return [ok(name, f"logins go through sssd (PAM service {service})")]


def check_pam(d: Deployment) -> list[Finding]:
    """With PAM logins, the unprivileged hub can check passwords: through the shadow group
    (Debian), or through sssd where there is none (RHEL)."""
    name = "PAM"
    if d.paths.site.hub.authenticator != "pam":
        return [info(name, "not used: users are authenticated by the web server")]
    if d.paths.deploy.os_family == "rhel":
        return check_pam_without_shadow(d)
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
        what = f"{d.hub_user} is not in group {group}: PAM cannot check any password, every login fails"
        out.append(error(name, what, f"usermod -aG {group} {d.hub_user}, then restart the hub"))
    shadow = Path("/etc/shadow")
    if shadow.exists():
        st = shadow.stat()
        if st.st_gid != g.gr_gid or not st.st_mode & stat.S_IRGRP:
            fix = f"chgrp {group} /etc/shadow && chmod g+r /etc/shadow (the distribution default)"
            out.append(error(name, f"/etc/shadow is not readable by group {group}", fix))
    service, path = _pam_service_file(d)
    if not path.exists():
        what = f"{path} (the PAM service the hub uses) is missing"
        fix = "install the login package, or set deploy.pam_service to a service that exists"
        out.append(error(name, what, fix))
    return all_ok(out, name, f"{d.hub_user} can check passwords (group {group})")
