"""Switching the bench testbed's hub between the compared set-ups, and putting it back.

The hub runs as its own user (``BENCH_HUB_USER``) while benchmarking, so that the controller's
per-user RPC counts separate this hub's queries from those of other hubs on the same cluster
(they all run as jupyterhub-daemon). Everything installed here is temporary and undone by
``restore``: the config.d file, the extra sudoers files, the /etc/hosts line, batchspawner.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hpchub.config.loader import load_site
from hpchub.core.files import atomic_write
from hpchub.core.templates import render_from
from hpchub.deploy import render
from hpchub.deploy.checks import check_sudoers
from hpchub.deploy.paths import DeployPaths
from hpchub_testbed import accounting, cluster, hub, procs, scraper, services, system
from hpchub_testbed.layout import Layout

from .procstat import children_of

BENCH_HUB_USER = "hpchub-bench-hub"
CONFIG_D_NAME = "90-bench.py"
HOSTS_MARK = "# hpchub bench: batch node name for batchspawner (temporary)"
BATCHSPAWNER = "batchspawner==1.3.0"


@dataclass(frozen=True)
class BenchPaths:
    """Where the benchmark keeps its state on the testbed."""

    layout: Layout

    @property
    def state(self) -> Path:
        return self.layout.state / "bench"

    @property
    def users_file(self) -> Path:
        return self.state / "users.json"

    @property
    def token_file(self) -> Path:
        return self.layout.hub_data / "bench-token"

    @property
    def culler_token_file(self) -> Path:
        return self.layout.hub_data / "bench-culler-token"

    @property
    def standin(self) -> Path:
        return self.layout.prefix / "bench" / "standin.py"

    @property
    def config_d_file(self) -> Path:
        return self.layout.etc / "jupyterhub_config.d" / CONFIG_D_NAME

    @property
    def sudoers_hub(self) -> Path:
        return Path(f"/etc/sudoers.d/hpchub-{self.layout.name}-benchhub")

    @property
    def sudoers_baseline(self) -> Path:
        return Path(f"/etc/sudoers.d/hpchub-{self.layout.name}-baseline")

    @property
    def internal_api(self) -> str:
        return f"http://127.0.0.1:{self.layout.hub_port}/hub/api"


def render_bench(name: str, **values) -> str:
    """A template of the benchmark (bench/templates), with hpchub's one set of Jinja settings."""
    return render_from("bench", name, **values)


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text, mode)


def install_sudoers(target: Path, text: str) -> None:
    """Check ``text`` with the product's visudo check before putting it in place."""
    with tempfile.TemporaryDirectory(prefix="hpchub-bench-") as tmp:
        candidate = Path(tmp) / "sudoers"
        candidate.write_text(text)
        result = check_sudoers(candidate)
    if not result.ok:
        raise RuntimeError(f"sudoers for the benchmark failed {result.tool}: {result.output}")
    atomic_write(target, text, 0o440)


def ensure_tokens(paths: BenchPaths) -> tuple[str, str]:
    """The bench services' API tokens (random, mode 600, readable by the bench hub user)."""
    out = []
    for f in (paths.token_file, paths.culler_token_file):
        if not f.exists():
            _write(f, secrets.token_hex(32) + "\n", 0o600)
        out.append(f.read_text().strip())
    return out[0], out[1]


def ensure_hub_user() -> None:
    system.ensure_user(BENCH_HUB_USER, system=True, groups=("shadow",))


def _bench_deploy(paths: BenchPaths) -> DeployPaths:
    """The testbed's deployment with the bench hub user and its own sudoers file."""
    layout = paths.layout
    site = load_site(str(layout.site_file))
    deploy = site.deploy.model_copy(
        update={"hub_user": BENCH_HUB_USER, "sudoers_file": paths.sudoers_hub}
    )
    return DeployPaths(site.model_copy(update={"deploy": deploy}), layout.site_file)


def hub_sudoers(paths: BenchPaths) -> str:
    """The product's own sudo rule (`hpchub install`'s renderer) for the bench hub user; its
    file name gives it alias names of its own."""
    return render.sudoers(_bench_deploy(paths))


def ensure_operator(paths: BenchPaths) -> None:
    """The bench hub user sees every job under PrivateData, by the product's own script."""
    with tempfile.TemporaryDirectory(prefix="hpchub-bench-") as tmp:
        script = Path(tmp) / "hub-operator.sh"
        script.write_text(render.slurm_operator(_bench_deploy(paths)))
        accounting.ensure_operator(script)


def baseline_sudoers(layout: Layout) -> str:
    """What batchspawner needs: sbatch, squeue and scancel with any arguments, keeping the env."""
    return render_bench("sudoers-baseline.j2", hub_user=BENCH_HUB_USER, group=layout.group)


def install_standin(paths: BenchPaths) -> None:
    """The stand-in server, root-owned in the prefix, run by the env's own Python."""
    src = Path(__file__).with_name("standin.py").read_text()
    shebang = f"#!{paths.layout.env / 'bin' / 'python3'}\n"
    _write(paths.standin, shebang + src.split("\n", 1)[1], 0o755)
    os.chmod(paths.standin.parent, 0o755)  # noqa: S103 - users run it in their jobs


def write_config_d(paths: BenchPaths, **values) -> None:
    """The phase's config.d file (world-readable: it holds no secret, only token file paths)."""
    text = render_bench(
        "config_d.py.j2",
        token_file=str(paths.token_file),
        culler_token_file=str(paths.culler_token_file),
        **values,
    )
    _write(paths.config_d_file, text, 0o644)


def _hub_data_owner(layout: Layout, user: str) -> None:
    subprocess.run(["chown", "-R", f"{user}:{user}", str(layout.hub_data)], check=True)
    db = load_site(str(layout.site_file)).hub.database
    if db is not None and db.password_file is not None:
        # PostgreSQL's password file (mode 600) goes with the hub: the bench hub user reads it.
        shutil.chown(db.password_file, user, user)
    scraper.ensure_token(layout, user)  # the hub reads the metrics scraper's token at start
    for f in ("hub.log",):
        p = layout.logs / f
        if p.exists():
            shutil.chown(p, user, user)


def stop_hub(layout: Layout) -> None:
    procs.stop("hub", layout.run)


def start_hub(layout: Layout, as_user: str = BENCH_HUB_USER) -> None:
    """Start the testbed's hub from its own unit file, as ``as_user`` (without waiting)."""
    _hub_data_owner(layout, as_user)
    unit = DeployPaths(load_site(str(layout.site_file)), layout.site_file).hub_unit
    services.start_unit("hub", unit, layout.run, user=as_user, netns=layout.hub_netns_path)


def restart_hub(layout: Layout, as_user: str = BENCH_HUB_USER, log=print) -> int:
    """Restart the testbed's hub from its own unit file, as ``as_user``; returns the pid of the
    jupyterhub process."""
    stop_hub(layout)
    log(f"restarting the hub as {as_user}")
    start_hub(layout, as_user)
    try:
        procs.wait_for(lambda: hub.status(layout)["hub_answers"], 120, "the hub")
    except TimeoutError:
        tail = (layout.logs / "hub.log").read_text(errors="replace").splitlines()[-25:]
        raise RuntimeError(
            "the hub did not start; the end of its log:\n" + "\n".join(tail)
        ) from None
    return hub_pid(layout)


def hub_pid(layout: Layout) -> int:
    """The jupyterhub process (a child of the runuser that procs started)."""
    outer = procs.read_pid(layout.run / "hub.pid")
    if outer is None:
        raise RuntimeError("the hub is not running")
    kids = children_of(outer)
    return kids[0] if kids else outer


def add_hosts_entry() -> None:
    """batchspawner connects to the node *name* squeue prints; the batch node has no DNS entry."""
    hosts = Path("/etc/hosts")
    text = hosts.read_text()
    if HOSTS_MARK in text:
        return
    line = f"{cluster.BATCH_ADDR} {cluster.BATCH_NODE} {HOSTS_MARK}\n"
    with open(hosts, "a") as f:  # in place: /etc/hosts may be a bind mount
        f.write(("" if text.endswith("\n") else "\n") + line)


def remove_hosts_entry() -> None:
    hosts = Path("/etc/hosts")
    text = hosts.read_text()
    if HOSTS_MARK not in text:
        return
    kept = "".join(ln for ln in text.splitlines(keepends=True) if HOSTS_MARK not in ln)
    with open(hosts, "w") as f:
        f.write(kept)


def pip(layout: Layout, *args: str) -> None:
    old = os.umask(0o022)
    try:
        # The benchmark runs on the hub's host, whose firewall keeps the package index out:
        # pip runs in the machine's own network (bench/run keeps it open on this descriptor),
        # as an admin installing software would.
        argv = [str(layout.env / "bin" / "pip"), "-q", *args]
        fd = int(os.environ.get("HPCHUB_BENCH_MACHINE_NETNS_FD", "-1"))
        if fd >= 0:
            argv = ["nsenter", f"--net=/proc/self/fd/{fd}", *argv]
        subprocess.run(argv, check=True, capture_output=True, pass_fds=(fd,) if fd >= 0 else ())
    finally:
        os.umask(old)


def install_baseline(paths: BenchPaths, log=print) -> None:
    """batchspawner 1.3.0 in the testbed's env, its sudo rule and the batch node's name."""
    log(f"installing {BATCHSPAWNER} into {paths.layout.env} (for the baseline only)")
    pip(paths.layout, "install", "--no-deps", BATCHSPAWNER)
    install_sudoers(paths.sudoers_baseline, baseline_sudoers(paths.layout))
    add_hosts_entry()


def remove_baseline(paths: BenchPaths, log=print) -> None:
    """Undo install_baseline; safe to call when nothing was installed."""
    with contextlib.suppress(subprocess.CalledProcessError):
        pip(paths.layout, "uninstall", "-y", "batchspawner")
    paths.sudoers_baseline.unlink(missing_ok=True)
    remove_hosts_entry()
    log("batchspawner, its sudo rule and the hosts line are removed")


def prepare(paths: BenchPaths) -> tuple[str, str]:
    """Bench hub user, its sudo rule, tokens, stand-in; returns the two service tokens."""
    ensure_hub_user()
    install_sudoers(paths.sudoers_hub, hub_sudoers(paths))
    ensure_operator(paths)
    install_standin(paths)
    paths.state.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.state, 0o700)
    return ensure_tokens(paths)


def restore(paths: BenchPaths, log=print) -> None:
    """Put the testbed back as `hpchub-testbed up` left it (hub as its usual user)."""
    remove_baseline(paths, log=log)
    paths.config_d_file.unlink(missing_ok=True)
    for f in (paths.token_file, paths.culler_token_file):
        f.unlink(missing_ok=True)
    layout = paths.layout
    restart_hub(layout, as_user=layout.hub_user, log=log)
    paths.sudoers_hub.unlink(missing_ok=True)
