"""Doctor's checks of the hub's own files: secrets, the users' environment, the hub's
configuration, and whether the installed system files are what the site file renders."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..core.names import user_name
from ..deploy.render import render_all
from ..deploy.secrets import secret_files
from ..deploy.software import writable_by_others
from .deployment import Deployment
from .findings import Finding, all_ok, error, ok, warning

FIXED_JUPYTERHUB = (5, 4, 5)
"""JupyterHub 5.4.5 fixed CVE-2026-40864 (XSRF bypass with Sec-Fetch-Mode: no-cors)."""


def _owner(path: Path) -> str:
    return user_name(path.stat().st_uid)


def check_secrets(d: Deployment) -> list[Finding]:
    """Secret files exist, mode 600, owned by who reads them; the state folder is private."""
    name = "secrets"
    data = d.paths.data_dir
    if not data.is_dir():
        return [error(name, f"{data} does not exist", "run `hpchub install`")]
    out = []
    mode = data.stat().st_mode & 0o777
    if mode & 0o077:
        what = f"{data} (database, cookie secret) is mode {mode:o}: others can look inside"
        out.append(error(name, what, f"chmod 700 {data}"))
    if _owner(data) != d.hub_user:
        out.append(error(name, f"{data} belongs to {_owner(data)}", f"chown {d.hub_user} {data}"))
    for s in secret_files(d.paths):
        if not s.path.exists():
            out.append(error(name, f"{s.path} ({s.what}) is missing", "run `hpchub install`"))
            continue
        m = s.path.stat().st_mode & 0o777
        if m & 0o077:
            what = f"{s.path} ({s.what}) is mode {m:o}: others can read it"
            fix = f"chmod 600 {s.path}, then renew the secret (it may have been read)"
            out.append(error(name, what, fix))
        if _owner(s.path) != s.owner:
            what = f"{s.path} belongs to {_owner(s.path)}, not {s.owner}"
            out.append(error(name, what, f"chown {s.owner}:{s.group} {s.path}"))
    return all_ok(out, name, "secret files are mode 600, owned by who reads them")


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
    install = f"hpchub install --software --prefix {prefix}"
    # The server command of every job (it adopts the launcher's socket).
    if not (prefix / "bin" / "hpchub-jupyterhub-singleuser").exists():
        return [error(name, f"{prefix}/bin/hpchub-jupyterhub-singleuser does not exist", install)]
    out = []
    loose = list(writable_by_others(prefix))
    if loose:
        shown = ", ".join(str(p) for p in loose[:3])
        what = (
            f"{len(loose)} entries are writable by group or others (e.g. {shown}): any user "
            "could change the code every server runs"
        )
        out.append(error(name, what, f"chmod -R go-w {prefix}"))
    strangers = _foreign_owned(prefix, {0, prefix.stat().st_uid})
    if strangers:
        what = (
            f"{len(strangers)} entries belong to neither root nor the owner of {prefix} "
            f"(e.g. {strangers[0]})"
        )
        out.append(error(name, what, f"chown -R {_owner(prefix)} {prefix}"))
    for parent in prefix.parents:
        st = parent.stat()
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            what = (
                f"{parent} (above the environment) is writable by others: they could swap "
                "the whole environment"
            )
            out.append(error(name, what, f"chmod go-w {parent}"))
    version = _jupyterhub_version(prefix)
    if version is not None and version < FIXED_JUPYTERHUB:
        shown = ".".join(map(str, version))
        what = f"JupyterHub {shown} in {prefix} has the XSRF bypass CVE-2026-40864"
        out.append(error(name, what, f"upgrade it: {install}"))
    return all_ok(out, name, f"{prefix} is readable by users and writable only by its owner")


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
    files = sorted(config_d.glob("*.py")) if config_d.is_dir() else []
    loose = [p for p in files if p.stat().st_mode & 0o022 or p.stat().st_uid != 0]
    if loose:
        what = (
            f"{loose[0]} can be changed by someone other than root, and the hub (and this "
            "check) runs it"
        )
        return [error(name, what, f"chown root {loose[0]} && chmod go-w {loose[0]}")]
    if not d.paths.config_py.exists():
        return [error(name, f"{d.paths.config_py} is missing", "run `hpchub install`")]
    try:
        cfg = effective_config(d.paths.config_py, d.paths.site_path)
    except Exception as err:  # noqa: BLE001 - the admin's Python may raise anything
        what = f"loading {d.paths.config_py} failed: {err}"
        return [error(name, what, "fix the file (or the jupyterhub_config.d files it loads)")]
    value = True
    for section in ("Spawner", "SlurmSpawner"):
        if section in cfg and "disable_user_config" in cfg[section]:
            value = cfg[section]["disable_user_config"]
    if value is not True:
        what = "users' ~/.jupyter configuration is honoured by their servers"
        fix = (
            "set singleuser.disable_user_config: true and remove any "
            "c.Spawner.disable_user_config = False from jupyterhub_config.d"
        )
        return [error(name, what, fix)]
    return [ok(name, "single-user servers ignore users' own Jupyter configuration")]


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
        what = "differ from what the site file renders: " + ", ".join(stale)
        return [warning(name, what, "hpchub install --dry-run (to see how), then hpchub install")]
    return [ok(name, "every installed file matches the site file")]
