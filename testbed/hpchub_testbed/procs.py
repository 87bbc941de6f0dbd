"""Start detached daemons, remember their pids, stop exactly those pids."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (PID 1 here does not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def in_this_pid_namespace(pid: int) -> bool:
    """Whether ``pid`` belongs to this machine's processes, not to a cluster that another
    namespace runs (a root built for another Slurm generation shows its daemons here too)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def start(
    name: str,
    argv: Sequence[str],
    run_dir: Path,
    log_file: Path,
    *,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str = "/",
    umask: int = -1,
    netns: Path | None = None,
) -> int:
    """Start ``argv`` in its own session (as ``user`` if given, in the network namespace
    ``netns`` if given), log to ``log_file``."""
    pidfile = run_dir / f"{name}.pid"
    existing = read_pid(pidfile)
    if existing:
        return existing
    full = list(argv)
    if user:
        full = ["/usr/sbin/runuser", "-u", user, "--", *full]
    if netns is not None:
        # nsenter keeps the machine's mounts (the cgroup tree); `ip netns exec` would hide them.
        full = ["nsenter", f"--net={netns}", *full]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            full,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            umask=umask,
            start_new_session=True,
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def record(name: str, pid: int, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / f"{name}.pid").write_text(f"{pid}\n")


def stop(name: str, run_dir: Path, timeout: float = 15) -> bool:
    """Stop the process recorded for ``name`` (TERM, then KILL); True if one was running."""
    pidfile = run_dir / f"{name}.pid"
    pid = read_pid(pidfile)
    pidfile.unlink(missing_ok=True)
    if pid is None:
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return True
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not alive(pid):
                return True
            time.sleep(0.1)
    return True


def wait_for(check, timeout: float, what: str, interval: float = 0.2):
    """Call ``check`` until it returns a truthy value; raise TimeoutError naming ``what``."""
    end = time.monotonic() + timeout
    last_err = None
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
        except Exception as err:  # noqa: BLE001 - reported below if it never succeeds
            last_err = err
        time.sleep(interval)
    raise TimeoutError(
        f"{what} did not come up within {timeout:g} s" + (f": {last_err}" if last_err else "")
    )
