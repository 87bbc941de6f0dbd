"""up / down / status / info: the testbed as a whole."""

from __future__ import annotations

import json
import os
import sys

from . import cluster, courses, hub, system, testmodules
from .layout import Layout


def _need_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit(
            "hpchub testbed must run as root (it installs packages and starts daemons)"
        )


def up(layout: Layout, log=print) -> dict:
    """Idempotent: install what is missing, (re)write config, start what is not running."""
    _need_root()
    system.ensure_packages(log=log)
    proxy_bin = system.ensure_proxy(log=log)
    facts = cluster.node_facts()
    enforcement = cluster.memory_enforcement()
    layout.state.mkdir(parents=True, exist_ok=True)
    changed = cluster.write_config(layout, facts, enforcement)
    cluster.start_daemons(layout, facts, restart=changed, log=log)
    system.ensure_hub_user(layout)
    system.ensure_demo_users(layout, log=log)
    marker = layout.prefix / ".hpchub-source"
    before = marker.read_text() if marker.exists() else ""
    hub.ensure_software(layout, log=log)
    software_changed = (marker.read_text() if marker.exists() else "") != before
    courses.ensure_demo_courses(layout)
    hub.write_site(layout)
    hub.write_sudoers(layout)
    testmodules.ensure_kernels(layout, log=log)
    hub.start_services(layout, proxy_bin, restart_hub=software_changed, log=log)
    return info(layout)


def down(layout: Layout, log=print) -> None:
    """Stop every process the testbed started (hub, proxy, Slurm daemons, munge)."""
    _need_root()
    hub.stop_services(layout, log=log)
    if layout.name:
        # A named testbed shares the cluster with the main one: leave Slurm running.
        return
    # Jobs of the demo users would otherwise be restarted when Slurm next comes up.
    system.sh("scancel", "--user=" + ",".join(layout.users), check=False)
    cluster.stop_daemons(layout, log=log)


def status(layout: Layout) -> dict:
    return {**cluster.status(layout), **hub.status(layout)}


def info(layout: Layout) -> dict:
    passwords = {}
    if layout.secrets_file.exists() and os.access(layout.secrets_file, os.R_OK):
        passwords = json.loads(layout.secrets_file.read_text())
    return {
        "hub_url": layout.hub_url,
        "hub_name": layout.hub_name,
        "site_file": str(layout.site_file),
        "partitions": [*cluster.JUPYTER_PARTITIONS, "batch"],
        "nodes": {"jupyter": cluster.node_facts().name, "batch": cluster.BATCH_NODE},
        "proxy_api_url": f"http://127.0.0.1:{layout.proxy_api_port}",
        "default_partition": "jupyter-short",
        "users": [{"name": u, "password": passwords.get(u)} for u in layout.users],
        "outsider": {"name": layout.outsider, "password": passwords.get(layout.outsider)},
        "group": layout.group,
        "hub_user": layout.hub_user,
        "prefix": str(layout.env),
        "logs": str(layout.logs),
        "memory_enforcement": cluster.status(layout)["memory_enforcement"],
    }


def print_status(layout: Layout) -> int:
    st = status(layout)
    for k, v in st.items():
        print(f"{k:20} {v}")
    return 0 if all(v for k, v in st.items() if k != "memory_enforcement") else 1


def print_info(layout: Layout, as_json: bool) -> int:
    data = info(layout)
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print(f"hub:   {data['hub_url']}")
        for u in data["users"]:
            print(f"login: {u['name']} / {u['password']}")
        print(f"site file: {data['site_file']}")
    return 0
