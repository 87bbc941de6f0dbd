"""deploy.os_family: rhel. The files a Rocky 9 hub node needs, checked by the real tools here
(Debian's apachectl in a RHEL-style ServerRoot, visudo, sh -n), and PAM without a shadow group."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hpchub.auth.hubconfig import auth_piece
from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.deploy import checks, rhel
from hpchub.deploy import render as R
from hpchub.deploy.install import Installer, check_candidate
from hpchub.deploy.paths import DeployPaths
from hpchub.deploy.units import parse_service
from hpchub.doctor.deployment import Deployment
from hpchub.doctor.findings import Severity
from hpchub.doctor.services import check_pam

from .deploy_helpers import FakeRun, tmp_site

SITE = Path("/etc/hpchub/hpchub.yaml")


def rhel_paths(deploy: dict | None = None, hub: dict | None = None) -> DeployPaths:
    data = {
        "hub": {"allowed_groups": ["jupyter"], **(hub or {})},
        "deploy": {"os_family": "rhel", **(deploy or {})},
    }
    return DeployPaths(parse_site(data), SITE)


# -- the model ------------------------------------------------------------------------------


def test_rhel_changes_the_defaults():
    d = rhel_paths().deploy
    assert d.web.vhost_file == Path("/etc/httpd/conf.d/hpchub.conf")
    assert d.web.vhost_link is None
    assert d.web.tls_certificate == Path("/etc/pki/tls/certs/localhost.crt")
    assert d.web.tls_key == Path("/etc/pki/tls/private/localhost.key")
    assert d.shadow_group is None and d.pam_service == "hpchub"
    debian = parse_site({}).deploy
    assert debian.os_family == "debian" and debian.shadow_group == "shadow"
    assert debian.pam_service is None


def test_what_the_site_file_sets_wins():
    web = {"tls_certificate": "/etc/pki/tls/certs/hub.crt", "server_name": "hub.example.org"}
    d = rhel_paths({"web": web, "pam_service": "jupyterhub"}).deploy
    assert d.web.tls_certificate == Path("/etc/pki/tls/certs/hub.crt")
    assert d.web.tls_key == Path("/etc/pki/tls/private/localhost.key")
    assert d.web.vhost_file == Path("/etc/httpd/conf.d/hpchub.conf")
    assert d.pam_service == "jupyterhub"


@pytest.mark.parametrize(
    "deploy,words",
    [
        ({"os_family": "suse"}, ["deploy.os_family", "'debian'", "'rhel'"]),
        ({"os_family": "rhel", "shadow_group": "shadow"}, ["shadow_group", "RHEL"]),
        ({"os_family": "rhel", "pam_service": None}, ["deploy.pam_service", "sssd"]),
        ({"os_family": "rhel", "node_networks": ["10.1.0.0/33"]}, ["node_networks", "network"]),
    ],
)
def test_wrong_rhel_settings_name_the_key(deploy, words):
    with pytest.raises(SiteConfigError) as e:
        parse_site({"deploy": deploy})
    assert all(w in str(e.value) for w in words), str(e.value)


# -- what is rendered -----------------------------------------------------------------------


def test_rhel_renders_httpd_pam_selinux_and_firewalld():
    files = {str(f.path): f for f in R.render_all(rhel_paths())}
    vhost = files["/etc/httpd/conf.d/hpchub.conf"]
    assert vhost.check == "apache"
    assert "SSLCertificateFile /etc/pki/tls/certs/localhost.crt" in vhost.text
    assert "ErrorLog logs/hpchub_error_log" in vhost.text
    assert "CustomLog logs/hpchub_access_log combined" in vhost.text
    assert files["/etc/pam.d/hpchub"].text.count("pam_sss.so") == 2
    for script in ("/etc/hpchub/selinux.sh", "/etc/hpchub/firewalld.sh"):
        assert files[script].check == "shell" and files[script].mode == 0o755
    assert not any("/etc/apache2" in p for p in files)


def test_debian_renders_no_rhel_files_and_no_httpd_logs():
    files = {str(f.path): f for f in R.render_all(DeployPaths(parse_site({}), SITE))}
    assert not any(p.endswith(("selinux.sh", "firewalld.sh")) or "pam.d" in p for p in files)
    assert "ErrorLog" not in files["/etc/apache2/sites-available/hpchub.conf"].text


def test_the_rhel_hub_joins_no_shadow_group_and_uses_its_pam_service():
    p = rhel_paths()
    assert parse_service(R.hub_unit(p)).supplementary_groups == ()
    c = auth_piece(p.site)
    assert c.PAMAuthenticator.service == "hpchub"
    assert c.PAMAuthenticator.open_sessions is False
    assert "service" not in auth_piece(parse_site({})).PAMAuthenticator


def test_no_pam_file_for_remote_user():
    gate = {"enabled": True, "directives": ["AuthType shibboleth"]}
    p = rhel_paths({"web": {"gate": gate}}, {"authenticator": "remote_user"})
    assert not any("pam.d" in str(f.path) for f in R.render_all(p))


def test_selinux_script_booleans_contexts_and_ports():
    gate = {
        "enabled": True,
        "directives": ["AuthType openid-connect"],
        "include_files": ["/etc/httpd/oidc.conf"],
    }
    web = {"https_port": 8444, "http_port": 80, "gate": gate}
    text = rhel.selinux_script(rhel_paths({"web": web}))
    assert "setsebool -P httpd_can_network_connect on" in text
    assert "http_port 8444" in text and "http_port 80\n" not in text  # 80 is http_port_t
    assert r"fcontext httpd_config_t '/etc/hpchub/apache-frontend-secret\.conf'" in text
    assert r"fcontext httpd_config_t '/etc/httpd/oidc\.conf'" in text
    assert "fcontext usr_t '/opt/hpchub(/.*)?'" in text  # the release root, not current/
    assert "fcontext bin_t '/opt/hpchub(/.*)?/bin(/.*)?'" in text
    assert "fcontext bin_t '/usr/local/lib/node_modules/configurable-http-proxy/bin(/.*)?'" in text
    assert "restorecon -R -i /opt/hpchub /usr/local/bin/configurable-http-proxy" in text
    assert "cert_t" not in text  # /etc/pki/tls has its labels already


def test_selinux_labels_certificates_outside_pki():
    web = {"tls_certificate": "/srv/tls/hub.crt", "tls_key": "/srv/tls/hub.key"}
    text = rhel.selinux_script(rhel_paths({"web": web}))
    assert r"fcontext cert_t '/srv/tls/hub\.crt'" in text and "/srv/tls/hub.key" in text


def test_firewalld_opens_apache_to_users_and_the_hub_port_to_the_nodes_only():
    p = rhel_paths({"node_networks": ["10.1.0.0/16", "fd00:1::/64"]})
    text = rhel.firewalld_script(p)
    hub_port = p.hub_bind[1]
    assert "--add-service=https" in text and "--add-service=http\n" in text
    assert (
        f"""--add-rich-rule='rule family="ipv4" source address="10.1.0.0/16" port port="{hub_port}" """
        """protocol="tcp" accept'"""
    ) in text
    assert 'rule family="ipv6" source address="fd00:1::/64"' in text
    rules = [line for line in text.splitlines() if line.startswith("firewall-cmd --permanent")]
    assert not any(str(p.proxy_public[1]) in r or str(p.proxy_api[1]) in r for r in rules)
    assert "--add-port" not in text


def test_firewalld_without_node_networks_says_so():
    text = rhel.firewalld_script(rhel_paths({"web": {"https_port": 8444, "http_port": None}}))
    assert "--add-port=8444/tcp" in text and "--add-service=http" not in text
    assert "deploy.node_networks is empty" in text and "rich-rule" not in text


def test_fcontext_expressions_escape_what_regexes_mean():
    assert rhel.fcontext_re("/opt/hub+1/a.b") == r"/opt/hub\+1/a\.b"


# -- the real tools -------------------------------------------------------------------------

needs_apache = pytest.mark.skipif(
    not Path("/usr/sbin/apachectl").exists() or checks.apache_layout() is None,
    reason="Apache not installed",
)


@needs_apache
def test_apachectl_parses_the_rhel_vhost_in_a_rhel_style_server_root(tmp_path):
    gate = {
        "enabled": True,
        "apache_modules": ["auth_basic", "authn_file", "authz_user"],
        "directives": ["AuthType Basic", 'AuthName "gate"', f"AuthUserFile {tmp_path}/pw"],
        "exempt_networks": ["10.0.0.0/8"],
    }
    p = rhel_paths({"etc_dir": str(tmp_path), "web": {"https_port": 8444, "gate": gate}})
    p.apache_secret_conf.write_text(R.apache_secret_conf("s" * 64))
    f = tmp_path / "hpchub.conf"
    f.write_text(R.apache_vhost(p))
    result = checks.check_apache(f, R.apache_modules(p), "/usr/sbin/apachectl", "rhel")
    assert result.ok, result.output
    if checks.apache_layout()[1] == "debian":
        assert "RHEL-style ServerRoot" in result.output
        assert "stand-in certificate for /etc/pki/tls/certs/localhost.crt" in result.output
    # The same check refuses a broken directive, and a module RHEL's httpd lacks.
    f.write_text(R.apache_vhost(p).replace("ProxyPreserveHost", "ProxyPreservHost"))
    result = checks.check_apache(f, R.apache_modules(p), "/usr/sbin/apachectl", "rhel")
    assert not result.ok and "ProxyPreservHost" in result.output
    f.write_text(R.apache_vhost(p))
    result = checks.check_apache(f, ["no_such_thing"], "/usr/sbin/apachectl", "rhel")
    assert not result.ok and "no_such_thing" in result.output


@needs_apache
def test_install_checks_the_rhel_vhost_with_the_rhel_layout(tmp_path):
    p = rhel_paths({"etc_dir": str(tmp_path)})
    vhost = next(f for f in R.render_all(p) if f.check == "apache")
    result = check_candidate(vhost, p)  # the frontend secret is stood in for, too
    assert result.ok, result.output


@pytest.mark.skipif(not shutil.which("visudo"), reason="visudo not installed")
def test_visudo_accepts_the_rhel_sudoers():
    f = next(f for f in R.render_all(rhel_paths()) if f.check == "sudoers")
    assert check_candidate(f, rhel_paths()).ok


def test_the_scripts_parse_and_do_nothing_where_selinux_and_firewalld_are_absent(tmp_path):
    p = rhel_paths({"node_networks": ["10.1.0.0/16"]})
    for f in R.render_all(p):
        if f.check != "shell":
            continue
        assert check_candidate(f, p).ok
        script = tmp_path / f.path.name
        script.write_text(f.text)
        broken = tmp_path / "broken.sh"
        broken.write_text(f.text.replace("fi\n", "", 1))
        assert not checks.check_shell(broken).ok
        if f.path.name == "hub-operator.sh":
            continue  # it talks to Slurm's accounting: run by the testbed, not here
        if shutil.which("selinuxenabled") or shutil.which("firewall-cmd"):
            continue  # a RHEL machine: running them would change it
        r = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True)
        assert r.returncode == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr


# -- installing and doctor --------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("visudo"), reason="visudo not installed")
def test_install_on_rhel_runs_the_selinux_script_and_names_the_firewall_one(tmp_path, monkeypatch):
    monkeypatch.setattr(rhel, "PAM_DIR", tmp_path / "pam.d")
    monkeypatch.setattr(checks, "check_sudoers_all", lambda: checks.CheckResult("x", True))
    monkeypatch.setattr(checks, "check_apache_all", lambda a: checks.CheckResult("x", True))
    p = tmp_site(tmp_path, os_family="rhel", node_networks=["10.1.0.0/16"])
    said, run = [], FakeRun("SELinux is disabled here: nothing to do\n")
    Installer(p, chown=False, log=said.append, run=run).install()
    assert (tmp_path / "pam.d/hpchub").read_text().count("pam_sss") == 2
    selinux = str(p.deploy.etc_dir / "selinux.sh")
    assert ["/bin/sh", selinux] in run.calls
    assert not any("firewalld.sh" in " ".join(c) for c in run.calls)
    assert any("review and run" in s and "firewalld.sh" in s for s in said)
    assert not any(c[0] == "usermod" for c in run.calls)  # no shadow group to join


def _pam_deployment(tmp_path, pam_text=None, sssd=True) -> Deployment:
    pam_dir = tmp_path / "pam.d"
    pam_dir.mkdir(parents=True)
    if pam_text is not None:
        (pam_dir / "hpchub").write_text(pam_text)
    socket = tmp_path / "pipes-pam"
    if sssd:
        socket.touch()
    p = tmp_site(tmp_path, os_family="rhel")
    return Deployment(p, euid=os.geteuid(), pam_dir=pam_dir, sssd_socket=socket)


def test_doctor_pam_without_shadow_group(tmp_path):
    text = rhel.pam_service(rhel_paths())
    (ok,) = check_pam(_pam_deployment(tmp_path / "a", text))
    assert ok.severity == Severity.OK and "sssd" in ok.what
    (missing,) = check_pam(_pam_deployment(tmp_path / "b", None))
    assert missing.severity == Severity.ERROR and "pam.d/hpchub" in missing.what
    (unix,) = check_pam(_pam_deployment(tmp_path / "c", "auth required pam_unix.so\n"))
    assert unix.severity == Severity.ERROR and "pam_sss" in unix.what
    (down,) = check_pam(_pam_deployment(tmp_path / "d", text, sssd=False))
    assert down.severity == Severity.ERROR and "sssd" in down.fix


def test_config_validate_warns_about_rhel_without_node_networks():
    from hpchub.config.site_warnings import warnings

    found = [str(w) for w in warnings(rhel_paths().site)]
    assert any(w.startswith("deploy.node_networks: empty") for w in found)
    assert not any(
        "node_networks" in str(w)
        for w in warnings(rhel_paths({"node_networks": ["10.0.0.0/8"]}).site)
    )
    assert not any("node_networks" in str(w) for w in warnings(parse_site({})))


def test_doctor_pam_follows_an_include(tmp_path):
    d = _pam_deployment(tmp_path, "auth include system-auth\naccount include system-auth\n")
    (missing,) = check_pam(d)
    assert missing.severity == Severity.ERROR  # system-auth is not there
    (d.pam_dir / "system-auth").write_text("auth sufficient pam_sss.so forward_pass\n")
    (ok,) = check_pam(d)
    assert ok.severity == Severity.OK
