"""Things in a valid site file that will likely go wrong on this node: printed by
`hpchub config validate`, errors with --strict.

A warning is not an error by default because the facts it rests on belong to this node, not to
the file: a group may exist only on the cluster's LDAP, a file may be validated on a laptop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..core.accounts import group_exists, user_exists
from .courses import course_warnings
from .models import SiteConfig


@dataclass(frozen=True)
class Finding:
    """One warning: the key path it is about, and what will go wrong, in words."""

    path: str
    message: str

    def __str__(self) -> str:
        # A check whose message already names its key path gives path "".
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class NodeFacts:
    """What the caller knows about the cluster (None: not known, the check is skipped)."""

    slurm_nodes: int | None = None


def _named_accounts(site: SiteConfig) -> Iterator[tuple[str, str, str]]:
    """(key path, 'group' or 'user', name) for every account the site file names."""
    h = site.hub
    for key in ("allowed_groups", "admin_groups"):
        yield from ((f"hub.{key}[{i}]", "group", n) for i, n in enumerate(getattr(h, key)))
    for key in ("allowed_users", "admin_users"):
        yield from ((f"hub.{key}[{i}]", "user", n) for i, n in enumerate(getattr(h, key)))
    yield from ((f"hub.username_map.{k}", "user", n) for k, n in h.username_map.items())
    for where, aud in [(f"profiles[{i}]", p) for i, p in enumerate(site.profiles)] + [
        ("custom", site.custom)
    ]:
        yield from ((f"{where}.groups[{i}]", "group", n) for i, n in enumerate(aud.groups))
        yield from ((f"{where}.users[{i}]", "user", n) for i, n in enumerate(aud.users))
    for c, course in enumerate(site.courses):
        yield from ((f"courses[{c}].groups[{i}]", "group", n) for i, n in enumerate(course.groups))
        for key in ("users", "instructors"):
            names = getattr(course, key)
            yield from ((f"courses[{c}].{key}[{i}]", "user", n) for i, n in enumerate(names))


def missing_accounts(site: SiteConfig, facts: NodeFacts) -> list[Finding]:
    """Groups and users the site names that this node does not know."""
    out = []
    for path, kind, name in _named_accounts(site):
        exists = group_exists(name) if kind == "group" else user_exists(name)
        if not exists:
            out.append(Finding(path, f"no {kind} {name!r} on this node: it admits nobody"))
    return out


def loopback_hub_url(site: SiteConfig, facts: NodeFacts) -> list[Finding]:
    """Compute nodes cannot reach a loopback hub address unless the hub's node is the only one."""
    key = "hub.hub_connect_url" if site.hub.hub_connect_url else "hub.hub_bind_url"
    url = site.hub.hub_connect_url or site.hub.hub_bind_url
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback and (facts.slurm_nodes or 0) > 1:
        return [
            Finding(
                key,
                f"{url} is this node's loopback, but Slurm has {facts.slurm_nodes} nodes: "
                "servers on other nodes cannot report to the hub; set hub.hub_connect_url to "
                "an address the compute nodes reach",
            )
        ]
    return []


def user_config_allowed(site: SiteConfig, facts: NodeFacts) -> list[Finding]:
    """`hpchub doctor` calls this an error: say so before the hub runs."""
    if site.singleuser.disable_user_config:
        return []
    return [
        Finding(
            "singleuser.disable_user_config",
            "false lets each user's ~/.jupyter config change how their server runs; "
            "`hpchub doctor` reports this as an error",
        )
    ]


def _bare_dot_after_at(pattern: str) -> bool:
    """Whether ``pattern`` has a '.' after its '@' that is neither escaped nor in [...]."""
    escaped, in_class = False, False
    for ch in pattern.partition("@")[2]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "." and not in_class:
            return True
    return False


def loose_gate_realm(site: SiteConfig, facts: NodeFacts) -> list[Finding]:
    """A gate pattern whose realm has a bare '.', which matches any character."""
    pattern = site.deploy.web.gate.user_pattern
    if "@" not in pattern or not _bare_dot_after_at(pattern):
        return []
    return [
        Finding(
            "deploy.web.gate.user_pattern",
            f"{pattern!r}: a '.' after '@' matches any character, so a realm such as "
            "exampleXorg passes for example.org; write '\\.' or set hub.realms instead",
        )
    ]


Check = Callable[[SiteConfig, NodeFacts], list[Finding]]


def shared_course_targets(site: SiteConfig, facts: NodeFacts) -> list[Finding]:
    """A course target in a folder that other users share (config/courses.py)."""
    return [Finding("", w) for w in course_warnings(site)]


def rhel_without_node_networks(site: SiteConfig, facts: NodeFacts) -> list[Finding]:
    """On RHEL the rendered firewalld rules open the hub's port to deploy.node_networks only."""
    if site.deploy.os_family != "rhel" or site.deploy.node_networks:
        return []
    return [
        Finding(
            "deploy.node_networks",
            "empty: the rendered firewalld.sh lets no compute node reach the hub's API port, "
            "so no server could report its port; list the nodes' networks",
        )
    ]


# The hook: a feature adds its own check here.
CHECKS: list[Check] = [
    missing_accounts,
    loopback_hub_url,
    user_config_allowed,
    shared_course_targets,
    loose_gate_realm,
    rhel_without_node_networks,
]


def warnings(site: SiteConfig, facts: NodeFacts | None = None) -> list[Finding]:
    """Every warning about ``site`` on this node."""
    facts = facts or NodeFacts()
    return [f for check in CHECKS for f in check(site, facts)]
