"""`hpchub doctor --user NAME`: what in one user's account breaks their Jupyter server.

The checks that read the user's files run as that user (doctor forks and drops to their uid),
so a symlink in a home folder can never make doctor, running as root, read someone else's file.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from ..config.models import SiteConfig
from ..core.commands import MISSING, run_command
from ..core.text import printable
from .findings import Finding, Runner, Severity, all_ok, error, info, ok, run_checks, warning

STARTUP_FILES = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile")
STARTUP_FILES += (".zshenv", ".cshrc", ".tcshrc", ".login")
_MODULE_LINE = re.compile(
    r"^\s*(module|ml)\s+(load|add|swap|switch|try-load|use|unuse|purge|restore|reset)\b"
    r"|^\s*ml\s+[A-Za-z]"
    r"|^\s*(export\s+|setenv\s+)?MODULEPATH\b"
)
# Packages whose copy in ~/.local replaces the kernel's own and breaks it.
JUPYTER_PACKAGES = (
    *("ipykernel", "IPython", "jupyter_client", "jupyter_core", "jupyter_server", "jupyterlab"),
    *("jupyterhub", "notebook", "nbformat", "traitlets", "tornado", "zmq", "comm", "debugpy"),
)
_GUARD = "HPCHUB_JOB"


def _startup_files(home: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of each shell start-up file the user has and we can read (as the user)."""
    for fname in STARTUP_FILES:
        try:
            yield fname, (home / fname).read_text(errors="replace")
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue


def check_startup_files(home: Path) -> list[Finding]:
    """Modules loaded, or MODULEPATH changed, in shell start-up files."""
    name = "shell start-up files"
    out = []
    for fname, text in _startup_files(home):
        lines = text.splitlines()
        guarded = any(_GUARD in line for line in lines)
        hits = [
            f"line {i}: {printable(line.strip())}"
            for i, line in enumerate(lines, 1)
            if _MODULE_LINE.search(line) and not line.lstrip().startswith("#")
        ]
        if hits and not guarded:
            out.append(
                warning(
                    name,
                    f"~/{fname} changes modules ({'; '.join(hits[:3])}"
                    + (f"; and {len(hits) - 3} more" if len(hits) > 3 else "")
                    + "): kernels that load their own modules then start with a different "
                    "software stack, and may keep restarting",
                    f'wrap those lines in ~/{fname} in: if [ -z "${_GUARD}" ]; then ... fi '
                    "(hpchub sets HPCHUB_JOB in the server's job), or load modules by hand",
                )
            )
    return all_ok(out, name, "no module commands in shell start-up files")


def check_jupyter_config(home: Path) -> list[Finding]:
    """Files in ~/.jupyter that users may expect to work (servers from the hub ignore them)."""
    name = "~/.jupyter"
    folder = home / ".jupyter"
    try:
        files = sorted(
            printable(p.name)
            for p in folder.iterdir()
            if re.match(r"jupyter_.*config\.(py|json)$", p.name) and p.is_file()
        )
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        files = []
    if not files:
        return [ok(name, "no Jupyter server configuration in ~/.jupyter")]
    return [
        warning(
            name,
            f"~/.jupyter has {', '.join(files)}: servers started from the hub ignore it "
            "(on a shared domain a user's own server configuration could weaken its security), "
            "so settings there do not apply",
            "move the settings you need into your kernels or notebooks; to silence this, "
            "rename the files (they still apply to Jupyter you start yourself)",
        )
    ]


def check_local_packages(home: Path) -> list[Finding]:
    """Packages in ~/.local that shadow the kernels' own Jupyter packages."""
    name = "~/.local packages"
    out = []
    for site in sorted(home.glob(".local/lib/python3*/site-packages")):
        try:
            names = {p.name for p in site.iterdir()}
        except (PermissionError, NotADirectoryError):
            continue
        found = [pkg for pkg in JUPYTER_PACKAGES if pkg in names]
        if found:
            version = printable(site.parent.name.removeprefix("python"))
            out.append(
                warning(
                    name,
                    f"~/.local/lib/python{version} holds {', '.join(found)}: every Python "
                    f"{version} kernel imports these instead of its own, which can break it",
                    f"python{version} -m pip uninstall --user {' '.join(found)} "
                    f"(or rename ~/.local/lib/python{version} to test without them)",
                )
            )
    return all_ok(out, name, "no Jupyter packages in ~/.local")


def check_conda(home: Path) -> list[Finding]:
    """conda's auto-activation puts its base environment first in every shell."""
    name = "conda"
    activated = []
    for fname, text in _startup_files(home):
        if ">>> conda initialize >>>" in text or re.search(r"conda(\.sh)?\s+activate", text):
            activated.append(f"~/{fname}")
    if not activated:
        return [ok(name, "conda is not activated by shell start-up files")]
    condarc = home / ".condarc"
    try:
        rc = condarc.read_text()
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        rc = ""
    if re.search(r"^\s*auto_activate_base\s*:\s*false\b", rc, re.MULTILINE):
        return [info(name, f"{', '.join(activated)} set up conda, with auto_activate_base off")]
    return [
        warning(
            name,
            f"{', '.join(activated)} activate conda's base environment in every shell: its "
            "python and jupyter come first in PATH, for kernels too",
            "conda config --set auto_activate_base false (activate environments by hand)",
        )
    ]


def check_space(home: Path) -> list[Finding]:
    """Room left in the home folder's filesystem (as this user sees it)."""
    name = "home space"
    try:
        st = os.statvfs(home)
    except OSError as err:
        return [error(name, f"cannot look at {home}: {err.strerror}", "ask the admins")]
    free = st.f_bavail * st.f_frsize
    total = st.f_blocks * st.f_frsize
    inodes = st.f_favail
    if free < 50 * 1024**2 or (total and free / total < 0.005):
        return [
            error(
                name,
                f"only {free // 1024**2} MiB free in the home filesystem: Jupyter cannot save "
                "notebooks or even start (it writes its runtime files there)",
                "delete or move files (du -sh ~/.[!.]* ~/* | sort -h shows the biggest)",
            )
        ]
    if st.f_files and inodes < 1000:
        return [
            error(
                name,
                f"only {inodes} files can still be created in the home filesystem",
                "delete many small files (e.g. caches: ~/.cache, old conda environments)",
            )
        ]
    return [ok(name, f"{free // 1024**3} GiB free in the home filesystem")]


def parse_quota(text: str) -> list[str]:
    """Filesystems where `quota -v` marks the user over a limit (a '*' after the usage)."""
    over = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        parts = line.split()
        if not parts or parts[0].startswith(("Disk", "Filesystem")):
            continue
        if len(parts) == 1 and i + 1 < len(lines):
            # Long filesystem names put the numbers on the next line.
            parts = parts + lines[i + 1].split()
        if any(p.endswith("*") for p in parts[1:]):
            over.append(parts[0])
    return list(dict.fromkeys(over))


def check_quota(user: str, run: Runner) -> list[Finding]:
    """Over quota (from `quota -v`, where the quota tools are installed)."""
    name = "quota"
    r = run(["quota", "-v", "-w", "-u", user])
    if r.returncode == MISSING:
        return [info(name, "not checked: the quota tools are not installed on this node")]
    over = parse_quota(r.stdout)
    if over:
        return [
            error(
                name,
                f"{user} is over quota on {', '.join(over)}: writes fail, servers fail to start",
                "delete files there, or ask the admins for more quota",
            )
        ]
    return [ok(name, "within quota")]


def check_account(user: str, site: SiteConfig) -> list[Finding]:
    """The user exists, may log in, and owns a home folder."""
    name = "account"
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return [error(name, f"{user} has no account on this node", "check the user's name")]
    if pw.pw_uid == 0:
        return [
            error(
                name,
                f"{user} has uid 0: the hub never starts a server as root (the sudo rule and "
                "JupyterHub both refuse it), whatever its groups",
                "check the account of the person who has the problem, not root",
            )
        ]
    out = []
    hub = site.hub
    groups = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    with contextlib.suppress(KeyError):
        groups.add(grp.getgrgid(pw.pw_gid).gr_name)
    allowed = set(hub.allowed_groups) | set(hub.admin_groups)
    if user not in hub.allowed_users and user not in hub.admin_users and not groups & allowed:
        out.append(
            error(
                name,
                f"{user} may not log in: not in hub.allowed_users nor in any of the groups "
                f"{sorted(allowed)}",
                f"add {user} to one of those groups (then log in again)",
            )
        )
    home = Path(pw.pw_dir)
    if not home.is_dir():
        out.append(error(name, f"home {home} does not exist", f"create it, owned by {user}"))
    elif home.stat().st_uid != pw.pw_uid:
        out.append(error(name, f"home {home} is not owned by {user}", f"chown {user} {home}"))
    return all_ok(out, name, f"{user} may log in; home {home}")


HOME_CHECKS: tuple[Callable[[Path], list[Finding]], ...] = (
    check_startup_files,
    check_jupyter_config,
    check_local_packages,
    check_conda,
    check_space,
)


def run_home_checks(home: Path) -> list[Finding]:
    """Every check of the files in ``home`` (run this as the home's owner)."""
    return run_checks(HOME_CHECKS, home)


def as_user(user: str, fn: Callable[[], list[Finding]]) -> list[Finding]:
    """Run ``fn`` in a child process that has become ``user`` (we are root); its findings."""
    pw = pwd.getpwnam(user)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the user for good, then check
        code = 0
        try:
            os.close(rfd)
            os.setgroups(os.getgrouplist(user, pw.pw_gid))
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            os.environ["HOME"] = pw.pw_dir
            data = json.dumps([f.as_dict() for f in fn()]).encode()
            with os.fdopen(wfd, "wb") as w:
                w.write(data)
        except BaseException:  # noqa: BLE001 - the child must never return to the caller
            code = 1
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        data = r.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        return [error("doctor", f"the checks run as {user} failed", "run doctor as that user")]
    return [
        Finding(d["check"], Severity[d["severity"].upper()], d["what"], d["fix"])
        for d in json.loads(data)
    ]


def run_user_checks(user: str, site: SiteConfig, run: Runner = run_command) -> list[Finding]:
    """Every check about ``user``: the account (as us), their files (as them), quota."""
    findings = check_account(user, site)
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return findings
    home = Path(pw.pw_dir)
    if os.geteuid() == 0 and pw.pw_uid != 0:
        findings += as_user(user, lambda: run_home_checks(home))
    elif os.geteuid() == pw.pw_uid:
        findings += run_home_checks(home)
    else:
        findings.append(
            error("doctor", f"cannot read {user}'s files as uid {os.geteuid()}", "run as root")
        )
    findings += check_quota(user, run)
    return findings
