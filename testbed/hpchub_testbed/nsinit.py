"""PID 1 of the other generation's namespaces: mount the root, wait for the network, run the
steps inside the root one after another, reap every orphan, exit with the last step's status.

Started by `hpchub-testbed generation` through `unshare` (net, PID, mount and cgroup
namespaces); it runs on the host's Python, and each step runs chrooted into the root. Steps
are given as JSON: {"root": ..., "log": ..., "times": ..., "steps": [{"name", "argv", "cwd",
"env", "show"}]}. A step that fails stops the sequence; the last step (the tests) decides the
exit status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

NETWORK_WAIT = 20.0


def _mount(*argv: str) -> None:
    r = subprocess.run(["mount", *argv], capture_output=True, text=True)  # noqa: S603,S607
    if r.returncode != 0:
        raise SystemExit(f"generation: mount {' '.join(argv)} failed: {r.stderr.strip()}")


def host_cgroup_mounts(mounts_text: str) -> list[tuple[str, str, str]]:
    """(mount point, type, options) of each cgroup hierarchy mounted under /sys/fs/cgroup."""
    found = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in ("cgroup", "cgroup2", "tmpfs"):
            continue
        point = fields[1]
        if point == "/sys/fs/cgroup" or point.startswith("/sys/fs/cgroup/"):
            found.append((point, fields[2], fields[3]))
    return found


def mount_root(root: Path) -> None:
    """The root as a mount point of its own (``ip netns`` needs that), with /proc, /sys, the
    cgroup hierarchies as this namespace sees them, /dev, and a fresh /run and /tmp (stale
    pid files from an earlier run must not name live processes of this run)."""
    _mount("--bind", str(root), str(root))
    _mount("-t", "proc", "proc", str(root / "proc"))
    _mount("-t", "sysfs", "sysfs", str(root / "sys"))
    for point, fstype, options in host_cgroup_mounts(Path("/proc/self/mounts").read_text()):
        target = root / point.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        if fstype == "tmpfs":  # often read-only on the host; the hierarchies' folders go in it
            options = ",".join(o for o in options.split(",") if o != "ro")
        _mount("-t", fstype, "-o", options, fstype if fstype == "tmpfs" else "cgroup", str(target))
    _mount("--rbind", "/dev", str(root / "dev"))
    for d, mode in (("run", "0755"), ("tmp", "1777")):
        _mount("-t", "tmpfs", "-o", f"mode={mode}", "tmpfs", str(root / d))
    # What a booted Debian has in /run (/var/lock points there; Apache's tools lock in it).
    lock = root / "run/lock"
    lock.mkdir()
    lock.chmod(0o1777)


def has_default_route(route_text: str) -> bool:
    """Whether /proc/net/route names a default route (destination 00000000)."""
    return any(line.split()[1:2] == ["00000000"] for line in route_text.splitlines()[1:])


def wait_for_network() -> None:
    """slirp4netns, started by the host side, configures tap0 and a default route."""
    end = time.monotonic() + NETWORK_WAIT
    while time.monotonic() < end:
        if has_default_route(Path("/proc/net/route").read_text()):
            return
        time.sleep(0.2)
    raise SystemExit(f"generation: no network in the namespace after {NETWORK_WAIT:g} s")


def _spawn(root: Path, step: dict, log_fd: int) -> int:
    pid = os.fork()
    if pid == 0:  # the child: chroot, then exec (no Python code of ours runs after this)
        try:
            os.chroot(root)
            os.chdir(step.get("cwd", "/"))
            if not step.get("show"):
                os.dup2(log_fd, 1)
                os.dup2(log_fd, 2)
            os.execve(step["argv"][0], step["argv"], step["env"])  # noqa: S606 - fixed argv
        except OSError as err:
            os.write(2, f"generation: cannot run {step['argv'][0]}: {err}\n".encode())
        os._exit(127)
    return pid


def run_steps(spec: dict) -> int:
    """Run each step chrooted, reaping all children meanwhile; record each step's time."""
    root = Path(spec["root"])
    times: dict[str, float] = {}
    status = 0
    failed = False
    with open(spec["log"], "ab") as log:
        for step in spec["steps"]:
            if failed and not step.get("always"):
                continue
            log.write(f"\n==> {step['name']}: {' '.join(step['argv'])}\n".encode())
            log.flush()
            t0 = time.monotonic()
            pid = _spawn(root, step, log.fileno())
            while True:
                done, wstatus = os.wait()  # any child: orphans re-parented to us are reaped
                if done == pid:
                    code = os.waitstatus_to_exitcode(wstatus)
                    break
            times[step["phase"]] = times.get(step["phase"], 0.0) + time.monotonic() - t0
            Path(spec["times"]).write_text(json.dumps(times))
            if code == 0:
                print(f"generation: {step['name']} done", flush=True)
                continue
            if not step.get("show"):
                print(
                    f"generation: step {step['name']} failed ({code}); "
                    f"its output is in {spec['log']}",
                    file=sys.stderr,
                    flush=True,
                )
            if not failed and not step.get("always"):
                # The first failure decides the exit status; an always-step's does not.
                failed, status = True, (code if code > 0 else 128 - code)
    return status


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    mount_root(Path(spec["root"]))
    wait_for_network()
    return run_steps(spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
