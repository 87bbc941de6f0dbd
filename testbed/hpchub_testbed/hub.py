"""The hub side of the testbed: software prefix, site file, system files, proxy and hub."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

from hpchub.config.loader import parse_site_text
from hpchub.config.models import SiteConfig
from hpchub.core.files import atomic_write, set_owner_mode
from hpchub.core.templates import render_from
from hpchub.deploy.install import Installer, Report
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.releases import ReleaseRoot, install_release
from hpchub.deploy.upgrade import HubControl

from . import hubhost, procs, scraper, services, testmodules
from .cluster import BATCH_NODE, CLUSTER_NETWORK, CONTROLLER_ADDR
from .courses import courses_dir
from .layout import Layout
from .system import sh


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((root / "src").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    h.update((root / "pyproject.toml").read_bytes())
    return h.hexdigest()


def ensure_software(layout: Layout, log=print) -> None:
    """A root-owned, world-readable release (from the system Python) holding hub, lab and
    hpchub, built, checked and made current by `hpchub install --software`'s own code from this
    checkout. Running servers keep their release; the oldest beyond KEEP_RELEASES go."""
    marker = layout.prefix / ".hpchub-source"
    digest = _tree_hash(layout.repo)
    if not marker.exists() or marker.read_text().strip() != digest or not layout.env.exists():
        log(f"installing hpchub as a new release under {layout.prefix}")
        layout.prefix.mkdir(mode=0o755, parents=True, exist_ok=True)
        install_release(layout.prefix, python="/usr/bin/python3", source=str(layout.repo), log=log)
        marker.write_text(digest + "\n")
        prune_releases(ReleaseRoot(layout.prefix), log=log)
    # Users read and run it; nobody but root writes it.
    sh("chown", "-R", "root:root", str(layout.prefix))
    sh("chmod", "-R", "go-w,a+rX", str(layout.prefix))


KEEP_RELEASES = 3
"""Releases a testbed keeps (current and previous always stay): each is ~400 MB."""


def prune_releases(root: ReleaseRoot, keep: int = KEEP_RELEASES, log=print) -> None:
    """Remove the oldest releases beyond ``keep``, never current or previous."""
    names = root.names()
    spare = {root.current(), root.previous()}
    for name in names[: max(0, len(names) - keep)]:
        if name not in spare:
            log(f"removing the old release {name}")
            shutil.rmtree(root.releases / name)


def hub_control(layout: Layout, site: SiteConfig) -> HubControl:
    """Stop and start this testbed's hub from its unit file (no systemd here)."""
    paths = DeployPaths(site, layout.site_file)

    def start() -> None:
        services.start_unit("hub", paths.hub_unit, layout.run, netns=layout.hub_netns_path)
        procs.wait_for(lambda: hub_answers(layout), 120, "the hub")

    return HubControl(stop=lambda: procs.stop("hub", layout.run), start=start)


def site_text(
    layout: Layout,
    proxy_bin: str,
    jupyter_node: str,
    database: dict | None = None,
    code_server: Path | None = None,
) -> str:
    """The test bed's site file: hub, Slurm, single-user and the deploy section."""
    return render_from(
        "hpchub_testbed",
        "hpchub.yaml.j2",
        public_port=layout.public_port,
        hub_port=layout.hub_port,
        hub_addr=layout.hub_addr,
        machine_addr=layout.machine_addr,
        mail_relay_port=layout.mail_relay_port,
        cluster_network=CLUSTER_NETWORK,
        apachectl=str(layout.apachectl),
        apache_confdir=str(layout.apache_confdir),
        proxy_api_port=layout.proxy_api_port,
        group=layout.group,
        realm=layout.realm,
        hub_data=str(layout.hub_data),
        config_d=str(layout.etc / "jupyterhub_config.d"),
        env=str(layout.env),
        controller_addr=CONTROLLER_ADDR,
        hub_user=layout.hub_user,
        etc=str(layout.etc),
        logs=str(layout.logs),
        sudoers_file=str(layout.sudoers_file),
        logrotate_file=str(layout.logrotate_file),
        proxy_command=proxy_bin,
        unit_prefix=layout.unit_prefix,
        https_port=layout.https_port,
        http_port=layout.http_port,
        tls_certificate=str(layout.tls_dir / "cert.pem"),
        tls_key=str(layout.tls_dir / "key.pem"),
        gate_htpasswd=str(layout.gate_htpasswd),
        jupyter_node=jupyter_node,
        batch_node=BATCH_NODE,
        hub_name=layout.hub_name,
        shared_dir=str(layout.prefix / "share"),
        testmodules=str(testmodules.MODULEFILES),
        courses_dir=str(courses_dir(layout)),
        course_member=layout.users[0],
        scraper=scraper.SCRAPER,
        scraper_token_file=str(scraper.token_file(layout)),
        database=database,
        code_server=str(code_server) if code_server else None,
    )


def load_site_text(text: str, path: Path) -> SiteConfig:
    return parse_site_text(text, path)


def write_site(layout: Layout, text: str) -> bool:
    """Write the site file; True if it changed."""
    layout.etc.mkdir(parents=True, exist_ok=True)
    return _write(layout.site_file, text, 0o644)


def _write(path: Path, text: str, mode: int) -> bool:
    if path.exists() and path.read_text() == text:
        set_owner_mode(path, mode)
        return False
    atomic_write(path, text, mode)
    return True


def migrate_proxy_token(paths: DeployPaths) -> None:
    """Older test beds kept the proxy token bare in proxy-auth-token: keep using that value,
    so that a proxy still running with it keeps working with the restarted hub."""
    old = paths.data_dir / "proxy-auth-token"
    if old.exists() and not paths.proxy_env.exists():
        token = old.read_text().strip()
        atomic_write(paths.proxy_env, f"CONFIGPROXY_AUTH_TOKEN={token}\n", 0o600)
    old.unlink(missing_ok=True)


def install_system(layout: Layout, site: SiteConfig, log=print) -> Report:
    """`hpchub install`'s own code, for this test bed's folders: checked, atomic, owned."""
    paths = DeployPaths(site, layout.site_file)
    migrate_proxy_token(paths)
    return Installer(paths, log=lambda m: log(f"install: {m}")).install()


def hub_answers(layout: Layout) -> bool:
    """Whether the hub answers on its own port, where the nodes reach it."""
    return _answers(f"{layout.hub_api_url}/hub/api/")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except OSError:
        return False


def start_services(
    layout: Layout, site: SiteConfig, restart_hub: bool, restart_proxy: bool, log=print
) -> None:
    """Proxy first (it outlives hub restarts), then the hub, each from its unit file, both on
    the hub's host (a process from before it existed is moved there by a restart)."""
    paths = DeployPaths(site, layout.site_file)
    netns = layout.hub_netns_path
    for name in ("proxy", "hub"):
        pid = procs.read_pid(layout.run / f"{name}.pid")
        if pid and not hubhost.runs_inside(layout, pid):
            procs.stop(name, layout.run)
            log(f"stopped the {name}: it ran outside the hub's host {layout.hub_netns}")
    if restart_proxy and procs.stop("proxy", layout.run):
        log("stopped the proxy (its unit changed)")
    if not procs.read_pid(layout.run / "proxy.pid"):
        log(f"starting configurable-http-proxy from {paths.proxy_unit.name}")
        services.start_unit("proxy", paths.proxy_unit, layout.run, netns=netns)
    if restart_hub and procs.stop("hub", layout.run):
        log("stopped the hub (its software or configuration changed)")
    if not procs.read_pid(layout.run / "hub.pid"):
        log(f"starting the hub from {paths.hub_unit.name}")
        services.start_unit("hub", paths.hub_unit, layout.run, netns=netns)
    procs.wait_for(
        lambda: hubhost.answers(layout, f"{layout.public_url_inside}/hub/login"),
        60,
        "the hub behind the proxy",
    )


def stop_services(layout: Layout, log=print) -> None:
    for name in ("hub", "proxy"):
        if procs.stop(name, layout.run):
            log(f"stopped {name}")


def status(layout: Layout) -> dict[str, object]:
    return {
        "proxy": bool(procs.read_pid(layout.run / "proxy.pid")),
        "hub": bool(procs.read_pid(layout.run / "hub.pid")),
        "hub_answers": hub_answers(layout),
    }
