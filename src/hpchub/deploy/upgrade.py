"""`hpchub upgrade` and `hpchub rollback`: a new release under a running hub, and back.

The order keeps the hub's state safe and users' servers running: build and check the new
release while the old hub runs; back up; switch `current`; stop the hub; bring the database to
the new schema (`jupyterhub upgrade-db`, as the hub user); start the hub. The proxy is its own
service and keeps routing to running servers, which keep their own release (their job scripts
name it), so they answer throughout. When the database step fails, `current` goes back and the
old hub starts again; the backup's folder is named.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .backup import DEFAULT_OUT, backup
from .database import db_url, pg_env
from .paths import DeployPaths
from .releases import ReleaseRoot, build_release, rollback, switch
from .software import SoftwareError

Run = Callable[..., subprocess.CompletedProcess]


class UpgradeError(Exception):
    """An upgrade or rollback stopped; the message says where things stand and what to do."""


@dataclass(frozen=True)
class HubControl:
    """How to stop and start the hub (systemd on a hub node; the testbed has its own)."""

    stop: Callable[[], None]
    start: Callable[[], None]


def systemd_control(paths: DeployPaths, run: Run = subprocess.run) -> HubControl:
    """Stop and start the hub's unit with systemctl (the proxy's unit is left running)."""
    unit = paths.deploy.systemd.hub_unit

    def call(verb: str) -> None:
        r = run(["systemctl", verb, unit], capture_output=True, text=True)
        if r.returncode != 0:
            raise UpgradeError(f"systemctl {verb} {unit} failed: {(r.stderr or r.stdout).strip()}")

    return HubControl(stop=lambda: call("stop"), start=lambda: call("start"))


def upgrade_db(paths: DeployPaths, release: Path, run: Run = subprocess.run) -> None:
    """`jupyterhub upgrade-db` of ``release`` on the hub's database, as the hub user."""
    argv = [
        "runuser",
        "-u",
        paths.deploy.hub_user,
        "--",
        str(release / "bin" / "jupyterhub"),
        "upgrade-db",
        f"--JupyterHub.db_url={db_url(paths.site)}",
    ]
    env = pg_env()  # libpq reads the password file named in the URL, nothing from root's env
    r = run(argv, capture_output=True, text=True, cwd=str(paths.data_dir), env=env, timeout=600)
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-10:])
        raise UpgradeError(f"jupyterhub upgrade-db failed:\n{tail}")


def _kernel_results(paths: DeployPaths, release: Path, run: Run) -> dict[str, dict]:
    """`hpchub kernels test --json` with ``release``'s hpchub: {kernel name: result}."""
    argv = [str(release / "bin" / "hpchub"), "--config", str(paths.site_path)]
    r = run([*argv, "kernels", "test", "--json"], capture_output=True, text=True, timeout=900)
    try:
        return {k["name"]: k for k in json.loads(r.stdout)["results"]}
    except (ValueError, KeyError, TypeError):
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-10:])
        raise SoftwareError(f"hpchub kernels test failed with {release}:\n{tail}") from None


def check_kernels(paths: DeployPaths, old: Path | None, new: Path, run: Run) -> None:
    """Where this site has kernels: every kernel that starts with the old release starts with
    the new one (a kernel that was broken before does not stop the upgrade)."""
    kernels = paths.site.kernels.kernels_dir
    if not (kernels.is_dir() and any(kernels.iterdir())):
        return
    before = _kernel_results(paths, old, run) if old else {}
    after = _kernel_results(paths, new, run)
    broken = [
        f"{name}: {res.get('reason', '')}"
        for name, res in after.items()
        if not res.get("ok") and (old is None or before.get(name, {}).get("ok"))
    ]
    if broken:
        raise SoftwareError(
            "kernels that start with the current release fail with the new one:\n"
            + "\n".join(broken)
        )


def upgrade(
    paths: DeployPaths,
    hub: HubControl,
    *,
    source: str | None = None,
    python: str | None = None,
    backup_dir: Path = DEFAULT_OUT,
    log: Callable[[str], None] = print,
    run: Run = subprocess.run,
) -> tuple[Path, Path]:
    """Build, check, back up, switch, upgrade the database, restart; (release, backup)."""
    root = ReleaseRoot.of(paths.prefix)
    release = build_release(root, python=python, source=source, log=log, run=run)
    old_release = root.releases / root.current() if root.current() else None
    try:
        check_kernels(paths, old_release, release, run)
    except SoftwareError:
        shutil.rmtree(release, ignore_errors=True)
        raise
    saved = backup(paths, backup_dir, log=lambda m: log(f"backup: {m}"))
    log(f"backup: {saved}")
    old = switch(root, release.name, log)
    hub.stop()
    try:
        upgrade_db(paths, release, run)
    except UpgradeError as err:
        if old is not None:
            switch(root, old, log)
        hub.start()
        raise UpgradeError(
            f"{err}\ncurrent is back on {old}; the hub was started again. "
            f"The backup taken before is {saved}."
        ) from None
    hub.start()
    log(f"upgraded to {release.name}")
    return release, saved


def roll_back(paths: DeployPaths, hub: HubControl, log: Callable[[str], None] = print) -> str:
    """Return to the previous release and restart the hub; the release now current.

    A database that a newer JupyterHub upgraded may not suit the older one: restore the backup
    taken before the upgrade (`hpchub restore`) while the hub is stopped, if the hub says so.
    """
    root = ReleaseRoot.of(paths.prefix)
    try:
        name = rollback(root, log)
    except SoftwareError as err:
        raise UpgradeError(str(err)) from None
    hub.stop()
    hub.start()
    return name
