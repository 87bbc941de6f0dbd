"""Put the rendered files in place: checked first, written atomically, right owner and mode.

For each file: compare with what is installed; check the candidate with the real tool; write
it next to the target under a name no service reads, then rename it over the target. After
all files are in place, the whole sudo and Apache configurations are checked again, and a
file that breaks them is rolled back. A file that fails its check is never installed.
"""

from __future__ import annotations

import difflib
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.accounts import owner_ids
from ..core.commands import run_command
from ..core.files import UnsafePath, atomic_write, open_nofollow, opened_dir, set_owner_mode
from . import checks, rhel
from .paths import DeployPaths
from .render import SystemFile, apache_modules, render_all, slurm_memory_lines
from .secrets import ensure_secrets


class InstallError(Exception):
    """A file failed its check (nothing of it was installed), or a step could not be done."""


@dataclass
class Change:
    """What happened (or, in a dry run, would happen) to one file."""

    file: SystemFile
    action: str  # "create" | "update" | "unchanged" | "metadata" | "refused"
    diff: str = ""
    check: checks.CheckResult | None = None


@dataclass
class Report:
    """Everything an install did, in order."""

    changes: list[Change] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[Path]:
        return [c.file.path for c in self.changes if c.action in ("create", "update", "metadata")]


def _log_group() -> str:
    """The group that may read logs: adm where it exists (Debian, Red Hat), else root."""
    try:
        grp.getgrnam("adm")
    except KeyError:
        return "root"
    return "adm"


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except PermissionError:
        return "<unreadable: run as root to compare>\n"


def unified_diff(path: Path, old: str | None, new: str) -> str:
    """A unified diff from the installed file (or nothing) to the candidate."""
    return "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=str(path) if old is not None else "/dev/null",
            tofile=f"{path} (new)",
        )
    )


def _metadata_ok(path: Path, f: SystemFile, chown: bool) -> bool:
    st = path.stat()
    if st.st_mode & 0o7777 != f.mode:
        return False
    if chown:
        try:
            uid, gid = owner_ids(f.owner, f.group)
        except KeyError:
            return False
        return (st.st_uid, st.st_gid) == (uid, gid)
    return True


def _put(f: SystemFile, text: str, chown: bool) -> None:
    """Write one system file atomically, with its owner (as root) and mode; never via a link."""
    f.path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(f.path, text, f.mode, *owner_ids(f.owner, f.group, chown))


def _touch(path: Path) -> None:
    """Create ``path`` if missing, without following a link at its place."""
    with opened_dir(path.parent) as folder:
        os.close(open_nofollow(folder, path.name, os.O_WRONLY | os.O_CREAT | os.O_APPEND))


def check_candidate(f: SystemFile, paths: DeployPaths) -> checks.CheckResult | None:
    """Run the real tool on the candidate text of ``f`` (in a private temporary folder)."""
    if f.check is None:
        return None
    if f.check == "systemd":
        return checks.check_units({f.path.name: f.text})
    with tempfile.TemporaryDirectory(prefix="hpchub-candidate-") as tmp:
        cand = Path(tmp) / f.path.name
        text = f.text
        secret = paths.apache_secret_conf
        if f.check == "apache" and paths.uses_frontend_secret and not secret.exists():
            # A dry run before the first install: the secret does not exist yet.
            stand_in = Path(tmp) / "secret-stand-in.conf"
            stand_in.write_text('RequestHeader set X-Stand-In "x"\n')
            text = text.replace(f"Include {secret}", f"Include {stand_in}")
        cand.write_text(text)
        os.chmod(cand, f.mode)
        if f.check == "sudoers":
            return checks.check_sudoers(cand)
        if f.check == "apache":
            d = paths.deploy
            return checks.check_apache(
                cand, apache_modules(paths), str(d.web.apachectl), d.os_family
            )
        if f.check == "shell":
            return checks.check_shell(cand)
        if f.check == "python":
            return checks.check_python(cand)
        if f.check == "logrotate":
            return checks.check_logrotate(cand)
        if f.check == "cgroup":
            return checks.check_cgroup_conf(cand, slurm_memory_lines(paths.deploy.slurm.cgroup))
    raise ValueError(f"unknown check {f.check!r}")


class Installer:
    """Installs one site's files. ``chown`` is False only in tests run without root."""

    def __init__(
        self,
        paths: DeployPaths,
        *,
        dry_run: bool = False,
        chown: bool | None = None,
        log: Callable[[str], None] = print,
        run: Callable[..., subprocess.CompletedProcess] = run_command,
    ):
        self.paths = paths
        self.dry_run = dry_run
        self.chown = (os.geteuid() == 0) if chown is None else chown
        self.log = log
        self.run = run
        self.report = Report()

    # -- accounts and folders --------------------------------------------------------
    def ensure_hub_user(self) -> None:
        """The unprivileged hub user (a system account), in the shadow group for PAM."""
        d = self.paths.deploy
        try:
            pwd.getpwnam(d.hub_user)
        except KeyError:
            self._step(f"create system user {d.hub_user}")
            if not self.dry_run:
                self._cmd(
                    "useradd",
                    "--system",
                    "--user-group",
                    "--home-dir",
                    str(self.paths.data_dir),
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    d.hub_user,
                )
        group = d.shadow_group if self.paths.site.hub.authenticator == "pam" else None
        if group:
            try:
                members = grp.getgrnam(group).gr_mem
            except KeyError:
                raise InstallError(
                    f"group {group!r} (deploy.shadow_group) does not exist on this machine; "
                    "set deploy.shadow_group to the group that may read /etc/shadow"
                ) from None
            if d.hub_user not in members:
                self._step(f"add {d.hub_user} to group {group} (PAM reads /etc/shadow)")
                if not self.dry_run:
                    self._cmd("usermod", "-aG", group, d.hub_user)

    def ensure_dirs(self) -> None:
        """State folder (hub user, 700), log folder and logs (root:adm, 750/640), /etc folders.

        systemd opens the logs as root, so neither the hub nor the proxy needs to write there.
        """
        p, d = self.paths, self.paths.deploy
        hub = d.hub_user
        logs = _log_group()
        wanted = [
            (p.data_dir, hub, hub, 0o700),
            (d.log_dir, "root", logs, 0o750),
            (d.etc_dir, "root", "root", 0o755),
            (p.slurm_dir, "root", "root", 0o755),
            (p.site.hub.config_d, "root", "root", 0o755),
        ]
        for path, owner, group, mode in wanted:
            if not path.is_dir():
                self._step(f"create {path} ({owner}, mode {mode:o})")
                if self.dry_run:
                    continue
                path.mkdir(parents=True, exist_ok=True)
            elif self.dry_run:
                continue
            # The data folder belongs to the hub user: a link there is refused, not followed.
            set_owner_mode(path, mode, *owner_ids(owner, group, self.chown))
        for log in (p.hub_log, p.proxy_log):
            if self.dry_run or not d.log_files:
                continue
            _touch(log)
            set_owner_mode(log, 0o640, *owner_ids("root", logs, self.chown))

    # -- files -----------------------------------------------------------------------
    def plan(self, files: list[SystemFile] | None = None) -> list[Change]:
        """Compare each rendered file with the installed one and check the changed ones."""
        files = render_all(self.paths) if files is None else files
        out = []
        for f in files:
            old = _read(f.path)
            if old == f.text:
                action = "unchanged" if _metadata_ok(f.path, f, self.chown) else "metadata"
                out.append(Change(f, action))
                continue
            change = Change(
                f, "create" if old is None else "update", unified_diff(f.path, old, f.text)
            )
            change.check = check_candidate(f, self.paths)
            if change.check is not None and not change.check.ok and not change.check.skipped:
                change.action = "refused"
            out.append(change)
        return out

    def install_files(self, changes: list[Change]) -> None:
        """Put the planned files in place, or refuse all of them if any failed its check."""
        refused = [c for c in changes if c.action == "refused"]
        if refused and self.dry_run:
            return
        if refused:
            lines = [f"{c.file.path} failed {c.check.tool}:\n{c.check.output}" for c in refused]
            raise InstallError(
                "nothing was installed; these files failed their checks:\n" + "\n".join(lines)
            )
        backups: dict[Path, str | None] = {}
        for c in changes:
            f = c.file
            if c.action in ("create", "update"):
                self._step(f"{c.action} {f.path} ({f.what})")
                if not self.dry_run:
                    backups[f.path] = _read(f.path)
                    _put(f, f.text, self.chown)
            elif c.action == "metadata":
                self._step(f"fix owner/mode of {f.path} ({f.owner}:{f.group} {f.mode:o})")
                if not self.dry_run:
                    set_owner_mode(f.path, f.mode, *owner_ids(f.owner, f.group, self.chown))
        if self.dry_run:
            return
        linked = self._enable_apache()
        if backups or linked:
            self._check_whole(changes, backups, linked)

    def _enable_apache(self) -> Path | None:
        """Enable the modules and the site (Debian); the link if it was created now."""
        web = self.paths.deploy.web
        if not web.enabled:
            return None
        layout = checks.apache_layout()
        if shutil.which("a2enmod") and layout and layout[1] == "debian":
            enabled = layout[0] / "mods-enabled"
            wanted = apache_modules(self.paths)
            missing = [m for m in wanted if not (enabled / f"{m}.load").exists()]
            if missing:
                self._step(f"enable Apache modules {' '.join(missing)}")
                self._cmd("a2enmod", "-q", *missing)
        link = web.vhost_link
        if link is None or (link.is_symlink() and link.resolve() == web.vhost_file.resolve()):
            return None
        self._step(f"enable the virtual host: {link} -> {web.vhost_file}")
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.hpchub-new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(web.vhost_file)
        os.replace(tmp, link)
        return link

    def _check_whole(
        self, changes: list[Change], backups: dict[Path, str | None], linked: Path | None
    ) -> None:
        kinds = {c.file.check for c in changes if c.file.path in backups}
        if linked is not None:
            kinds.add("apache")
        results = []
        if "sudoers" in kinds:
            results.append(("sudoers", checks.check_sudoers_all()))
        if "apache" in kinds:
            results.append(
                ("apache", checks.check_apache_all(str(self.paths.deploy.web.apachectl)))
            )
        failed = [(k, r) for k, r in results if not r.ok and not r.skipped]
        if not failed:
            return
        for c in changes:
            if c.file.check in {k for k, _ in failed} and c.file.path in backups:
                old = backups[c.file.path]
                if old is None:
                    c.file.path.unlink(missing_ok=True)
                else:
                    _put(c.file, old, self.chown)
                self._step(f"rolled back {c.file.path}")
        if linked is not None and "apache" in {k for k, _ in failed}:
            linked.unlink(missing_ok=True)
            self._step(f"removed {linked}")
        raise InstallError(
            "the whole configuration failed its check, so the new files were rolled back:\n"
            + "\n".join(f"{r.tool}: {r.output}" for _, r in failed)
        )

    # -- all together ----------------------------------------------------------------
    def install(self) -> Report:
        """User, folders, secrets, then every file; returns what was done."""
        if not self.dry_run and self.chown and os.geteuid() != 0:
            raise InstallError("hpchub install must run as root (or use --dry-run)")
        try:
            self.ensure_hub_user()
            self.ensure_dirs()
            for line in ensure_secrets(self.paths, chown=self.chown, dry_run=self.dry_run):
                self._step(line)
            changes = self.plan()
            self.report.changes = changes
            self.install_files(changes)
            if self.paths.deploy.os_family == "rhel":
                self.apply_rhel()
        except UnsafePath as err:
            # Planted by whoever can write there (the hub user): never followed as root.
            raise InstallError(f"{err}; remove it and run hpchub install again") from None
        return self.report

    def apply_rhel(self) -> None:
        """Run the SELinux script (the services need its labels and boolean); name the
        firewalld script, whose rules are the site's firewall policy to review and run."""
        etc = self.paths.deploy.etc_dir
        selinux, firewalld = etc / rhel.SELINUX_SCRIPT, etc / rhel.FIREWALLD_SCRIPT
        self._step(f"run {selinux} (SELinux booleans, file contexts and ports)")
        if not self.dry_run:
            r = self.run(["/bin/sh", str(selinux)], timeout=600)
            for line in (r.stdout + r.stderr).strip().splitlines():
                self.log(f"  {line}")
            if r.returncode != 0:
                raise InstallError(f"{selinux} failed (exit status {r.returncode}), above")
        self.log(f"firewalld: review and run {firewalld} (opens only what the site file names)")

    def reload(self) -> None:
        """Make running services pick up changed files (systemd and Apache, where running)."""
        changed = set(self.report.changed)
        p = self.paths
        if {p.hub_unit, p.proxy_unit} & changed and Path("/run/systemd/system").is_dir():
            self._step("systemctl daemon-reload")
            self._cmd("systemctl", "daemon-reload")
        running = any(
            Path(f).exists() for f in ("/run/apache2/apache2.pid", "/run/httpd/httpd.pid")
        )
        if p.deploy.web.vhost_file in changed and running:
            self._step("apachectl graceful")
            self._cmd(str(p.deploy.web.apachectl), "graceful")

    def _step(self, text: str) -> None:
        self.report.steps.append(text)
        self.log(("would " if self.dry_run else "") + text)

    def _cmd(self, *argv: str) -> None:
        r = self.run(list(argv), timeout=300)
        if r.returncode != 0:
            raise InstallError(f"{' '.join(argv)} failed: {(r.stderr or r.stdout).strip()}")
