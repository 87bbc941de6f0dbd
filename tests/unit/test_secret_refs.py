"""Secrets by reference: refused inline in the site file, Included by the vhost, found by doctor."""

from __future__ import annotations

import os

import pytest

from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.config.secretrefs import secret_directive, secret_lines
from hpchub.deploy import render as R
from hpchub.doctor import system
from hpchub.doctor.exposed import exposed_secrets
from hpchub.doctor.findings import Severity

from .deploy_helpers import tmp_site

OIDC = ["AuthType openid-connect", "OIDCProviderMetadataURL https://idp.example.org/.well-known"]


def site(gate):
    return {"hub": {"allowed_groups": ["jupyter"]}, "deploy": {"web": {"gate": gate}}}


@pytest.mark.parametrize(
    "line",
    ["OIDCClientSecret s3cret", "OIDCCryptoPassphrase abc", "AuthLDAPBindPassword x"],
)
def test_a_secret_inline_is_refused_with_what_to_do(line):
    with pytest.raises(SiteConfigError) as err:
        parse_site(site({"enabled": True, "directives": [*OIDC, line]}))
    text = str(err.value)
    assert line.split()[0] + " holds a secret" in text
    assert "640" in text and "include_files" in text
    assert line.split()[1] not in text.replace(line.split()[0], "")  # the value is not echoed


def test_harmless_directives_pass():
    for line in ("AuthType openid-connect", "OIDCClientID hub", "SSLPassPhraseDialog builtin"):
        assert secret_directive(line) is None, line


def test_the_vhost_includes_the_secret_files_and_holds_no_secret(tmp_path):
    gate = {"enabled": True, "directives": OIDC, "include_files": ["/etc/hpchub/oidc.conf"]}
    p = tmp_site(tmp_path, web={"gate": gate})
    text = R.apache_vhost(p)
    assert "Include /etc/hpchub/oidc.conf" in text
    assert text.index("Include /etc/hpchub/oidc.conf") < text.index("<Location />")
    assert secret_lines(text) == []


def test_secret_lines_in_yaml_and_apache_text():
    text = "a: 1\n  - OIDCClientSecret abc\npassword: hunter2\npassword_file: /etc/x\n"
    text += "# OIDCCryptoPassphrase old\n"
    assert secret_lines(text) == [
        (2, "OIDCClientSecret"),
        (3, "password"),
        (5, "OIDCCryptoPassphrase"),
    ]


def test_doctor_finds_a_secret_in_a_world_readable_file(tmp_path):
    gate = {"enabled": True, "directives": OIDC, "include_files": [str(tmp_path / "oidc.conf")]}
    p = tmp_site(tmp_path, web={"gate": gate, "vhost_file": str(tmp_path / "vhost.conf")})
    d = system.Deployment(p, euid=os.geteuid())
    p.site_path.parent.mkdir(parents=True, exist_ok=True)
    p.site_path.write_text("hub: {}\n")
    p.site_path.chmod(0o644)
    (tmp_path / "vhost.conf").write_text("    OIDCClientSecret leaked\n")
    (tmp_path / "vhost.conf").chmod(0o644)
    (tmp_path / "oidc.conf").write_text("OIDCClientSecret kept\n")
    (tmp_path / "oidc.conf").chmod(0o644)
    found = exposed_secrets(d)
    whats = " | ".join(f.what for f in found)
    assert "vhost.conf:1 (the virtual host, readable by everyone) sets OIDCClientSecret" in whats
    assert "oidc.conf (a gate include file) is readable by everyone" in whats
    assert "leaked" not in whats
    (tmp_path / "vhost.conf").chmod(0o640)
    (tmp_path / "oidc.conf").chmod(0o640)
    assert {f.severity for f in exposed_secrets(d)} == {Severity.OK}
