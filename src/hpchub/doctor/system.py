"""`hpchub doctor`: checks of a live deployment, each a small function returning findings.

This module holds the checks that ask other programs (Slurm, sudo, Apache, the hub's login) and
the list of every system check; hubfiles.py and services.py hold the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ..deploy.render import extend_sudo, sudo_commands
from ..slurm.client import SlurmError
from . import tls
from .deployment import Deployment
from .exposed import exposed_secrets
from .findings import Finding, all_ok, error, info, ok, run_checks
from .gate import check_gate_bypass
from .hubfiles import check_installed_files, check_secrets, check_singleuser_env, check_user_config
from .nodes import check_node_python
from .ports import check_port_range
from .services import check_pam, check_services
from .sudo import judge_sudo, parse_sudo_ll

# What a Slurm query may end in besides an answer (a parse error is a ValueError).
_NO_ANSWER = (SlurmError, TimeoutError, OSError, ValueError)


def check_slurm(d: Deployment) -> list[Finding]:
    """Slurm answers the hub user's queries, and offers every partition the site offers."""
    name = "slurm"
    slurm = d.slurm()
    try:
        nodes = asyncio.run(slurm.nodes())
    except _NO_ANSWER as err:
        what = f"sinfo as {d.hub_user} failed: {err}"
        fix = (
            "check that slurmctld runs, that munged runs on this node and that "
            "slurm.conf here matches the cluster's"
        )
        return [error(name, what, fix)]
    present = {p for n in nodes.values() for p in n.partitions}
    out = []
    for p in d.paths.site.slurm.partitions:
        if p.name not in present:
            what = f"the site offers partition {p.name!r}, which Slurm does not have"
            fix = (
                f"add it to slurm.conf (see {d.paths.slurm_dir}/jupyter-partitions.conf) "
                "or remove it from slurm.partitions"
            )
            out.append(error(name, what, fix))
    try:
        asyncio.run(slurm.queue_places())
    except _NO_ANSWER as err:
        fix = "the hub watches jobs with squeue, without sudo: make squeue work for it"
        out.append(error(name, f"squeue as {d.hub_user} failed: {err}", fix))
    what = f"Slurm answers {d.hub_user} (sinfo, squeue) and has every partition"
    return all_ok(out, name, what)


def check_job_visibility(d: Deployment) -> list[Finding]:
    """The hub user sees every job (PrivateData=jobs hides them unless it is a Slurm operator),
    and accounting answers it, so that a job that left the queue can still be explained."""
    name = "job visibility"
    slurm = d.slurm()
    try:
        seen = asyncio.run(slurm.visibility(d.hub_user))
    except _NO_ANSWER as err:
        return [error(name, f"scontrol show config as {d.hub_user} failed: {err}", "")]
    if not seen.sees_all:
        fix = (
            f"as a Slurm admin: sh {d.paths.slurm_dir}/hub-operator.sh (makes {d.hub_user} a "
            "Slurm operator); until then a server whose job ended unseen stays listed as running"
        )
        return [error(name, seen.explain(d.hub_user), fix)]
    private = ",".join(sorted(seen.private_data)) or "none"
    what = f"{d.hub_user} sees every job (PrivateData={private}"
    what += f", Slurm admin level {seen.admin_level})" if seen.admin_level else ")"
    out = [ok(name, what)]
    with contextlib.suppress(*_NO_ANSWER):  # only whether accounting answers matters here
        asyncio.run(slurm.history("1"))
    if slurm.accounting is False:
        out.append(
            info(
                "accounting",
                "no Slurm accounting (slurmdbd): a job that has left the queue is explained "
                "only as ended, without its state, exit code or peak memory",
                "optional: run slurmdbd (AccountingStorageType=accounting_storage/slurmdbd)",
            )
        )
    return out


def check_sudo(d: Deployment) -> list[Finding]:
    """The hub user's sudo rules are no wider than needed (from `sudo -ll -U`)."""
    if d.euid != 0:
        return [info("sudo rules", "not checked: `sudo -l -U` needs root", "run doctor as root")]
    r = d.run(["sudo", "-n", "-ll", "-U", d.hub_user])
    if r.returncode != 0 and "not allowed to run sudo" not in r.stdout + r.stderr:
        what = f"sudo -ll -U {d.hub_user} failed: {(r.stderr or r.stdout).strip()}"
        return [error("sudo rules", what, "check the sudo configuration with `visudo -c`")]
    return judge_sudo(
        parse_sudo_ll(r.stdout), sudo_commands(d.paths), d.hub_user, extend_sudo(d.paths)
    )


def check_tls(d: Deployment) -> list[Finding]:
    """Apache accepts TLS 1.2 and 1.3 only, sends HSTS and redirects HTTP."""
    web = d.paths.deploy.web
    if not web.enabled:
        return [info("TLS", "not checked: no web server in front (deploy.web.enabled: false)")]
    return tls.check(web.server_name, web.https_port, web.http_port, web.hsts_max_age)


def check_gate(d: Deployment) -> list[Finding]:
    """No login reaches the password check around the SSO gate (from a compute node)."""
    return check_gate_bypass(d.paths)


SYSTEM_CHECKS: tuple[Callable[[Deployment], list[Finding]], ...] = (
    check_slurm,
    check_job_visibility,
    check_sudo,
    check_secrets,
    exposed_secrets,
    check_singleuser_env,
    check_node_python,
    check_user_config,
    check_services,
    check_pam,
    check_tls,
    check_gate,
    check_installed_files,
    check_port_range,
)


def run_system_checks(d: Deployment) -> list[Finding]:
    """Every check of the live deployment."""
    return run_checks(SYSTEM_CHECKS, d)
