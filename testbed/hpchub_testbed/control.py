"""up / down / status / info: the testbed as a whole."""

from __future__ import annotations

import json
import os
import sys

from hpchub.deploy.paths import DeployPaths

from . import (
    accounting,
    cluster,
    courses,
    database,
    hub,
    hubhost,
    ownership,
    scraper,
    system,
    testmodules,
    web,
)
from .layout import Layout


def _need_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit(
            "hpchub-testbed must run as root (it installs packages and starts daemons)"
        )


def _need_own_machine(layout: Layout) -> None:
    """Refuse, in one line, to overwrite Slurm or hpchub files the testbed did not write."""
    problem = ownership.refusal(layout)
    if problem:
        raise SystemExit(f"hpchub-testbed: {problem}")


def up(layout: Layout, log=print) -> dict:
    """Idempotent: install what is missing, (re)write config, start what is not running."""
    _need_root()
    _need_own_machine(layout)
    if not (layout.repo / "pyproject.toml").exists():
        raise SystemExit(
            f"hpchub-testbed: {layout.repo} is not an hpchub checkout; install the testbed "
            "from one with pip install -e testbed/"
        )
    ownership.claim(layout)
    system.ensure_packages(log=log)
    proxy_bin = system.ensure_proxy(log=log)
    code_server = system.ensure_code_server(log=log)
    facts = cluster.node_facts()
    cgroup = cluster.cgroup_version()
    layout.state.mkdir(parents=True, exist_ok=True)
    courses.ensure_demo_courses(layout)
    system.ensure_hub_user(layout)  # before the database: its password file is the hub user's
    db = database.ensure_postgresql(layout, log=log)
    text = hub.site_text(layout, proxy_bin, facts.name, db, code_server)
    site = hub.load_site_text(text, layout.site_file)
    changed = cluster.write_config(layout, facts, cgroup, site)
    cluster.start_daemons(layout, facts, restart=changed, log=log)
    hubhost.ensure(layout, site, log=log)
    database.open_to_hub(layout, log=log)  # the hub's link exists now
    web.ensure_instance(layout, log=log)
    web.leave_shared_apache(layout, log=log)
    system.ensure_hub_user(layout)
    scraper.ensure_token(layout)
    passwords = system.ensure_demo_users(layout, log=log)
    system.ensure_scratch(layout.users)
    accounting.ensure_associations((*layout.users, layout.outsider), log=log)
    marker = layout.prefix / ".hpchub-source"
    before = marker.read_text() if marker.exists() else ""
    hub.ensure_software(layout, log=log)
    software_changed = (marker.read_text() if marker.exists() else "") != before
    site_changed = hub.write_site(layout, text)
    web.ensure_tls(layout, log=log)
    web.ensure_gate_users(layout, web.gate_identities(layout, passwords))
    report = hub.install_system(layout, site, log=log)
    paths = DeployPaths(site, layout.site_file)
    accounting.ensure_operator(paths.slurm_dir / "hub-operator.sh", log=log)
    changed_files = set(report.changed)
    restart_proxy = paths.proxy_unit in changed_files
    restart_hub = (
        software_changed
        or site_changed
        or restart_proxy
        or bool({paths.hub_unit, paths.config_py} & changed_files)
    )
    testmodules.ensure_kernels(layout, log=log)
    hub.start_services(layout, site, restart_hub, restart_proxy, log=log)
    web.ensure_apache(layout, changed=site.deploy.web.vhost_file in changed_files, log=log)
    return info(layout)


def down(layout: Layout, log=print) -> None:
    """Stop every process the testbed started (hub, proxy, Apache, Slurm daemons, munge) and
    remove the hub's host (its namespace, link and firewall) and the batch node's namespace."""
    _need_root()
    _need_own_machine(layout)
    hub.stop_services(layout, log=log)
    web.stop_apache(layout, log=log)
    web.leave_shared_apache(layout, log=log)
    hubhost.remove(layout, log=log)
    if layout.name:
        # A named testbed shares the cluster with the main one: leave Slurm running.
        return
    # Jobs of the demo users would otherwise be restarted when Slurm next comes up.
    for user in layout.users:  # scancel takes one user at a time ("a,b" is no user)
        system.sh("scancel", f"--user={user}", check=False)
    cluster.stop_daemons(layout, log=log)
    cluster.remove_batch_netns(log=log)


def status(layout: Layout) -> dict:
    return {
        **cluster.status(layout),
        **hubhost.status(layout),
        **hub.status(layout),
        "apache": web.site_answers(layout),
    }


def info(layout: Layout) -> dict:
    passwords = {}
    if layout.secrets_file.exists() and os.access(layout.secrets_file, os.R_OK):
        passwords = json.loads(layout.secrets_file.read_text())
    slurm = cluster.status(layout)
    return {
        "hub_url": layout.hub_url,
        "hub_name": layout.hub_name,
        "site_file": str(layout.site_file),
        "partitions": [*cluster.JUPYTER_PARTITIONS, "batch"],
        "nodes": {"jupyter": cluster.node_facts().name, "batch": cluster.BATCH_NODE},
        # The hub's own host: the proxy's ports answer only there (run with hub_exec).
        "hub_netns": str(layout.hub_netns_path),
        "hub_exec": hubhost.inside(layout),
        "hub_addr": layout.hub_addr,
        "machine_addr": layout.machine_addr,
        # time.email's relay: a test listens here (the hub's firewall lets the hub reach it).
        "mail_relay": {"host": layout.machine_addr, "port": layout.mail_relay_port},
        "hub_api_url": layout.hub_api_url,
        "public_url_inside": layout.public_url_inside,
        "proxy_api_url": f"http://127.0.0.1:{layout.proxy_api_port}",
        "apachectl": str(layout.apachectl),
        "apache_confdir": str(layout.apache_confdir),
        "apache_logs": str(web.log_dir(layout)),
        "firewall_table": layout.firewall_table,
        "default_partition": "jupyter-short",
        "users": [{"name": u, "password": passwords.get(u)} for u in layout.users],
        "outsider": {"name": layout.outsider, "password": passwords.get(layout.outsider)},
        "realm": layout.realm,
        "foreign_realm": layout.foreign_realm,
        "group": layout.group,
        "hub_user": layout.hub_user,
        "prefix": str(layout.env),
        "logs": str(layout.logs),
        **{k: slurm[k] for k in ("memory_enforcement", "cgroup_version")},
        "accounting": accounting.enabled(),
        "https_url": layout.https_url,
        "http_url": layout.http_url,
        "tls_cert": str(layout.tls_dir / "cert.pem"),
        "proxy_token_file": str(layout.hub_data / "proxy.env"),
        "memory_factor": _memory_factor(layout),
        # Scraped on the hub's own port, as a site's Prometheus would.
        "metrics_url": f"{layout.hub_api_url}/hub/metrics",
        "metrics_service": scraper.SCRAPER,
        "metrics_token": scraper.token(layout),
        "metrics_token_file": str(scraper.token_file(layout)),
    }


def _memory_factor(layout: Layout) -> float | None:
    try:
        return hub.load_site_text(
            layout.site_file.read_text(), layout.site_file
        ).deploy.slurm.memory_factor
    except (OSError, ValueError):
        return None


def print_status(layout: Layout) -> int:
    st = status(layout)
    for k, v in st.items():
        print(f"{k:20} {v}")
    facts = ("memory_enforcement", "cgroup_version")  # what the machine is, not what runs
    return 0 if all(v for k, v in st.items() if k not in facts) else 1


def print_info(layout: Layout, as_json: bool) -> int:
    data = info(layout)
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print(f"hub:   {data['hub_url']} (Apache on the hub's host {layout.hub_netns})")
        for u in data["users"]:
            print(f"login: {u['name']} / {u['password']}")
        print(f"site file: {data['site_file']}")
    return 0
