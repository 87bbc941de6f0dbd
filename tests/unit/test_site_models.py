import json

import pytest
import yaml

from hpchub.cli.main import main
from hpchub.config.loader import SiteConfigError, load_site, parse_site
from hpchub.config.models import SiteConfig


def test_defaults_are_valid():
    site = SiteConfig()
    assert site.slurm.default_partition == "jupyter-short"
    assert site.singleuser.default_url == "/lab"
    assert site.hub.allowed_groups == ["jupyter"]


def test_unknown_key_names_its_path():
    with pytest.raises(SiteConfigError) as e:
        parse_site({"slurm": {"partitons": []}})
    assert "slurm.partitons: unknown key" in str(e.value)


def test_bad_value_names_path_value_and_allowed():
    with pytest.raises(SiteConfigError) as e:
        parse_site({"custom": {"max_memory": "lots"}})
    msg = str(e.value)
    assert "custom.max_memory" in msg and "'lots'" in msg and "4G" in msg


def test_nested_list_path():
    with pytest.raises(SiteConfigError) as e:
        parse_site(
            {
                "slurm": {
                    "partitions": [{"name": "ok"}, {"name": "bad name"}],
                    "default_partition": "ok",
                }
            }
        )
    assert "slurm.partitions[1].name" in str(e.value)


def test_default_partition_must_be_listed():
    with pytest.raises(SiteConfigError) as e:
        parse_site({"slurm": {"partitions": [{"name": "a"}], "default_partition": "b"}})
    assert "slurm.default_partition: 'b' is not among" in str(e.value)


def test_nobody_could_log_in():
    with pytest.raises(SiteConfigError) as e:
        parse_site({"hub": {"allowed_groups": []}})
    assert "nobody could log in" in str(e.value)


@pytest.mark.parametrize(
    "arg", ["--account=x\n#SBATCH --uid=0", "--account x", "-A x", "--wrap=rm -rf"]
)
def test_extra_sbatch_args_are_checked(arg):
    with pytest.raises(SiteConfigError):
        parse_site({"slurm": {"extra_sbatch_args": [arg]}})


def test_profiles_fit_partitions():
    prof = {
        "key": "big",
        "display_name": "Big",
        "partitions": ["jupyter-short"],
        "memory": "1G",
        "time": "13h",
    }
    with pytest.raises(SiteConfigError) as e:
        parse_site({"profiles": [prof]})
    assert "profiles[0].time: 13h is more than partition 'jupyter-short' allows (12h)" in str(
        e.value
    )
    prof.update(time="1h", partitions=["nope"])
    with pytest.raises(
        SiteConfigError, match=r"profiles\[0\].partitions\[0\]: 'nope' is not in slurm.partitions"
    ):
        parse_site({"profiles": [prof]})


def test_profile_key_custom_is_reserved():
    prof = {
        "key": "custom",
        "display_name": "X",
        "partitions": ["jupyter-short"],
        "memory": "1G",
        "time": "1h",
    }
    with pytest.raises(SiteConfigError, match="reserved"):
        parse_site({"profiles": [prof]})


def test_idle_table_must_end_open():
    with pytest.raises(
        SiteConfigError,
        match=r"idle_timeouts\[0\].max_memory: the last row must have no max_memory",
    ):
        parse_site({"custom": {"idle_timeouts": [{"max_memory": "4G", "idle_timeout": "1h"}]}})


def test_env_values_single_line():
    with pytest.raises(SiteConfigError):
        parse_site({"singleuser": {"environment": {"A": "x\ny"}}})


def test_load_site_yaml_error(tmp_path):
    p = tmp_path / "site.yaml"
    p.write_text("hub: [unclosed\n")
    with pytest.raises(SiteConfigError) as e:
        load_site(p)
    assert "not valid YAML" in str(e.value) and "line" in str(e.value)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(SiteConfigError, match="file not found"):
        load_site(tmp_path / "nope.yaml")


def test_cli_validate_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"hub": {"allowed_users": ["alice"]}}))
    assert main(["--config", str(good), "config", "validate"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"hub": {"allowed_users": ["Alice!"]}, "bogus": 1}))
    before = bad.read_text()
    assert main(["--config", str(bad), "config", "validate"]) == 2
    err = capsys.readouterr().err
    assert "hub.allowed_users[0]" in err and "bogus: unknown key" in err
    assert bad.read_text() == before  # validate writes nothing


def test_cli_show_includes_defaults(tmp_path, capsys):
    p = tmp_path / "s.yaml"
    p.write_text("hub:\n  allowed_users: [alice]\n")
    assert main(["--config", str(p), "config", "show", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["singleuser"]["default_url"] == "/lab"
    assert data["custom"]["default_memory"] == "2G"
    assert data["profiles"][0]["key"] == "small-long"
    # What show prints is itself a valid site file.
    parse_site(data)


def test_cli_schema_is_generated(capsys):
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert "SlurmSettings" in schema["$defs"]


def test_env_var_names_the_file(tmp_path, monkeypatch):
    p = tmp_path / "s.yaml"
    p.write_text("slurm:\n  poll_interval: 7s\n")
    monkeypatch.setenv("HPCHUB_CONFIG", str(p))
    assert load_site().slurm.poll_interval == 7


def test_reference_doc_is_generated_and_current():
    from pathlib import Path

    from hpchub.config.reference import markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "reference" / "site-file.md"
    assert doc.read_text() == markdown(), (
        "run: hpchub config reference > docs/reference/site-file.md"
    )
