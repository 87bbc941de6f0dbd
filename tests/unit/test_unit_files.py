"""Reading systemd units, as the test bed (no systemd) and doctor do."""

import pytest

from hpchub.deploy.units import UnitError, parse_service, read_environment_file, service_environment

UNIT = """\
# a comment
[Unit]
Description=x

[Service]
User=hubd
SupplementaryGroups=shadow
WorkingDirectory=-/var/lib/hub
Environment=A=1 "B=two words"
Environment=PATH=/opt/env/bin:/usr/bin
EnvironmentFile=/nonexistent/optional.env
ExecStart=/opt/env/bin/jupyterhub \\
    -f /etc/hpchub/jupyterhub_config.py
StandardOutput=append:/var/log/hpchub/hub.log
UMask=0077
"""


def test_parse_service():
    spec = parse_service(UNIT)
    assert spec.argv == ("/opt/env/bin/jupyterhub", "-f", "/etc/hpchub/jupyterhub_config.py")
    assert spec.user == "hubd"
    assert spec.working_directory == "/var/lib/hub"
    assert spec.environment == {"A": "1", "B": "two words", "PATH": "/opt/env/bin:/usr/bin"}
    assert spec.stdout_append == "/var/log/hpchub/hub.log"
    assert spec.supplementary_groups == ("shadow",)
    assert spec.umask == 0o077


def test_environment_files_are_read_after_environment(tmp_path):
    env = tmp_path / "proxy.env"
    env.write_text("# token\nCONFIGPROXY_AUTH_TOKEN='abc'\nA=2\n")
    spec = parse_service(UNIT.replace("/nonexistent/optional.env", str(env)))
    assert service_environment(spec)["CONFIGPROXY_AUTH_TOKEN"] == "abc"
    assert service_environment(spec)["A"] == "2"
    assert read_environment_file(env) == {"CONFIGPROXY_AUTH_TOKEN": "abc", "A": "2"}


def test_missing_environment_file_is_an_error_unless_optional():
    spec = parse_service(UNIT)
    with pytest.raises(UnitError, match="does not exist"):
        service_environment(spec)
    optional = parse_service(UNIT.replace("=/nonexistent", "=-/nonexistent"))
    assert "A" in service_environment(optional)


@pytest.mark.parametrize(
    "text,msg",
    [
        ("[Unit]\nDescription=x\n", "no \\[Service\\]"),
        ("[Service]\nUser=x\n", "no ExecStart"),
        ("[Service]\nExecStart=-/bin/true\n", "prefixes"),
        ("[Service]\nnot a line\n", "not a unit file line"),
    ],
)
def test_what_cannot_be_run_without_systemd(text, msg):
    with pytest.raises(UnitError, match=msg):
        parse_service(text)
