"""What a RHEL-family hub node needs beyond Debian's files: the PAM service through sssd, and
the SELinux and firewalld steps as idempotent scripts. Pure renderers, site file in, text out.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from ..core.templates import render
from .paths import DeployPaths
from .releases import ReleaseRoot

HTTP_PORT_T = frozenset({80, 81, 443, 488, 8008, 8009, 8443, 9000})
"""The ports RHEL's targeted policy labels http_port_t: httpd may listen there as it is."""

PAM_DIR = Path("/etc/pam.d")
SELINUX_SCRIPT = "selinux.sh"
FIREWALLD_SCRIPT = "firewalld.sh"


def fcontext_re(path: str | Path) -> str:
    """A path as a file-context expression (a regular expression): '.' and '+' escaped.

    Site paths hold only letters, digits and '_./+@:-' (the deploy models' rule), so nothing
    else needs escaping, and nothing in them can close the shell's single quotes.
    """
    return re.sub(r"([.+])", r"\\\1", str(path))


def pam_file(paths: DeployPaths) -> Path:
    """Where the hub's PAM service is written."""
    return PAM_DIR / str(paths.deploy.pam_service)


def pam_service(paths: DeployPaths) -> str:
    """/etc/pam.d/SERVICE for an unprivileged hub on RHEL: passwords checked by sssd."""
    return render("system/pam-sss.j2", site_path=paths.site_path, hub_user=paths.deploy.hub_user)


def _proxy_paths(command: Path) -> tuple[list[str], Path]:
    """File-context expressions that make the proxy startable by systemd (bin_t): its command
    and the bin folder of the npm package an npm link there points into (by npm's layout,
    PREFIX/bin -> PREFIX/lib/node_modules/PACKAGE/bin); and the package folder."""
    package = command.parent.parent / "lib" / "node_modules" / "configurable-http-proxy"
    return [fcontext_re(command), f"{fcontext_re(package)}/bin(/.*)?"], package


def selinux_script(paths: DeployPaths) -> str:
    """setsebool, semanage fcontext/port and restorecon for the hub, the proxy and Apache."""
    d, web = paths.deploy, paths.deploy.web
    root = ReleaseRoot.of(paths.prefix).root
    ports = [p for p in (web.http_port, web.https_port) if p and p not in HTTP_PORT_T]
    gate = web.gate if web.gate.enabled else None
    proxies, package = _proxy_paths(d.proxy_command)
    certificates = [
        p for p in (web.tls_certificate, web.tls_key) if not str(p).startswith("/etc/pki/")
    ]
    restore = [root, d.proxy_command, package, paths.data_dir, d.log_dir, d.etc_dir]
    if web.enabled:
        restore += certificates + (list(gate.include_files) if gate else [])
    return render(
        "system/selinux.sh.j2",
        site_path=paths.site_path,
        web=web.enabled,
        backend=paths.backend_url,
        http_ports=ports,
        secret_conf=fcontext_re(paths.apache_secret_conf) if paths.uses_frontend_secret else None,
        include_files=[fcontext_re(f) for f in gate.include_files] if gate else [],
        certificates=[fcontext_re(f) for f in certificates],
        prefix_root=fcontext_re(root),
        proxy_paths=proxies,
        data_dir=fcontext_re(paths.data_dir),
        log_dir=fcontext_re(d.log_dir),
        restore=[str(p) for p in dict.fromkeys(restore)],
    )


def firewalld_script(paths: DeployPaths) -> str:
    """firewall-cmd: Apache's ports for users, the hub's API port for the nodes only."""
    web = paths.deploy.web
    user_rules = []
    if web.enabled:
        for port, service in ((web.https_port, "https"), (web.http_port, "http")):
            if port is None:
                continue
            default = {"https": 443, "http": 80}[service]
            rule = f"--add-service={service}" if port == default else f"--add-port={port}/tcp"
            user_rules.append(rule)
    else:
        # No Apache in front: users reach the proxy itself.
        user_rules.append(f"--add-port={paths.proxy_public[1]}/tcp")
    nets = []
    for net in paths.deploy.node_networks:
        n = ipaddress.ip_network(net)
        nets.append({"family": f"ipv{n.version}", "address": str(n)})
    return render(
        "system/firewalld.sh.j2",
        site_path=paths.site_path,
        user_rules=user_rules,
        node_rules=nets,
        hub_port=paths.hub_bind[1],
        proxy_port=paths.proxy_public[1],
        proxy_api_port=paths.proxy_api[1],
    )
