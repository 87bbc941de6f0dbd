"""The site file's `deploy` section: what `hpchub render` / `hpchub install` put on the hub node.

Every value here ends up in a system file (systemd unit, sudoers, Apache vhost, logrotate, a
Slurm snippet), so every value is constrained to what those files can hold safely: paths
without spaces or quotes, host names, port numbers, single-line Apache directives.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from ..core.names import DEFAULT_USER_PATTERN
from .base import Strict, safe_path, text_matching
from .names import SlurmName, UnixName
from .secretrefs import refuse_inline_secrets
from .units import duration

SafePath = Annotated[Path, safe_path(r"A-Za-z0-9_./+@:-", "_ . / + @ : -")]
"""An absolute path that can be written into a unit file, sudoers or Apache config as is."""

HostName = text_matching(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
    "a DNS host name such as jupyter.cluster.example.org",
    max_length=253,
)
"""A DNS host name such as jupyter.cluster.example.org."""

ApacheModule = text_matching(
    r"^[a-z0-9_]{1,40}$",
    "an Apache module name: lower-case letters, digits and '_'",
)
"""An Apache module name as a2enmod knows it, e.g. shib or auth_openidc."""

UnitName = text_matching(
    r"^[A-Za-z0-9_.@-]{1,200}\.service$",
    "a systemd unit name ending in .service",
)
"""A systemd service unit file name, e.g. hpchub.service."""

SlurmHostList = text_matching(
    r"^(ALL|[A-Za-z0-9_.\-]+(\[[0-9,\-]+\])?([A-Za-z0-9_.\-]*)(,[A-Za-z0-9_.\-]+(\[[0-9,\-]+\])?[A-Za-z0-9_.\-]*)*)$",
    "ALL or a Slurm node list such as node1 or jupyter[1-2],gpu3",
)
"""Slurm's node list syntax: ALL, node1, jupyter[1-2],gpu3."""

UrlPath = text_matching(
    r"^/[A-Za-z0-9_.~/-]*$",
    "a URL path starting with '/', of letters, digits and '_.~/-'",
    max_length=200,
)
"""An absolute URL path such as /Shibboleth.sso."""


def _apache_line(value: str) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if not re.fullmatch(r"[ -~]{1,300}", value):
        raise ValueError(
            f"an Apache directive must be one line of printable ASCII (at most 300), got {value!r}"
        )
    if value.lstrip().startswith("<"):
        raise ValueError(f"sections (<...>) are not allowed here, got {value!r}")
    return value.strip()


ApacheLine = Annotated[str, AfterValidator(_apache_line)]
"""One Apache directive on one line, such as 'AuthType shibboleth'."""


def _network(value: object) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=False))
    except ValueError:
        raise ValueError(
            f"expected an IP network such as 10.0.0.0/8 or 2001:db8::/32, got {value!r}"
        ) from None


Network = Annotated[
    str,
    BeforeValidator(_network),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "an IP network, e.g. 10.0.0.0/8"}),
]


def _user_pattern(value: str) -> str:
    try:
        rx = re.compile(value)
    except re.error as err:
        raise ValueError(f"not a valid regular expression ({err}): {value!r}") from None
    if "user" not in rx.groupindex:
        raise ValueError(
            f"the pattern must name the cluster account with (?P<user>...), got {value!r}"
        )
    return value


class WebGate(Strict):
    """An optional gate at Apache: any module that sets REMOTE_USER (Shibboleth, OpenID...)."""

    enabled: bool = Field(False, description="Put the gate in front of the whole site.")
    apache_modules: list[ApacheModule] = Field(
        default_factory=list,
        description="Apache modules the gate needs, enabled at install (e.g. [shib]).",
    )
    directives: Annotated[list[ApacheLine], AfterValidator(refuse_inline_secrets)] = Field(
        default_factory=list,
        description=(
            "Apache directives that set up the gate, one per line "
            "(e.g. ['AuthType shibboleth', 'ShibRequestSetting requireSession 1']). "
            "Never a secret: see include_files."
        ),
    )
    include_files: list[SafePath] = Field(
        default_factory=list,
        description=(
            "Files of Apache directives that carry secrets (OIDCClientSecret, "
            "OIDCCryptoPassphrase...), mode 640 root:www-data; the virtual host Includes them."
        ),
    )
    require: ApacheLine = Field(
        "valid-user",
        description="What the gate requires of outsiders, as Apache's 'Require' takes it.",
    )
    exempt_networks: list[Network] = Field(
        default_factory=list,
        description="Networks whose requests skip the gate (e.g. the campus, the cluster).",
    )
    local_paths: list[UrlPath] = Field(
        default_factory=list,
        description="URL paths Apache serves itself instead of the hub (e.g. /Shibboleth.sso).",
    )
    user_pattern: Annotated[str, AfterValidator(_user_pattern)] = Field(
        DEFAULT_USER_PATTERN,
        description=(
            "Regular expression that maps the gate's REMOTE_USER to a cluster account "
            "with a group named user. It sees the identity in lower case, after "
            "hub.username_map and hub.realms (anna.lee@EXAMPLE.ORG is anna.lee by then); "
            "identities that do not match are refused. For realms, prefer hub.realms: here "
            r"a '.' is any character unless written '\.'."
        ),
    )
    match_user: bool = Field(
        True,
        description=(
            "With the PAM authenticator: a user who passed the gate may log in only as the "
            "account the gate identified."
        ),
    )


class WebSettings(Strict):
    """Apache in front of the proxy: TLS, HSTS, the HTTP redirect, websockets, the gate."""

    enabled: bool = Field(True, description="Render and install the Apache virtual host.")
    server_name: HostName = Field(
        "localhost", description="The public host name of the hub (the certificate's name)."
    )
    https_port: int = Field(443, ge=1, le=65535, description="Port Apache serves HTTPS on.")
    http_port: int | None = Field(
        80, ge=1, le=65535, description="Port whose requests are redirected to HTTPS (null: none)."
    )
    tls_certificate: SafePath = Field(
        Path("/etc/ssl/certs/ssl-cert-snakeoil.pem"),
        description="Certificate file (with the chain after it), PEM.",
    )
    tls_key: SafePath = Field(
        Path("/etc/ssl/private/ssl-cert-snakeoil.key"),
        description="Private key of the certificate, PEM, readable by root only.",
    )
    hsts_max_age: duration(0, 730 * 86400) = Field(  # type: ignore[valid-type]
        "730d", validate_default=True, description="Strict-Transport-Security max-age (0s: off)."
    )
    proxy_timeout: duration(30, 86400) = Field(  # type: ignore[valid-type]
        "1h",
        validate_default=True,
        description="How long Apache keeps an idle request or websocket to the proxy open.",
    )
    vhost_file: SafePath = Field(
        Path("/etc/apache2/sites-available/hpchub.conf"),
        description="Where the virtual host is written (RHEL: /etc/httpd/conf.d/hpchub.conf).",
    )
    vhost_link: SafePath | None = Field(
        Path("/etc/apache2/sites-enabled/hpchub.conf"),
        description="Symlink that enables the virtual host (Debian), or null.",
    )
    apachectl: SafePath = Field(Path("/usr/sbin/apachectl"), description="apachectl binary.")
    gate: WebGate = Field(
        default_factory=WebGate, description="Optional gate (SSO) for requests from outside."
    )

    @model_validator(mode="after")
    def _ports_differ(self) -> WebSettings:
        if self.http_port == self.https_port:
            raise ValueError(f"http_port and https_port must differ, both are {self.https_port}")
        return self


class SystemdSettings(Strict):
    """The systemd units of the hub and of the proxy."""

    unit_dir: SafePath = Field(
        Path("/etc/systemd/system"), description="Where the unit files are installed."
    )
    hub_unit: UnitName = Field("hpchub.service", description="Unit file name of the hub.")
    proxy_unit: UnitName = Field(
        "hpchub-proxy.service", description="Unit file name of configurable-http-proxy."
    )
    home_paths: list[SafePath] = Field(
        default_factory=lambda: [Path("/home")],
        description=(
            "Where users' homes are: the hub's sandbox leaves them writable because the per-user "
            "helper, run as the user through sudo, creates each user's log folder there."
        ),
    )


class SlurmSnippet(Strict):
    """The Slurm snippet for the Jupyter partitions, for admins to merge into slurm.conf."""

    nodes: SlurmHostList = Field(
        "ALL", description="The interactive nodes of the Jupyter partitions (e.g. jupyter[1-2])."
    )
    overflow_nodes: SlurmHostList = Field(
        "ALL", description="The (batch) nodes the overflow partitions overlap with."
    )
    partitions: list[SlurmName] | None = Field(
        None,
        description=(
            "Which of slurm.partitions run on `nodes` (default: all but the overflow ones)."
        ),
    )
    overflow_partitions: list[SlurmName] | None = Field(
        None,
        description=(
            "Which of slurm.partitions only take jobs when the others are full "
            "(default: those whose name ends in -overflow)."
        ),
    )
    cpu_oversubscribe: int = Field(
        10, ge=1, le=1000, description="Jupyter jobs per CPU (OverSubscribe=FORCE:N)."
    )
    priority_tier: int = Field(10, ge=1, le=65533, description="PriorityTier of the partitions.")
    overflow_priority_tier: int = Field(
        1, ge=0, le=65533, description="PriorityTier of the overflow partitions (lower)."
    )
    memory_factor: float = Field(
        5.0,
        ge=1.0,
        le=100.0,
        description=(
            "A job may use this many times its requested memory while the node has memory to "
            "spare (cgroup.conf AllowedRAMSpace; the request stays the soft limit)."
        ),
    )

    cgroup: Literal["auto", "v1", "v2", "none"] = Field(
        "auto",
        description=(
            "The cgroup version of the Jupyter nodes, for cgroup.conf's CgroupPlugin: auto "
            "(Slurm's autodetect), v1, v2, or none (no writable memory cgroup: Slurm polls "
            "memory use and kills at the request; memory_factor does not apply)."
        ),
    )

    @model_validator(mode="after")
    def _tiers(self) -> SlurmSnippet:
        if self.overflow_priority_tier >= self.priority_tier:
            raise ValueError(
                "overflow_priority_tier must be lower than priority_tier "
                f"(got {self.overflow_priority_tier} >= {self.priority_tier})"
            )
        return self

    def split(self, offered: list[str]) -> tuple[list[str], list[str]]:
        """(primary, overflow) partition names among the site's ``offered`` ones."""
        overflow = (
            list(self.overflow_partitions)
            if self.overflow_partitions is not None
            else [p for p in offered if p.endswith("-overflow")]
        )
        primary = (
            list(self.partitions)
            if self.partitions is not None
            else [p for p in offered if p not in overflow]
        )
        return primary, overflow


class LogrotateSettings(Strict):
    """Rotation of the hub's and the proxy's logs."""

    frequency: Literal["daily", "weekly", "monthly"] = Field(
        "weekly", description="How often the logs are rotated."
    )
    rotate: int = Field(8, ge=1, le=1000, description="How many old logs are kept.")
    compress: bool = Field(True, description="Compress old logs.")


RHEL_DEFAULTS: dict = {
    "shadow_group": None,
    "pam_service": "hpchub",
    "web": {
        "vhost_file": "/etc/httpd/conf.d/hpchub.conf",
        "vhost_link": None,
        "tls_certificate": "/etc/pki/tls/certs/localhost.crt",
        "tls_key": "/etc/pki/tls/private/localhost.key",
    },
}
"""What os_family rhel changes in the defaults (a key the site file sets wins)."""


def _with_defaults(data: dict, defaults: dict) -> dict:
    """``data`` with ``defaults`` filled in where it does not set a key (nested mappings too)."""
    out = dict(data)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _with_defaults(out[key], value)
    return out


class DeploySettings(Strict):
    """Where and how `hpchub install` puts the hub's system integration in place."""

    os_family: Literal["debian", "rhel"] = Field(
        "debian",
        description=(
            "The hub node's distribution family. rhel (Rocky, Alma, RHEL 9) changes the "
            "defaults: Apache is httpd (/etc/httpd/conf.d, certificates under /etc/pki/tls), "
            "there is no shadow group, PAM goes through sssd (pam_service), and install "
            "renders the SELinux and firewalld steps."
        ),
    )
    hub_user: UnixName = Field(
        "jupyterhub-daemon", description="The unprivileged user the hub and the proxy run as."
    )
    shadow_group: UnixName | None = Field(
        "shadow",
        description=(
            "Group that may read /etc/shadow; the hub user joins it for PAM logins "
            "(Debian). null where no such group exists (rhel: the default)."
        ),
    )
    pam_service: UnixName | None = Field(
        None,
        description=(
            "The PAM service the hub checks passwords with (null: JupyterHub's default, "
            "login). With os_family rhel it defaults to hpchub, and install writes "
            "/etc/pam.d/hpchub, which asks sssd (pam_sss): an unprivileged hub cannot read "
            "/etc/shadow there."
        ),
    )
    node_networks: list[Network] = Field(
        default_factory=list,
        description=(
            "The compute nodes' networks. With os_family rhel, the rendered firewalld "
            "commands let only these reach the hub's API port (servers' API calls and the "
            "port callback)."
        ),
    )
    etc_dir: SafePath = Field(
        Path("/etc/hpchub"),
        description="Folder of jupyterhub_config.py, the Slurm snippet and the Apache secret.",
    )
    log_dir: SafePath = Field(
        Path("/var/log/hpchub"), description="Folder of hub.log and proxy.log (with log_files)."
    )
    log_files: bool = Field(
        False,
        description=(
            "Write the hub's and the proxy's logs to hub.log and proxy.log in log_dir (rotated "
            "by logrotate) instead of the journal (journalctl -u UNIT), where they go by default."
        ),
    )
    sudoers_file: SafePath = Field(
        Path("/etc/sudoers.d/hpchub"),
        description="The hub user's sudo rule (a name without dots, or sudo ignores it).",
    )
    logrotate_file: SafePath = Field(
        Path("/etc/logrotate.d/hpchub"), description="The logrotate rule for the logs."
    )
    proxy_command: SafePath = Field(
        Path("/usr/local/bin/configurable-http-proxy"),
        description="configurable-http-proxy (from npm).",
    )
    systemd: SystemdSettings = Field(
        default_factory=SystemdSettings, description="The systemd units of the hub and the proxy."
    )
    web: WebSettings = Field(
        default_factory=WebSettings, description="Apache with TLS in front of the proxy."
    )
    slurm: SlurmSnippet = Field(
        default_factory=SlurmSnippet,
        description="The Slurm snippet for the Jupyter partitions and their memory factor.",
    )
    logrotate: LogrotateSettings = Field(
        default_factory=LogrotateSettings, description="Rotation of hub.log and proxy.log."
    )

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("os_family") == "rhel":
            return _with_defaults(data, RHEL_DEFAULTS)
        return data

    @model_validator(mode="after")
    def _check(self) -> DeploySettings:
        if self.hub_user == "root":
            raise ValueError("hub_user must not be root: the hub runs unprivileged")
        if self.os_family == "rhel" and self.shadow_group is not None:
            raise ValueError(
                f"shadow_group {self.shadow_group!r}: RHEL has no group that may read "
                "/etc/shadow (mode 000); leave it unset, logins go through pam_service"
            )
        if "." in self.sudoers_file.name or self.sudoers_file.name.endswith("~"):
            raise ValueError(
                f"sudoers_file {str(self.sudoers_file)!r}: sudo ignores files in sudoers.d "
                "whose name has a dot or ends in ~; use a name such as 'hpchub'"
            )
        return self

    def check_site(self, site) -> None:
        """Checks that need the rest of the site file; ValueError names what is wrong."""
        offered = [p.name for p in site.slurm.partitions]
        for key in ("partitions", "overflow_partitions"):
            for name in getattr(self.slurm, key) or []:
                if name not in offered:
                    raise ValueError(
                        f"deploy.slurm.{key}: {name!r} is not among slurm.partitions {offered}"
                    )
        if site.hub.authenticator == "pam" and self.os_family == "rhel" and not self.pam_service:
            raise ValueError(
                "deploy.pam_service: on RHEL the unprivileged hub cannot read /etc/shadow, so it "
                "checks passwords through a PAM service of its own; set it (hpchub, the "
                "default, which install writes for sssd)"
            )
        if site.hub.authenticator == "remote_user":
            gate = self.web.gate
            if not (self.web.enabled and gate.enabled):
                raise ValueError(
                    "hub.authenticator remote_user trusts Apache alone: set deploy.web.enabled "
                    "and deploy.web.gate.enabled (the gate is what authenticates users)"
                )
            if gate.exempt_networks:
                raise ValueError(
                    "hub.authenticator remote_user: deploy.web.gate.exempt_networks must be "
                    "empty (users from those networks would have no identity)"
                )
            if not (site.hub.allowed_users or site.hub.allowed_groups):
                raise ValueError(
                    "nobody could log in: set hub.allowed_users or hub.allowed_groups "
                    "(remote_user checks them too)"
                )
