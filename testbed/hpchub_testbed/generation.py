"""`hpchub-testbed generation`: the same testbed and tests on the other Debian generation.

Debian 12 (Slurm 22.05, Python 3.11) and Debian 13 (Slurm 24.11, Python 3.13): on one, the
other is built with debootstrap from the machine's own Debian mirror into a root under
/var/lib/hpchub-testbed-roots (kept for the next run). The root's cluster runs in namespaces of
its own (network, PID, mount, cgroup) so that its Slurm ports, munge socket, batch-node
namespace and cgroups never meet the host's testbed; slirp4netns gives that network a way out
to the mirror, PyPI and npm. Inside: the testbed's own package list, a venv from the root's
Python, `hpchub-testbed up`, then pytest on the core set (`-m core`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hpchub.core.files import LockBusy, file_lock

from . import nsinit, system
from .layout import Layout

ROOTS = Path("/var/lib/hpchub-testbed-roots")
GENERATIONS = {"12": "bookworm", "13": "trixie"}
"""Debian major version -> suite. Each generation tests the other."""
OTHER = {"bookworm": "trixie", "trixie": "bookworm"}
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_PACKAGES = ("debootstrap", "slirp4netns")
REPO_IN_ROOT = "/srv/hpchub"
READY = ".hpchub-root-ready"
CGROUP_NAME = "hpchub-generation"
SLIRP_DNS = "10.0.2.3"
"""The DNS forwarder slirp4netns offers inside the namespace."""
IN_ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PIP_EXTRAS = "test,singleuser"
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
"""Where Debian keeps a machine's own certificate authorities (a TLS-inspecting proxy's, say):
the root trusts what this machine trusts, or pip and npm cannot reach their registries."""
CA_ENV = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
)
"""Certificate settings passed into the root as they are (their paths are Debian's, and the
root is Debian)."""
TESTBED_ENV = ("HPCHUB_TESTBED_ACCOUNTING",)
"""The testbed's own choices that reach the root's `up` (not the name or ports: the root has
its own network, so its testbed is the main one there)."""
DEFAULT_PYTEST = ("-m", "core", "tests")


def machine_suite(debian_version: str) -> str:
    """This machine's Debian suite from /etc/debian_version ("12.11", "13.1", "trixie/sid")."""
    text = debian_version.strip()
    major = text.split(".")[0]
    if major in GENERATIONS:
        return GENERATIONS[major]
    name = text.split("/")[0]
    if name in OTHER:
        return name
    raise SystemExit(
        f"hpchub-testbed generation: /etc/debian_version says {text!r}; "
        f"it knows Debian {' and '.join(GENERATIONS)} ({', '.join(GENERATIONS.values())})"
    )


def other_suite(debian_version: str) -> str:
    return OTHER[machine_suite(debian_version)]


def mirror_uri(sources: dict[str, str], suite: str) -> str:
    """The URI this machine's apt uses for its own suite (deb822 or one-line sources)."""
    for text in sources.values():
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, v in (
                    line.split(":", 1)
                    for line in stanza.splitlines()
                    if ":" in line and not line.startswith(("#", " "))
                )
            )
            if "uris" in fields and suite in fields.get("suites", "").split():
                return fields["uris"].split()[0]
        for line in text.splitlines():
            words = line.split()
            # deb [options] URI SUITE COMPONENTS...
            words = [w for w in words if not (w.startswith("[") or w.endswith("]"))]
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return DEFAULT_MIRROR


def _apt_sources() -> dict[str, str]:
    found = {}
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.suffix in (".list", ".sources") and p.is_file():
            found[str(p)] = p.read_text(errors="replace")
    return found


@dataclass
class Timer:
    """Seconds per part, in the order the parts ran."""

    parts: dict[str, float] = field(default_factory=dict)

    def add(self, part: str, seconds: float) -> None:
        self.parts[part] = self.parts.get(part, 0.0) + seconds

    def line(self) -> str:
        total = sum(self.parts.values())
        each = ", ".join(f"{k} {v:.0f} s" for k, v in self.parts.items())
        return f"{each}; total {total:.0f} s ({total / 60:.1f} min)"


def build_root(suite: str, root: Path, mirror: str, log=print) -> None:
    """debootstrap a minimal root, made ready for a cluster that starts no service by apt."""
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"building a Debian {suite} root in {root} from {mirror}")
    r = system.sh("debootstrap", "--variant=minbase", suite, str(partial), mirror, check=False)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        shutil.rmtree(partial, ignore_errors=True)
        raise SystemExit(f"hpchub-testbed generation: debootstrap {suite} failed:\n{tail}")
    # Like this machine: apt never starts services (there is no init system to own them).
    policy = partial / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copyfile("/etc/hosts", partial / "etc/hosts")
    (partial / "etc/resolv.conf").write_text(f"nameserver {SLIRP_DNS}\n")
    (partial / READY).write_text(f"{suite} {mirror}\n")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)


def repo_files(repo: Path) -> list[str]:
    """The checkout's files as the tests should see them: tracked and new, not ignored."""
    if (repo / ".git").exists():
        r = system.sh(
            "git",
            "-C",
            str(repo),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            check=False,
        )
        if r.returncode == 0:
            return [f for f in r.stdout.split("\0") if f and (repo / f).is_file()]
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "build", "dist"}
    return [
        str(p.relative_to(repo))
        for p in repo.rglob("*")
        if p.is_file()
        and not skip & set(p.relative_to(repo).parts)
        and not any(part.endswith(".egg-info") for part in p.parts)
    ]


def copy_local_cas(root: Path) -> None:
    """This machine's own certificate authorities, for the root's ca-certificates to add."""
    if LOCAL_CAS.is_dir():
        shutil.copytree(LOCAL_CAS, root / LOCAL_CAS.relative_to("/"), dirs_exist_ok=True)


def copy_repo(repo: Path, dest: Path) -> int:
    """Replace dest's copy of the checkout (its .venv stays, to save the next pip run)."""
    dest.mkdir(parents=True, exist_ok=True)
    for child in dest.iterdir():
        if child.name == ".venv":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    files = repo_files(repo)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target, follow_symlinks=False)
    return len(files)


def _own_cgroups(proc_cgroup: str) -> dict[str, str]:
    """hierarchy key (the v1 controllers or name=..., "" for v2) -> this process's cgroup."""
    found = {}
    for line in proc_cgroup.splitlines():
        _, ctrls, path = line.split(":", 2)
        found[ctrls] = path
    return found


def _hierarchy_key(fstype: str, options: str) -> str:
    if fstype == "cgroup2":
        return ""
    return ",".join(
        o
        for o in options.split(",")
        if o not in ("rw", "ro", "relatime", "nosuid", "nodev", "noexec", "xattr", "clone_children")
    )


def make_cgroups(suite: str) -> list[Path]:
    """One cgroup per hierarchy, below this process's own, to be the root's cgroup namespace:
    the root's slurmd then keeps its slurm_<node> folders apart from the host's."""
    own = _own_cgroups(Path("/proc/self/cgroup").read_text())
    made = []
    mounts = nsinit.host_cgroup_mounts(Path("/proc/self/mounts").read_text())
    for point, fstype, options in mounts:
        if fstype == "tmpfs":
            continue
        key = _hierarchy_key(fstype, options)
        match = next((v for k, v in own.items() if set(k.split(",")) == set(key.split(","))), None)
        if match is None:
            continue
        d = Path(point + match.rstrip("/")) / f"{CGROUP_NAME}-{suite}"
        d.mkdir(exist_ok=True)
        if "cpuset" in key.split(","):
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((d.parent / f).read_text())
        made.append(d)
    return made


def remove_cgroups(dirs: list[Path]) -> None:
    """Remove the namespace's cgroups, deepest first (the daemons in them have ended)."""
    for top in dirs:
        if not top.exists():
            continue
        subs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*subs, top]:
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.25)


def _join(dirs: list[Path]):
    def join() -> None:  # runs in the child, before it execs unshare
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    return join


def steps(pytest_args: list[str], command: list[str] | None = None) -> list[dict]:
    """What runs in the root: the testbed's own packages, a venv, `up`, the tests (or
    ``command``, run from the checkout's copy with the venv first on PATH)."""
    env = {
        "PATH": IN_ROOT_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "TERM": os.environ.get("TERM", "dumb"),
        **{k: os.environ[k] for k in (*CA_ENV, *TESTBED_ENV) if k in os.environ},
    }
    venv = f"{REPO_IN_ROOT}/.venv/bin"
    apt = "/usr/bin/apt-get"
    layout = Layout()
    users = (*layout.users, layout.outsider)

    def step(phase: str, name: str, argv: list[str], show: bool = False) -> dict:
        return {
            "phase": phase,
            "name": name,
            "argv": argv,
            "cwd": REPO_IN_ROOT,
            "env": env,
            "show": show,
        }

    return [
        step("apt", "apt-get update", [apt, "update", "-qq"]),
        step(
            "apt",
            "apt-get install (the testbed's packages)",
            [apt, "install", "-y", "-qq", "--no-install-recommends", *system.APT_PACKAGES],
        ),
        step("apt", "update-ca-certificates", ["/usr/sbin/update-ca-certificates"]),
        step("pip", "venv", ["/usr/bin/python3", "-m", "venv", f"{REPO_IN_ROOT}/.venv"]),
        step("pip", "pip install", [f"{venv}/pip", "install", "-q", "--upgrade", "pip"]),
        step(
            "pip",
            "pip install the checkout",
            [f"{venv}/pip", "install", "-q", "-e", f".[{PIP_EXTRAS}]", "-e", "./testbed"],
        ),
        step("up", "hpchub-testbed up", [f"{venv}/hpchub-testbed", "up"]),
        # slurmctld keeps its queue on disk, and the last run's namespace ended without a
        # shutdown: its jobs come back RUNNING on nodes that never heard of them. Clear them.
        *(
            step("up", f"scancel {user}'s old jobs", ["/usr/bin/scancel", f"--user={user}"])
            for user in users  # scancel takes one user at a time
        ),
        step("pytest", "pytest", [f"{venv}/python", "-m", "pytest", *pytest_args], show=True)
        if command is None
        else step(
            "command",
            command[0],
            ["/usr/bin/env", f"PATH={venv}:{IN_ROOT_PATH}", *command],
            show=True,
        ),
        # Whatever the tests did: the hub, the jobs and the daemons stop the way `down` does,
        # before the namespace (and everything left in it) goes.
        {**step("down", "hpchub-testbed down", [f"{venv}/hpchub-testbed", "down"]), "always": True},
    ]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _netns(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def run_in_namespaces(root: Path, suite: str, last_steps: list[dict], timer: Timer, log) -> int:
    """unshare + nsinit as PID 1, slirp4netns for the way out; the tests' exit status."""
    spec_file = ROOTS / f"{suite}.spec.json"
    log_file = ROOTS / f"{suite}.log"
    times_file = ROOTS / f"{suite}.times.json"
    log_file.write_text("")
    times_file.unlink(missing_ok=True)
    spec = {
        "root": str(root),
        "log": str(log_file),
        "times": str(times_file),
        "steps": last_steps,
    }
    spec_file.write_text(json.dumps(spec, indent=1))
    cgroups = make_cgroups(suite)
    host_net = _netns(os.getpid())
    argv = [
        "unshare",
        "--cgroup",
        "--net",
        "--pid",
        "--mount",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "--",
        sys.executable,
        "-m",
        "hpchub_testbed.nsinit",
        str(spec_file),
    ]
    log(f"running the {suite} cluster in its own namespaces (details: {log_file})")
    proc = subprocess.Popen(argv, preexec_fn=_join(cgroups))  # noqa: S603,PLW1509 - fixed argv
    slirp = None
    try:
        end = time.monotonic() + 10
        while _netns(proc.pid) in ("", host_net) and time.monotonic() < end:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None and _netns(proc.pid) not in ("", host_net):
            with open(log_file, "ab") as out:
                slirp = subprocess.Popen(  # noqa: S603 - fixed argv
                    [
                        "slirp4netns",
                        "--configure",
                        "--mtu=65520",
                        "--disable-host-loopback",
                        str(proc.pid),
                        "tap0",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
        rc = 130
    finally:
        if slirp is not None:
            slirp.terminate()
            slirp.wait(10)
        remove_cgroups(cgroups)
    if times_file.exists():
        for phase, seconds in json.loads(times_file.read_text()).items():
            timer.add(phase, seconds)
    if rc != 0 and not ({"pytest", "command"} & set(timer.parts)):
        tail = _tail(log_file)
        if tail:
            print(f"generation: the end of {log_file}:\n{tail}", file=sys.stderr)
    return rc


def run(
    pytest_args: list[str] | None = None,
    fresh: bool = False,
    command: list[str] | None = None,
    log=print,
) -> int:
    """Build (or reuse) the other generation's root and run the core set (or ``command``)
    inside it, with its testbed up; the exit status of the tests (or the command)."""
    if os.geteuid() != 0:
        raise SystemExit("hpchub-testbed generation must run as root (debootstrap, namespaces)")
    layout = Layout()
    if not (layout.repo / "pyproject.toml").exists():
        raise SystemExit(f"hpchub-testbed generation: {layout.repo} is not an hpchub checkout")
    own = machine_suite(Path("/etc/debian_version").read_text())
    suite = OTHER[own]
    system.ensure_packages(HOST_PACKAGES, log=log)
    ROOTS.mkdir(parents=True, exist_ok=True)
    try:
        with file_lock(ROOTS / f"{suite}.lock", wait=0):
            return _run_locked(suite, own, layout, pytest_args, fresh, command, log)
    except LockBusy:
        raise SystemExit(
            f"hpchub-testbed generation: another run uses the {suite} root; wait for it to end"
        ) from None


def _run_locked(suite, own, layout, pytest_args, fresh, command, log) -> int:
    root = ROOTS / suite
    timer = Timer()
    if fresh and root.exists():
        log(f"removing the old root {root}")
        shutil.rmtree(root)
    if not (root / READY).exists():
        t0 = time.monotonic()
        build_root(suite, root, mirror_uri(_apt_sources(), own), log=log)
        timer.add("debootstrap", time.monotonic() - t0)
    # A new PID namespace reuses small pids: a pid file of the last run could name a live
    # process of this one (/run is a fresh tmpfs; the testbed's own run folder is on disk).
    for pidfile in (root / layout.run.relative_to("/")).glob("*.pid"):
        pidfile.unlink()
    copy_local_cas(root)
    t0 = time.monotonic()
    n = copy_repo(layout.repo, root / REPO_IN_ROOT.lstrip("/"))
    timer.add("copy", time.monotonic() - t0)
    log(f"copied {n} files of {layout.repo} to {REPO_IN_ROOT} in the root")
    todo = steps(list(pytest_args or DEFAULT_PYTEST), command)
    rc = run_in_namespaces(root, suite, todo, timer, log)
    log(f"Debian {suite} ({'passed' if rc == 0 else f'exit status {rc}'}): {timer.line()}")
    return rc
