"""Every site file we ship or show validates: the test bed's, the docs' examples, the starter."""

import asyncio
import re
from pathlib import Path

import jinja2
import pytest

from hpchub.cli.main import main
from hpchub.config.loader import load_site, parse_site, parse_site_text
from hpchub.config.models import SiteConfig
from hpchub.config.site_warnings import NodeFacts, warnings
from hpchub.config.starter import FoundPartition, starter_text
from hpchub.config.yamlfile import parse_yaml

ROOT = Path(__file__).resolve().parents[2]


def _doc_blocks():
    for md in sorted((ROOT / "docs").glob("*.md")):
        text = md.read_text()
        for m in re.finditer(r"```yaml\n(.*?)```", text, re.S):
            line = text[: m.start()].count("\n") + 1
            yield pytest.param(m.group(1), id=f"{md.name}:{line}")


@pytest.mark.parametrize("block", list(_doc_blocks()))
def test_every_site_file_example_in_the_docs_validates(block):
    if block.startswith("# fragment"):
        pytest.skip("a fragment, not a whole site file")
    parse_site(parse_yaml(block).data)


def _testbed_template() -> jinja2.Template:
    # The test bed's template is moving out of the product (into testbed/); read it where it is.
    for where in ("src/hpchub/templates/testbed", "testbed/hpchub_testbed/templates"):
        path = ROOT / where / "hpchub.yaml.j2"
        if path.exists():
            return jinja2.Template(path.read_text(), undefined=jinja2.StrictUndefined)
    raise AssertionError("the test bed's site template is gone")


def test_the_test_bed_site_file_validates(tmp_path):
    values = {
        "public_port": 8000,
        "hub_port": 8081,
        "proxy_api_port": 8001,
        "group": "jupyter",
        "realm": "EXAMPLE.ORG",
        "controller_addr": "10.0.0.1",
        "hub_addr": "10.78.80.2",
        "machine_addr": "10.78.80.1",
        "mail_relay_port": 8025,
        "cluster_network": "10.77.0.0/24",
        "apachectl": "/srv/tb/apachectl",
        "apache_confdir": "/etc/apache2-hpchub",
        "hub_user": "jupyterhub-daemon",
        "proxy_command": "/usr/local/bin/configurable-http-proxy",
        "unit_prefix": "hpchub",
        "https_port": 8443,
        "http_port": 8080,
        "jupyter_node": "vm",
        "batch_node": "batch1",
        "hub_name": "testbed",
        "course_member": "alice",
    }
    for key in ("hub_data", "config_d", "env", "etc", "logs", "sudoers_file", "logrotate_file"):
        values[key] = f"/srv/tb/{key}"
    for key in ("tls_certificate", "tls_key", "gate_htpasswd", "shared_dir", "testmodules"):
        values[key] = f"/srv/tb/{key}"
    values["courses_dir"] = "/srv/tb/courses"
    values["scraper"] = "metrics-scraper"
    values["code_server"] = "/opt/code-server/node_modules/.bin/code-server"
    values["scraper_token_file"] = "/srv/tb/metrics-scraper.token"
    pg = {"url": "postgresql://hpchub_x@127.0.0.1:5432/hpchub_x", "password_file": "/srv/tb/pw"}
    with_pg = parse_site_text(_testbed_template().render(**values, database=pg))
    assert with_pg.hub.database.url == pg["url"]  # HPCHUB_TESTBED_DB=postgresql
    site = parse_site_text(_testbed_template().render(**values, database=None))
    assert site.custom.min_memory == 1  # the OOM-at-start test asks for less than a server needs
    # The benchmark adds a profile of 100M stand-in jobs to the test bed's site file.
    data = site.model_dump(mode="json")
    light = {"key": "bench-light", "display_name": "Stand-in", "partitions": ["jupyter-short"]}
    data["profiles"].append({**light, "memory": "100M", "time": "1h"})
    assert parse_site(data).profiles[-1].memory == 100


def test_shipped_profiles_are_used_only_where_their_partitions_exist():
    site = parse_site(
        {"hub": {"allowed_groups": ["jupyter"]}, "slurm": {"partitions": [{"name": "work"}]}}
    )
    assert site.profiles == [] and site.custom.partitions == ["work"]
    assert site.slurm.default_partition == "work"
    assert parse_site({"custom": {"enabled": False}}).profiles  # the defaults fit the defaults


def test_a_custom_default_above_its_cap_is_refused():
    with pytest.raises(
        Exception, match=r"custom.default_memory: 32G is outside 256M to max_memory 16G"
    ):
        parse_site({"custom": {"default_memory": "32G"}})


def test_an_enabled_gate_without_directives_is_refused():
    with pytest.raises(Exception, match="the gate is enabled but has no directives"):
        parse_site({"deploy": {"web": {"gate": {"enabled": True}}}})


def test_the_starter_validates_and_explains_each_key(tmp_path):
    parts = [
        FoundPartition("work", 2 * 86400),
        FoundPartition("debug", 1800),
        FoundPartition("big"),
    ]
    text = starter_text(parts, "for a test")
    p = tmp_path / "hpchub.yaml"
    p.write_text(text)
    site = load_site(p)
    assert [x.name for x in site.slurm.partitions] == ["work", "debug", "big"]
    assert site.slurm.partitions[1].max_time == 1800
    assert "  # Seconds" not in text and "  # Folder of sbatch, squeue, scancel, sinfo." in text


def test_config_init_uses_the_gateway_and_keeps_an_existing_file(tmp_path, monkeypatch, capsys):
    from hpchub.slurm import client
    from hpchub.slurm.livestate import PartitionState

    async def partitions(self):
        return {"jupyter": PartitionState("jupyter", max_time=43200)}

    monkeypatch.setattr(client.SlurmClient, "partitions", partitions)
    p = tmp_path / "etc" / "hpchub.yaml"
    assert main(["config", "init", "--config", str(p)]) == 0
    assert load_site(p).slurm.partitions[0].max_time == 43200
    p.write_text("# mine\n")
    assert main(["config", "init", "--config", str(p)]) == 2
    assert p.read_text() == "# mine\n" and "--force" in capsys.readouterr().err
    assert main(["config", "init", "--force", "--config", str(p)]) == 0
    assert asyncio.iscoroutinefunction(client.SlurmClient.partitions)


def test_warnings_name_missing_accounts_and_a_loopback_hub_with_several_nodes():
    site = SiteConfig.model_validate(
        {"hub": {"allowed_groups": ["no-such-group-xyz"], "allowed_users": ["no-such-user-xyz"]}}
    )
    found = [str(w) for w in warnings(site, NodeFacts(slurm_nodes=3))]
    assert (
        "hub.allowed_groups[0]: no group 'no-such-group-xyz' on this node: it admits nobody"
        in found
    )
    assert any(w.startswith("hub.allowed_users[0]: no user 'no-such-user-xyz'") for w in found)
    assert any(w.startswith("hub.hub_bind_url:") and "3 nodes" in w for w in found)
    assert not [w for w in warnings(site, NodeFacts(slurm_nodes=1)) if "hub_bind_url" in w.path]


def test_disable_user_config_false_is_a_warning_and_strict_makes_it_an_error(tmp_path, capsys):
    p = tmp_path / "s.yaml"
    p.write_text("hub:\n  allowed_users: [root]\nsingleuser:\n  disable_user_config: false\n")
    assert main(["config", "validate", "--config", str(p)]) == 0
    assert "warning: singleuser.disable_user_config" in capsys.readouterr().err
    assert main(["config", "validate", "--strict", "--config", str(p)]) == 2
    assert "error: singleuser.disable_user_config" in capsys.readouterr().err


def test_validate_asks_slurm_for_its_nodes_and_warns_of_a_loopback_hub(
    tmp_path, monkeypatch, capsys
):
    from hpchub.cli import config_cmd

    monkeypatch.setattr(config_cmd, "_slurm_nodes", lambda site: 2)
    p = tmp_path / "s.yaml"
    p.write_text("hub:\n  allowed_users: [root]\n")
    assert main(["config", "validate", "--config", str(p)]) == 0
    captured = capsys.readouterr()
    assert (
        "warning: hub.hub_bind_url: http://127.0.0.1:8081/ is this node's loopback" in captured.err
    )
    assert "valid (1 warning)" in captured.out
