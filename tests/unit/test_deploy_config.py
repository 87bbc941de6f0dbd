"""The deploy section: every value that lands in a system file is checked, with clear errors."""

import pytest

from hpchub.config.loader import SiteConfigError, parse_site


def _err(data) -> str:
    with pytest.raises(SiteConfigError) as e:
        parse_site(data)
    return str(e.value)


def test_defaults_are_production_paths():
    d = parse_site({}).deploy
    assert d.hub_user == "jupyterhub-daemon"
    assert str(d.sudoers_file) == "/etc/sudoers.d/hpchub"
    assert d.web.https_port == 443 and d.web.http_port == 80
    assert d.slurm.memory_factor == 5.0


@pytest.mark.parametrize(
    "path", ["relative/dir", "/etc/hp chub", "/etc/../root", '/etc/"x"', "/etc/x\nListen 1"]
)
def test_paths_that_could_break_a_config_file_are_refused(path):
    msg = _err({"deploy": {"etc_dir": path}})
    assert "deploy.etc_dir" in msg and "absolute path" in msg


def test_sudoers_file_with_a_dot_would_be_ignored_by_sudo():
    msg = _err({"deploy": {"sudoers_file": "/etc/sudoers.d/hpchub.conf"}})
    assert "sudo ignores files" in msg


def test_hub_user_is_never_root():
    assert "must not be root" in _err({"deploy": {"hub_user": "root"}})


@pytest.mark.parametrize("name", ["hub example.org", "-bad.org", "a_b.org", "x" * 300])
def test_server_name_must_be_a_host_name(name):
    assert "deploy.web.server_name" in _err({"deploy": {"web": {"server_name": name}}})


def test_ports_must_differ_and_be_valid():
    assert "must differ" in _err({"deploy": {"web": {"https_port": 8443, "http_port": 8443}}})
    assert "deploy.web.https_port" in _err({"deploy": {"web": {"https_port": 0}}})


@pytest.mark.parametrize(
    "line", ["AuthType Basic\nRequire all granted", "</Location>", "<Location />", ""]
)
def test_gate_directives_are_single_lines_without_sections(line):
    msg = _err({"deploy": {"web": {"gate": {"directives": [line]}}}})
    assert "deploy.web.gate.directives[0]" in msg


def test_gate_networks_are_parsed():
    site = parse_site({"deploy": {"web": {"gate": {"exempt_networks": ["10.1.2.3/8", "::1"]}}}})
    assert site.deploy.web.gate.exempt_networks == ["10.0.0.0/8", "::1/128"]
    assert "IP network" in _err({"deploy": {"web": {"gate": {"exempt_networks": ["campus"]}}}})


def test_user_pattern_must_name_the_account():
    assert "(?P<user>" in _err({"deploy": {"web": {"gate": {"user_pattern": "^(.*)@x$"}}}})
    assert "not a valid regular" in _err({"deploy": {"web": {"gate": {"user_pattern": "("}}}})


def test_remote_user_needs_the_gate_and_no_exemptions():
    hub = {"authenticator": "remote_user", "allowed_groups": ["jupyter"]}
    assert "deploy.web.gate.enabled" in _err({"hub": hub})
    gate = {
        "enabled": True,
        "directives": ["AuthType shibboleth"],
        "exempt_networks": ["10.0.0.0/8"],
    }
    assert "exempt_networks must be empty" in _err({"hub": hub, "deploy": {"web": {"gate": gate}}})
    ok = parse_site(
        {
            "hub": hub,
            "deploy": {"web": {"gate": {"enabled": True, "directives": ["AuthType shibboleth"]}}},
        }
    )
    assert ok.hub.authenticator == "remote_user"


def test_snippet_partitions_must_be_offered():
    msg = _err({"deploy": {"slurm": {"overflow_partitions": ["nope"]}}})
    assert "deploy.slurm.overflow_partitions: 'nope' is not among slurm.partitions" in msg


def test_snippet_defaults_split_overflow_by_name():
    site = parse_site({})
    names = [p.name for p in site.slurm.partitions]
    assert site.deploy.slurm.split(names) == (
        ["jupyter-short", "jupyter-long"],
        ["jupyter-overflow"],
    )


@pytest.mark.parametrize("factor", [0.5, 101, "lots"])
def test_memory_factor_range(factor):
    assert "deploy.slurm.memory_factor" in _err({"deploy": {"slurm": {"memory_factor": factor}}})


def test_overflow_tier_must_be_lower():
    msg = _err({"deploy": {"slurm": {"priority_tier": 1, "overflow_priority_tier": 5}}})
    assert "overflow_priority_tier must be lower" in msg


def test_unknown_deploy_key_names_its_path():
    assert "deploy.web.tls_cert: unknown key" in _err({"deploy": {"web": {"tls_cert": "/x"}}})
