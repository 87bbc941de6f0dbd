"""Renderers: pure functions from the site file to file texts, checked by the real tools."""

import shutil
import subprocess
from pathlib import Path

import pytest

from hpchub.config.loader import parse_site
from hpchub.deploy import checks
from hpchub.deploy import render as R
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.units import parse_service

SITE = Path("/etc/hpchub/hpchub.yaml")


def paths(data=None) -> DeployPaths:
    return DeployPaths(parse_site(data or {}), SITE)


def test_sudoers_is_exactly_the_needed_commands_never_root():
    text = R.sudoers(paths({"hub": {"allowed_groups": ["jupyter", "hpc"], "admin_users": ["ann"]}}))
    assert "Runas_Alias HPCHUB_USERS = %hpc, %jupyter, ann, !root" in text
    assert (
        "Cmnd_Alias HPCHUB_CMDS = /usr/bin/sbatch --parsable, /usr/bin/scancel [0-9]*, "
        "/opt/hpchub/current/bin/hpchub-user prepare-logs *, /opt/hpchub/current/bin/hpchub-user log-tail *"
    ) in text
    assert "jupyterhub-daemon ALL=(HPCHUB_USERS) NOPASSWD:SETENV: HPCHUB_CMDS" in text
    assert "ALL=(ALL" not in text


def test_sudo_aliases_are_named_after_the_file():
    p = paths({"deploy": {"sudoers_file": "/etc/sudoers.d/hpchub-test2"}})
    assert "Runas_Alias HPCHUB_TEST2_USERS" in R.sudoers(p)
    p = paths({"deploy": {"sudoers_file": "/etc/sudoers.d/10-hub"}})
    assert R.sudo_alias_prefix(p) == "HPCHUB_10_HUB"


def test_hub_unit_runs_unprivileged_without_no_new_privileges():
    text = R.hub_unit(paths())
    spec = parse_service(text)
    assert spec.user == "jupyterhub-daemon"
    assert spec.argv == (
        "/opt/hpchub/current/bin/hpchub-hub",
        "-f",
        "/etc/hpchub/jupyterhub_config.py",
    )
    assert spec.environment["HPCHUB_CONFIG"] == str(SITE)
    assert spec.environment_files == ("/var/lib/hpchub/proxy.env",)
    assert spec.stdout_append is None  # the journal, unless the admin asks for files
    assert "StandardOutput=journal" in text.splitlines()
    assert spec.supplementary_groups == ("shadow",)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert "ProtectSystem=strict" in lines
    assert "ReadWritePaths=/home /var/lib/hpchub" in lines
    # sudo is setuid: no_new_privs (and the settings that imply it) would break it.
    for implied in (
        "NoNewPrivileges=",
        "SystemCallFilter=",
        "RestrictSUIDSGID=",
        "PrivateDevices=",
    ):
        assert not any(line.startswith(implied) for line in lines), implied
    assert "NoNewPrivileges=yes is not possible" in text
    assert not any(line.startswith("UMask=") for line in lines)  # sbatch passes it to jobs


def test_remote_user_hub_is_not_in_the_shadow_group():
    data = {
        "hub": {"authenticator": "remote_user", "allowed_groups": ["jupyter"]},
        "deploy": {"web": {"gate": {"enabled": True, "directives": ["AuthType shibboleth"]}}},
    }
    assert parse_service(R.hub_unit(paths(data))).supplementary_groups == ()


def test_proxy_unit_is_fully_hardened_and_trusts_apache_headers():
    text = R.proxy_unit(paths())
    spec = parse_service(text)
    assert spec.argv[0] == "/usr/local/bin/configurable-http-proxy"
    assert "--no-x-forward" in spec.argv
    assert spec.argv[spec.argv.index("--default-target") + 1] == "http://127.0.0.1:8081"
    for line in ("NoNewPrivileges=yes", "CapabilityBoundingSet=", "ProtectHome=yes"):
        assert line in text.splitlines()
    assert spec.umask == 0o077
    no_web = R.proxy_argv(paths({"deploy": {"web": {"enabled": False}}}))
    assert "--no-x-forward" not in no_web


def test_wildcard_hub_bind_is_reached_on_loopback():
    p = paths({"hub": {"hub_bind_url": "http://0.0.0.0:8081/", "allowed_groups": ["jupyter"]}})
    assert p.hub_local_url == "http://127.0.0.1:8081"


def test_vhost_tls_hsts_redirect_websockets():
    text = R.apache_vhost(paths({"deploy": {"web": {"server_name": "hub.example.org"}}}))
    assert "SSLProtocol -all +TLSv1.2 +TLSv1.3" in text
    assert 'Header always set Strict-Transport-Security "max-age=63072000"' in text
    assert "Redirect permanent / https://hub.example.org/" in text
    assert "ProxyPass / http://127.0.0.1:8000/ upgrade=websocket timeout=3600" in text
    assert 'RequestHeader set X-Forwarded-Proto "https"' in text
    assert "RequestHeader unset X-Hpchub-Remote-User early" in text
    assert "Listen" not in text  # 80 and 443 come from the distribution's ports.conf
    assert "<Location" not in text  # no gate, no identity


def test_vhost_on_other_ports_listens_itself():
    text = R.apache_vhost(paths({"deploy": {"web": {"https_port": 8443, "http_port": 8080}}}))
    assert "Listen 8443 https" in text and "Listen 8080" in text
    assert "Redirect permanent / https://localhost:8443/" in text
    text = R.apache_vhost(paths({"deploy": {"web": {"http_port": None}}}))
    assert "Redirect" not in text


def test_vhost_gate_sends_identity_to_the_hub_only():
    gate = {
        "enabled": True,
        "apache_modules": ["shib"],
        "directives": ["AuthType shibboleth", "ShibRequestSetting requireSession 1"],
        "require": "shib-session",
        "exempt_networks": ["10.0.0.0/8"],
        "local_paths": ["/Shibboleth.sso"],
    }
    p = paths({"deploy": {"web": {"gate": gate}}})
    text = R.apache_vhost(p)
    assert "ProxyPass /Shibboleth.sso !" in text
    assert text.index("ProxyPass /Shibboleth.sso !") < text.index("ProxyPass / ")
    assert "Require ip 10.0.0.0/8" in text and "Require shib-session" in text
    hub_part = text[text.index("<Location /hub/>") :]
    assert "RequestHeader set X-Hpchub-Remote-User" in hub_part
    # The gate on: Apache proves itself to the hub, so no login goes around the gate.
    assert f"Include {p.apache_secret_conf}" in hub_part
    assert "shib" in R.apache_modules(p)
    assert "Include" not in R.apache_vhost(paths({}))  # no gate, no secret


def test_vhost_remote_user_includes_the_secret_file():
    data = {
        "hub": {"authenticator": "remote_user", "allowed_groups": ["jupyter"]},
        "deploy": {"web": {"gate": {"enabled": True, "directives": ["AuthType shibboleth"]}}},
    }
    text = R.apache_vhost(paths(data))
    assert "Include /etc/hpchub/apache-frontend-secret.conf" in text
    assert 'RequestHeader set X-Hpchub-Frontend "abc123"' in R.apache_secret_conf("abc123")
    with pytest.raises(ValueError):
        R.apache_secret_conf('x" early')


def test_partition_lines_tiers_and_oversubscription():
    data = {
        "slurm": {
            "partitions": [
                {"name": "jupyter-short", "max_time": "12h", "max_memory": "32G"},
                {"name": "jupyter-long", "max_time": "7d"},
                {"name": "jupyter-overflow", "max_time": "12h"},
            ]
        },
        "deploy": {"slurm": {"nodes": "jupyter[1-2]", "overflow_nodes": "cn[001-100]"}},
    }
    lines = dict(R.partition_lines(paths(data), default="jupyter-short"))
    assert lines["jupyter-short"] == (
        "PartitionName=jupyter-short Nodes=jupyter[1-2] Default=YES MaxTime=12:00:00 "
        "OverSubscribe=FORCE:10 PriorityTier=10 MaxMemPerNode=32768"
    )
    assert lines["jupyter-overflow"] == (
        "PartitionName=jupyter-overflow Nodes=cn[001-100] MaxTime=12:00:00 "
        "OverSubscribe=FORCE:10 PriorityTier=1"
    )
    assert "Default=YES" not in R.slurm_partitions(paths(data))


@pytest.mark.parametrize("factor,percent", [(5, "500"), (1.5, "150"), (2.25, "225"), (1, "100")])
def test_memory_factor_is_allowed_ram_space(factor, percent):
    assert R.allowed_ram_percent(factor) == percent
    text = R.cgroup_snippet(paths({"deploy": {"slurm": {"memory_factor": factor}}}))
    assert f"AllowedRAMSpace={percent}" in text and "ConstrainRAMSpace=yes" in text


def test_render_all_names_owner_mode_and_check():
    files = {str(f.path): f for f in R.render_all(paths())}
    assert files["/etc/sudoers.d/hpchub"].mode == 0o440
    assert files["/etc/sudoers.d/hpchub"].check == "sudoers"
    assert files["/etc/apache2/sites-available/hpchub.conf"].check == "apache"
    assert files["/etc/systemd/system/hpchub.service"].check == "systemd"
    assert files["/etc/logrotate.d/hpchub"].check == "logrotate"
    assert all(f.owner == "root" for f in files.values())
    text = files["/etc/logrotate.d/hpchub"].text
    assert "copytruncate" in text and "\n    su " not in text


# -- the real tools ------------------------------------------------------------------------

needs_visudo = pytest.mark.skipif(not shutil.which("visudo"), reason="visudo not installed")
needs_apache = pytest.mark.skipif(
    not Path("/usr/sbin/apachectl").exists() or checks.apache_layout() is None,
    reason="apache2 not installed",
)


@needs_visudo
def test_visudo_accepts_the_rendered_rule_and_refuses_a_broken_one(tmp_path):
    f = tmp_path / "hpchub"
    f.write_text(R.sudoers(paths()))
    assert checks.check_sudoers(f).ok
    f.write_text(R.sudoers(paths()).replace("NOPASSWD:SETENV:", "NOPASSWD SETENV"))
    result = checks.check_sudoers(f)
    assert not result.ok and "syntax error" in result.output


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "c.pem", d / "k.pem"


@needs_apache
def test_apachectl_accepts_the_rendered_vhost_in_isolation(tmp_path, cert):
    web = {"tls_certificate": str(cert[0]), "tls_key": str(cert[1]), "https_port": 8999}
    gate = {
        "enabled": True,
        "apache_modules": ["auth_basic", "authn_file", "authz_user"],
        "directives": ["AuthType Basic", 'AuthName "gate"', f"AuthUserFile {tmp_path}/pw"],
        "exempt_networks": ["127.0.0.0/8"],
    }
    p = paths({"deploy": {"etc_dir": str(tmp_path), "web": {**web, "gate": gate}}})
    p.apache_secret_conf.write_text(R.apache_secret_conf("s" * 64))
    f = tmp_path / "v.conf"
    f.write_text(R.apache_vhost(p))
    result = checks.check_apache(f, R.apache_modules(p), "/usr/sbin/apachectl")
    assert result.ok, result.output
    f.write_text(R.apache_vhost(p).replace("SSLProtocol", "SSLProtokol"))
    result = checks.check_apache(f, R.apache_modules(p), "/usr/sbin/apachectl")
    assert not result.ok and "SSLProtokol" in result.output


@needs_apache
def test_apachectl_refuses_a_missing_certificate(tmp_path):
    p = paths({"deploy": {"web": {"tls_certificate": str(tmp_path / "none.pem")}}})
    f = tmp_path / "v.conf"
    f.write_text(R.apache_vhost(p))
    result = checks.check_apache(f, R.apache_modules(p), "/usr/sbin/apachectl")
    assert not result.ok and "none.pem" in result.output


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_units():
    p = paths({"deploy": {"proxy_command": "/bin/true"}})
    hub = R.hub_unit(p).replace("/opt/hpchub/current/bin/hpchub-hub", "/bin/true")
    result = checks.check_units({"hpchub.service": hub, "hpchub-proxy.service": R.proxy_unit(p)})
    assert result.ok, result.output
    bad = checks.check_units({"x.service": hub.replace("ProtectSystem", "ProtectSystm")})
    assert not bad.ok and "Unknown key" in bad.output
    nowhere = paths({"deploy": {"proxy_command": "/nonexistent/configurable-http-proxy"}})
    missing = checks.check_units({"y.service": R.proxy_unit(nowhere)})
    assert not missing.ok and "not executable" in missing.output


def test_logs_go_to_the_journal_unless_the_admin_asks_for_files():
    for render_unit, name in ((R.hub_unit, "hub"), (R.proxy_unit, "proxy")):
        journal = render_unit(paths())
        assert "StandardOutput=journal" in journal.splitlines()
        assert "append:" not in journal
        files = render_unit(paths({"deploy": {"log_files": True}}))
        assert parse_service(files).stdout_append == f"/var/log/hpchub/{name}.log"
        assert "StandardOutput=journal" not in files
