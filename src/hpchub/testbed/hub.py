"""The hub side of the testbed: software prefix, site file, sudoers, proxy and hub processes."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import urllib.request
from pathlib import Path

from ..render import render
from . import procs, testmodules
from .cluster import CONTROLLER_ADDR
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
    """A root-owned, world-readable venv (from the system Python) holding hub, lab and hpchub."""
    env = layout.env
    old_umask = os.umask(0o022)
    try:
        if not (env / "bin" / "python").exists():
            log(f"creating {env}")
            layout.prefix.mkdir(parents=True, exist_ok=True)
            sh("/usr/bin/python3", "-m", "venv", str(env))
            sh(str(env / "bin" / "pip"), "install", "-q", "--upgrade", "pip", "setuptools", "wheel")
        marker = layout.prefix / ".hpchub-source"
        digest = _tree_hash(layout.repo)
        if not marker.exists() or marker.read_text().strip() != digest:
            log(f"installing hpchub into {env}")
            # Copy the source so that the build never writes into the checkout.
            build = layout.state / "build"
            shutil.rmtree(build, ignore_errors=True)
            shutil.copytree(
                layout.repo,
                build,
                ignore=shutil.ignore_patterns(
                    ".git", ".venv", "*.egg-info", "__pycache__", "node_modules", "artifacts"
                ),
            )
            sh(str(env / "bin" / "pip"), "install", "-q", f"{build}[singleuser]")
            marker.write_text(digest + "\n")
            shutil.rmtree(build, ignore_errors=True)
    finally:
        os.umask(old_umask)
    # Users read and run it; nobody but root writes it.
    sh("chown", "-R", "root:root", str(layout.prefix))
    sh("chmod", "-R", "go-w,a+rX", str(layout.prefix))


def write_site(layout: Layout) -> None:
    """The testbed's site file, jupyterhub_config.py and config.d."""
    layout.etc.mkdir(parents=True, exist_ok=True)
    config_d = layout.etc / "jupyterhub_config.d"
    config_d.mkdir(exist_ok=True)
    text = render(
        "testbed/hpchub.yaml.j2",
        public_port=layout.public_port,
        hub_port=layout.hub_port,
        proxy_api_port=layout.proxy_api_port,
        group=layout.group,
        hub_data=str(layout.hub_data),
        config_d=str(config_d),
        env=str(layout.env),
        controller_addr=CONTROLLER_ADDR,
        hub_name=layout.hub_name,
        shared_dir=str(layout.prefix / "share"),
        testmodules=str(testmodules.MODULEFILES),
        courses_dir=str(courses_dir(layout)),
        course_member=layout.users[0],
    )
    _write(layout.site_file, text, 0o644)
    _write(layout.etc / "jupyterhub_config.py", render("jupyterhub_config.py"), 0o644)


def _write(path: Path, text: str, mode: int) -> bool:
    if path.exists() and path.read_text() == text:
        os.chmod(path, mode)
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def write_sudoers(layout: Layout) -> None:
    """The hub user's sudo rule, checked by visudo before it is put in place."""
    text = render(
        "system/sudoers.j2",
        hub_user=layout.hub_user,
        group=layout.group,
        slurm_bin="/usr/bin",
        helper=str(layout.env / "bin" / "hpchub-user"),
    )
    if layout.name:
        # sudo aliases are global across /etc/sudoers.d: a second hub's must not clash with the
        # main one's, or sudo drops them and this hub's helper is never allowed.
        for alias in ("HPCHUB_USERS", "HPCHUB_CMDS"):
            text = text.replace(alias, f"{alias}_{layout.name.upper()}")
    target = layout.sudoers_file
    tmp = target.with_name(f".{target.name}.check")
    tmp.write_text(text)
    os.chmod(tmp, 0o440)
    r = subprocess.run(["visudo", "-cf", str(tmp)], capture_output=True, text=True)  # noqa: S603,S607
    if r.returncode != 0:
        tmp.unlink()
        raise RuntimeError(f"generated sudoers failed visudo: {r.stdout}{r.stderr}")
    os.replace(tmp, target)


def ensure_secret(path: Path, owner: str) -> str:
    """A random token, generated once, mode 600, owned by ``owner``."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    shutil.chown(path, owner, owner)
    os.chmod(path, 0o600)
    return path.read_text().strip()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except OSError:
        return False


def start_services(layout: Layout, proxy_bin: str, restart_hub: bool = False, log=print) -> None:
    """Proxy first (it outlives hub restarts), then the hub, both as the hub user."""
    layout.hub_data.mkdir(parents=True, exist_ok=True)
    shutil.chown(layout.hub_data, layout.hub_user, layout.hub_user)
    os.chmod(layout.hub_data, 0o700)
    layout.logs.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.logs, 0o755)  # noqa: S103 - logs folder; the files are 640
    token = ensure_secret(layout.hub_data / "proxy-auth-token", layout.hub_user)
    base_env = {"PATH": f"{layout.env}/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    proxy_env = {**base_env, "CONFIGPROXY_AUTH_TOKEN": token}
    hub_url = f"http://127.0.0.1:{layout.hub_port}"
    for f in ("proxy.log", "hub.log"):
        p = layout.logs / f
        p.touch()
        shutil.chown(p, layout.hub_user, layout.hub_user)
        os.chmod(p, 0o640)
    if not procs.read_pid(layout.run / "proxy.pid"):
        log("starting configurable-http-proxy")
        procs.start(
            "proxy",
            [
                proxy_bin,
                "--ip",
                "127.0.0.1",
                "--port",
                str(layout.public_port),
                "--api-ip",
                "127.0.0.1",
                "--api-port",
                str(layout.proxy_api_port),
                "--default-target",
                hub_url,
                "--error-target",
                f"{hub_url}/hub/error",
            ],
            layout.run,
            layout.logs / "proxy.log",
            user=layout.hub_user,
            env=proxy_env,
        )
    if restart_hub:
        procs.stop("hub", layout.run)
    if not procs.read_pid(layout.run / "hub.pid"):
        log("starting the hub")
        procs.start(
            "hub",
            [
                str(layout.env / "bin" / "jupyterhub"),
                "-f",
                str(layout.etc / "jupyterhub_config.py"),
            ],
            layout.run,
            layout.logs / "hub.log",
            user=layout.hub_user,
            env={
                **base_env,
                "CONFIGPROXY_AUTH_TOKEN": token,
                "HPCHUB_CONFIG": str(layout.site_file),
            },
            cwd=str(layout.hub_data),
        )
    procs.wait_for(lambda: _answers(f"{layout.hub_url}/hub/login"), 60, "the hub behind the proxy")


def stop_services(layout: Layout, log=print) -> None:
    for name in ("hub", "proxy"):
        if procs.stop(name, layout.run):
            log(f"stopped {name}")


def status(layout: Layout) -> dict[str, object]:
    return {
        "proxy": bool(procs.read_pid(layout.run / "proxy.pid")),
        "hub": bool(procs.read_pid(layout.run / "hub.pid")),
        "hub_answers": _answers(f"{layout.hub_url}/hub/login"),
    }
