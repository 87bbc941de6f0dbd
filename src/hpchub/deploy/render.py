"""Render every file a site installs: pure functions, site file in, file texts out.

Each file comes with where it goes, its owner and mode, and which real tool checks it before
it may replace the installed one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..config.units import format_slurm_time
from ..core.names import UNIX_NAME_RULE
from ..core.templates import render
from ..slurm.client import SlurmClient
from ..slurm.parsers import hub_comment
from . import rhel
from .paths import APACHE_MODULES, SECRET_HEADER, USER_HEADER, DeployPaths

CHECKS = ("sudoers", "apache", "systemd", "logrotate", "cgroup", "shell", "python")


@dataclass(frozen=True)
class SystemFile:
    """One rendered file, where it goes, who owns it and how it is checked."""

    path: Path
    text: str
    what: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    check: str | None = None


# The Slurm account that holds the hub's service user (an operator under PrivateData).
OPERATOR_ACCOUNT = "hpchub"


def sudo_runas(paths: DeployPaths) -> list[str]:
    """Who the hub may act as: the allowed (and admin) users and groups, never root."""
    hub = paths.site.hub
    groups = sorted(set(hub.allowed_groups) | set(hub.admin_groups))
    users = sorted(set(hub.allowed_users) | set(hub.admin_users))
    return [f"%{g}" for g in groups] + users


HELPER_SUBCOMMANDS = ("prepare-logs", "log-tail", "stage-course")
"""What the hub runs of hpchub-user through sudo (each subcommand validates its arguments)."""


def sudo_commands(paths: DeployPaths) -> list[str]:
    """Exactly the commands the hub runs through sudo, with their fixed arguments."""
    slurm = SlurmClient(paths.site.slurm).sudo_commands()
    return [*slurm, *(f"{paths.helper} {sub} *" for sub in HELPER_SUBCOMMANDS)]


def extend_sudo(paths: DeployPaths) -> tuple[str, str] | None:
    """The Extend button's one sudo command and whom it runs as, where the site offers it."""
    extend = paths.site.time.extend
    return (extend.run_as, f"{paths.extend_helper} *") if extend.enabled else None


def sudo_alias_prefix(paths: DeployPaths) -> str:
    """Alias names are global in sudo: name them after the file (hpchub -> HPCHUB_USERS), so
    that two hubs on one machine (or two test beds) do not define the same alias twice."""
    name = re.sub(r"[^A-Z0-9]+", "_", paths.deploy.sudoers_file.name.upper()).strip("_")
    return name if name[:1].isalpha() else f"HPCHUB_{name}"


def sudoers(paths: DeployPaths) -> str:
    """The hub user's sudo rule (and the Extend button's, where the site offers it)."""
    extend = extend_sudo(paths)
    return render(
        "system/sudoers.j2",
        alias=sudo_alias_prefix(paths),
        hub_user=paths.deploy.hub_user,
        runas=", ".join(sudo_runas(paths)),
        commands=sudo_commands(paths),
        extend_as=extend[0] if extend else None,
        extend_helper=paths.extend_helper,
    )


def extend_helper(paths: DeployPaths) -> str:
    """The generated helper that raises a job's time limit (run as SlurmUser through sudo)."""
    site = paths.site
    extend = site.time.extend
    allowed = extend.partitions or [p.name for p in site.slurm.partitions]
    caps = {name: (site.slurm.partition(name).max_time or 0) // 60 or None for name in allowed}
    return render(
        "system/extend-job.py.j2",
        site_path=paths.site_path,
        run_as=extend.run_as,
        hub_name=site.hub.name,
        squeue=str(site.slurm.bin_dir / "squeue"),
        scontrol=str(site.slurm.bin_dir / "scontrol"),
        comment=hub_comment(site.hub.name),
        max_step_min=extend.max_per_extension // 60,
        caps=caps,
        user_rule=UNIX_NAME_RULE,
    )


def proxy_argv(paths: DeployPaths) -> list[str]:
    """configurable-http-proxy's command line (the token comes from its environment)."""
    ip, port = paths.proxy_public
    api_ip, api_port = paths.proxy_api
    hub = paths.hub_local_url
    argv = [str(paths.deploy.proxy_command), "--ip", ip, "--port", str(port)]
    argv += ["--api-ip", api_ip, "--api-port", str(api_port)]
    argv += ["--default-target", hub, "--error-target", f"{hub}/hub/error"]
    if paths.deploy.web.enabled:
        # Apache sets X-Forwarded-*; appending "http" here would hide that users came in over
        # HTTPS (and the hub would not mark its cookies Secure).
        argv.append("--no-x-forward")
    return argv


def hub_writable_paths(paths: DeployPaths) -> list[str]:
    """What the hub's sandbox leaves writable."""
    out = [str(paths.data_dir)]
    out += [str(p) for p in paths.deploy.systemd.home_paths]
    log_dir = paths.site.singleuser.log_dir
    if log_dir.startswith("/"):
        out.append(log_dir.split("~")[0].rstrip("/") or "/")
    return sorted(dict.fromkeys(out))


def hub_unit(paths: DeployPaths) -> str:
    """The hub's systemd unit: unprivileged, sandboxed as far as sudo allows."""
    d = paths.deploy
    return render(
        "system/hub.service.j2",
        site_path=paths.site_path,
        hub_user=d.hub_user,
        shadow_group=d.shadow_group if paths.site.hub.authenticator == "pam" else None,
        proxy_unit=d.systemd.proxy_unit,
        data_dir=paths.data_dir,
        prefix=paths.prefix,
        proxy_env=paths.proxy_env,
        config_py=paths.config_py,
        log_dir=d.log_dir,
        log_files=d.log_files,
        writable=hub_writable_paths(paths),
        sudoers_file=d.sudoers_file,
    )


def proxy_unit(paths: DeployPaths) -> str:
    """The proxy's systemd unit (its own service; fully sandboxed)."""
    d = paths.deploy
    return render(
        "system/proxy.service.j2",
        site_path=paths.site_path,
        hub_user=d.hub_user,
        proxy_env=paths.proxy_env,
        argv=proxy_argv(paths),
        log_dir=d.log_dir,
        log_files=d.log_files,
    )


def apache_modules(paths: DeployPaths) -> list[str]:
    """Modules the virtual host needs, the gate's included."""
    gate = paths.deploy.web.gate
    extra = list(gate.apache_modules) if gate.enabled else []
    return list(dict.fromkeys([*APACHE_MODULES, *extra]))


def apache_vhost(paths: DeployPaths) -> str:
    """The Apache virtual host: TLS, HSTS, the redirect, websockets, the optional gate."""
    web = paths.deploy.web
    listen = []
    # Debian's ports.conf (and RHEL's httpd.conf/ssl.conf) already listen on 80 and 443.
    if web.http_port and web.http_port != 80:
        listen.append(f"Listen {web.http_port}")
    if web.https_port != 443:
        listen.append(f"Listen {web.https_port} https")
    gate = web.gate if web.gate.enabled else None
    return render(
        "system/apache-vhost.conf.j2",
        site_path=paths.site_path,
        backend=paths.backend_url,
        modules=apache_modules(paths),
        listen=listen,
        http_port=web.http_port,
        https_port=web.https_port,
        https_url=paths.https_url,
        server_name=web.server_name,
        tls_certificate=web.tls_certificate,
        tls_key=web.tls_key,
        hsts_max_age=web.hsts_max_age,
        proxy_timeout=web.proxy_timeout,
        user_header=USER_HEADER,
        secret_header=SECRET_HEADER,
        local_paths=list(gate.local_paths) if gate else [],
        gate=gate,
        exempt=list(gate.exempt_networks) if gate else [],
        secret_include=paths.apache_secret_conf if paths.uses_frontend_secret else None,
        log_prefix="logs/hpchub" if paths.deploy.os_family == "rhel" else None,
    )


def apache_secret_conf(secret: str) -> str:
    """The Include file that adds the frontend secret (root-only, mode 600)."""
    if not secret.isalnum():
        raise ValueError("the frontend secret must be letters and digits")
    return (
        "# Written by `hpchub install`: proves to the hub that a request came through Apache.\n"
        f'RequestHeader set {SECRET_HEADER} "{secret}"\n'
    )


def logrotate(paths: DeployPaths) -> str:
    """The logrotate rule for hub.log and proxy.log."""
    d = paths.deploy
    return render(
        "system/logrotate.j2",
        site_path=paths.site_path,
        log_dir=d.log_dir,
        frequency=d.logrotate.frequency,
        rotate=d.logrotate.rotate,
        compress=d.logrotate.compress,
    )


def allowed_ram_percent(factor: float) -> str:
    """cgroup.conf's AllowedRAMSpace for a memory factor: 5 -> '500', 1.5 -> '150'."""
    percent = round(factor * 100, 1)
    return str(int(percent)) if percent == int(percent) else str(percent)


def partition_lines(paths: DeployPaths, default: str | None = None) -> list[tuple[str, str]]:
    """(name, slurm.conf line) of each Jupyter partition: the primary ones, then overflow.

    ``default`` marks one partition Default=YES (a test bed's choice, never a site's).
    """
    snip = paths.deploy.slurm
    offered = {p.name: p for p in paths.site.slurm.partitions}
    primary, overflow = snip.split(list(offered))
    out = []
    for names, nodes, tier in (
        (primary, snip.nodes, snip.priority_tier),
        (overflow, snip.overflow_nodes, snip.overflow_priority_tier),
    ):
        for name in names:
            part = offered[name]
            words = [f"PartitionName={name}", f"Nodes={nodes}"]
            if name == default:
                words.append("Default=YES")
            if part.max_time is not None:
                words.append(f"MaxTime={format_slurm_time(part.max_time)}")
            words.append(f"OverSubscribe=FORCE:{snip.cpu_oversubscribe}")
            words.append(f"PriorityTier={tier}")
            if part.max_memory is not None:
                words.append(f"MaxMemPerNode={part.max_memory}")
            out.append((name, " ".join(words)))
    return out


def slurm_partitions(paths: DeployPaths) -> str:
    """The Jupyter partitions as a slurm.conf snippet for the Slurm admin."""
    return render(
        "system/slurm-partitions.conf.j2",
        site_path=paths.site_path,
        oversubscribe=paths.deploy.slurm.cpu_oversubscribe,
        cgroup=paths.deploy.slurm.cgroup,
        memory_lines=slurm_memory_lines(paths.deploy.slurm.cgroup),
        lines=[line for _, line in partition_lines(paths)],
    )


CGROUP_PLUGINS = {"auto": "autodetect", "v1": "cgroup/v1", "v2": "cgroup/v2", "none": None}
"""cgroup.conf's CgroupPlugin for each deploy.slurm.cgroup choice (none: no cgroup plugin)."""


def slurm_memory_lines(cgroup: str) -> list[str]:
    """The slurm.conf lines that enforce jobs' memory: cgroups (v1, v2, auto), else polling."""
    if CGROUP_PLUGINS[cgroup] is None:
        # No writable memory cgroup: a soft, polled limit at the request.
        return [
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/affinity",
            "JobAcctGatherType=jobacct_gather/linux",
            "JobAcctGatherFrequency=task=2",
            "JobAcctGatherParams=OverMemoryKill",
        ]
    return [
        "ProctrackType=proctrack/cgroup",
        "TaskPlugin=task/cgroup,task/affinity",
        "JobAcctGatherType=jobacct_gather/cgroup",
    ]


def cgroup_conf(
    cgroup: str, memory_factor: float, written_by: str, nodes: str | None = None
) -> str:
    """cgroup.conf for ``cgroup`` (auto, v1, v2, none) and a memory factor; with ``nodes``, the
    comments that explain it to a Slurm admin (the testbed's own file has none)."""
    return render(
        "system/cgroup.conf.j2",
        written_by=written_by,
        explain=nodes is not None,
        nodes=nodes,
        plugin=CGROUP_PLUGINS[cgroup],
        factor=f"{memory_factor:g}",
        percent=allowed_ram_percent(memory_factor),
    )


def cgroup_snippet(paths: DeployPaths) -> str:
    """The cgroup.conf that lets jobs use memory_factor times their request, for the site's
    cgroup version."""
    snip = paths.deploy.slurm
    return cgroup_conf(
        snip.cgroup,
        snip.memory_factor,
        f"`hpchub render` from {paths.site_path}",
        nodes=snip.nodes,
    )


def rhel_files(paths: DeployPaths) -> list[SystemFile]:
    """The PAM service (sssd) and the SELinux and firewalld scripts of a RHEL-family node."""
    d = paths.deploy
    files = []
    if d.pam_service and paths.site.hub.authenticator == "pam":
        files.append(
            SystemFile(
                rhel.pam_file(paths), rhel.pam_service(paths), "the hub's PAM service (sssd)"
            )
        )
    scripts = (
        (rhel.SELINUX_SCRIPT, rhel.selinux_script, "SELinux booleans, file contexts and ports"),
        (rhel.FIREWALLD_SCRIPT, rhel.firewalld_script, "firewalld rules for the hub's ports"),
    )
    for name, renderer, what in scripts:
        files.append(SystemFile(d.etc_dir / name, renderer(paths), what, 0o755, check="shell"))
    return files


def slurm_operator(paths: DeployPaths) -> str:
    """The sacctmgr commands that let the hub user see every job under PrivateData=jobs."""
    return render(
        "system/slurm-operator.sh.j2",
        site_path=paths.site_path,
        hub_user=paths.deploy.hub_user,
        account=OPERATOR_ACCOUNT,
    )


def render_all(paths: DeployPaths) -> list[SystemFile]:
    """Every file a site installs, in the order they are put in place."""
    d = paths.deploy
    files = [
        SystemFile(paths.config_py, render("jupyterhub_config.py"), "the hub's configuration"),
        SystemFile(
            paths.proxy_unit, proxy_unit(paths), "systemd unit of the proxy", check="systemd"
        ),
        SystemFile(paths.hub_unit, hub_unit(paths), "systemd unit of the hub", check="systemd"),
        SystemFile(
            d.sudoers_file, sudoers(paths), "the hub user's sudo rule", 0o440, check="sudoers"
        ),
    ]
    if paths.site.time.extend.enabled:
        files.append(
            SystemFile(
                paths.extend_helper,
                extend_helper(paths),
                "the Extend button's helper (run as SlurmUser through sudo)",
                0o755,
                check="python",
            )
        )
    if d.web.enabled:
        files.append(
            SystemFile(d.web.vhost_file, apache_vhost(paths), "Apache virtual host", check="apache")
        )
    if d.os_family == "rhel":
        files += rhel_files(paths)
    files += [
        SystemFile(d.logrotate_file, logrotate(paths), "log rotation", check="logrotate"),
        SystemFile(
            paths.slurm_dir / "jupyter-partitions.conf",
            slurm_partitions(paths),
            "Slurm partitions to merge into slurm.conf",
        ),
        SystemFile(
            paths.slurm_dir / "cgroup.conf",
            cgroup_snippet(paths),
            "cgroup.conf for Jupyter nodes",
            check="cgroup",
        ),
        SystemFile(
            paths.slurm_dir / "hub-operator.sh",
            slurm_operator(paths),
            "sacctmgr commands: the hub user sees every job under PrivateData",
            0o755,
            check="shell",
        ),
    ]
    return files
