"""Issue 14: a site file that cannot be misread, and errors that say where and what to write."""

import pytest

from hpchub.config.base import _PATTERN_WORDS
from hpchub.config.loader import SiteConfigError, load_site
from hpchub.config.models import SiteConfig
from hpchub.config.yamlfile import parse_yaml
from hpchub.resources.catalog import Catalog
from hpchub.resources.request import OptionsError, resolve_request

GROUPS = "hub:\n  allowed_groups: [jupyter]\n"


def _errors(tmp_path, text: str | bytes) -> list[str]:
    p = tmp_path / "hpchub.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SiteConfigError) as e:
        load_site(p)
    return e.value.problems


def test_yaml_1_1_conversions_never_reach_a_model():
    data = parse_yaml("a: 12:00:00\nb: off\nc: yes\nd: 010\ne: 1_000\nf: true\ng: 0x10\n").data
    assert data == {
        "a": "12:00:00",
        "b": "off",
        "c": "yes",
        "d": 10,
        "e": "1_000",
        "f": True,
        "g": 16,
    }


def test_unquoted_slurm_time_is_twelve_hours_not_thirty_days(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(
        GROUPS + "slurm:\n  partitions:\n    - {name: jupyter-short, max_time: 12:00:00}\n"
    )
    assert load_site(p).slurm.partitions[0].max_time == 12 * 3600


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("slurm:\n  poll_interval: 30\n", "30 has no unit: write the duration with one, e.g. 30s"),
        ("culling:\n  every: 300\n", "300 has no unit"),
        (
            "custom:\n  max_memory: 4\n",
            "4 has no unit: write the size with one, e.g. 4M for MiB or 4G",
        ),
        ("custom:\n  max_time: '90'\n", "90 has no unit"),
        ("singleuser:\n  disable_user_config: off\n", "'off' is not a switch: write true or false"),
    ],
)
def test_bare_numbers_and_yaml_words_are_refused_with_how_to_write_them(
    tmp_path, yaml_text, needle
):
    problems = _errors(tmp_path, GROUPS + yaml_text)
    assert any(needle in p for p in problems), problems


def test_poll_interval_takes_seconds_with_a_unit(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(GROUPS + "slurm:\n  poll_interval: 30s\n")
    assert load_site(p).slurm.poll_interval == 30


def test_server_memory_below_what_a_server_needs_is_refused(tmp_path):
    text = GROUPS + (
        "profiles:\n  - {key: tiny, display_name: Tiny, partitions: [jupyter-short],"
        " memory: 4M, time: 1h}\n"
    )
    (problem,) = _errors(tmp_path, text)
    assert "profiles[0].memory: 4M is too little for a Jupyter server to start" in problem
    assert "at least 256M, custom.min_memory" in problem


def test_a_duplicate_key_names_both_lines(tmp_path):
    (problem,) = _errors(tmp_path, GROUPS + "slurm:\n  poll_interval: 5s\n  poll_interval: 9s\n")
    assert "line 5, column 3: slurm.poll_interval: given twice, on line 4 and on line 5" in problem


def test_every_error_has_file_line_column_and_all_are_listed(tmp_path):
    text = (
        GROUPS
        + "slurm:\n  poll_interval: 30\nsingleuser:\n  default_url: lab\ncustom:\n  max_memory: 4\n"
    )
    problems = _errors(tmp_path, text)
    where = str(tmp_path / "hpchub.yaml")
    assert len(problems) == 3  # in the file's order
    assert problems[0].startswith(f"{where}, line 4, column 3: slurm.poll_interval: 30 has no")
    assert problems[1].startswith(f"{where}, line 6, column 3: singleuser.default_url: 'lab'")
    assert problems[2].startswith(f"{where}, line 8, column 3: custom.max_memory: 4 has no unit")


def test_pattern_errors_speak_words_not_regular_expressions(tmp_path):
    (problem,) = _errors(tmp_path, GROUPS + "singleuser:\n  default_url: lab\n")
    assert "a URL path starting with '/'" in problem and "^" not in problem


def test_every_pattern_in_the_schema_has_words():
    import json

    schema = json.dumps(SiteConfig.model_json_schema())
    patterns = set(__import__("re").findall(r'"pattern": "((?:[^"\\]|\\.)*)"', schema))
    missing = [p for p in patterns if json.loads(f'"{p}"') not in _PATTERN_WORDS]
    assert missing == []


def test_cross_field_errors_are_all_listed(tmp_path):
    text = GROUPS + (
        "profiles:\n"
        "  - {key: a, display_name: A, partitions: [nope], memory: 1G, time: 1h}\n"
        "  - {key: b, display_name: B, partitions: [gone], memory: 1G, time: 1h}\n"
    )
    problems = _errors(tmp_path, text)
    assert any(
        "profiles[0].partitions" in p and "'nope'" in p and "line 4, column 44" in p
        for p in problems
    )
    assert any(
        "profiles[1].partitions" in p and "'gone'" in p and "line 5, column 44" in p
        for p in problems
    )


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    (problem,) = _errors(tmp_path, GROUPS.encode() + b"# caf\xe9\n")
    assert "line 3, column 6: byte 0xe9 is not UTF-8" in problem


def test_a_missing_file_says_how_to_make_one(tmp_path):
    (problem,) = _errors_missing(tmp_path)
    assert "file not found" in problem and "hpchub config init" in problem


def _errors_missing(tmp_path):
    with pytest.raises(SiteConfigError) as e:
        load_site(tmp_path / "none.yaml")
    return e.value.problems


def test_the_default_site_file_missing_is_an_error_too(monkeypatch, tmp_path):
    import hpchub.config.loader as loader

    monkeypatch.delenv("HPCHUB_CONFIG", raising=False)
    monkeypatch.setattr(loader, "DEFAULT_PATH", tmp_path / "etc-hpchub.yaml")
    with pytest.raises(SiteConfigError, match="hpchub config init"):
        load_site()


@pytest.mark.parametrize("memory", [4096, "4096", 4.5])
def test_api_memory_without_a_unit_is_refused_with_the_same_message(memory):
    cat = Catalog.from_site(SiteConfig())
    with pytest.raises(OptionsError) as e:
        resolve_request({"profile": "custom", "memory": memory}, cat, "alice", {"jupyter"})
    assert "has no unit: write the size with one" in str(e.value)


def test_custom_requests_below_the_floor_are_refused():
    cat = Catalog.from_site(SiteConfig())
    with pytest.raises(OptionsError, match="too little for a Jupyter server to start"):
        resolve_request({"profile": "custom", "memory": "64M"}, cat, "alice", {"jupyter"})


def test_config_show_output_is_a_valid_site_file(tmp_path, capsys):
    from hpchub.cli.main import main

    p = tmp_path / "in.yaml"
    p.write_text(
        GROUPS + "slurm:\n  partitions:\n    - {name: jupyter-short, max_time: '12:00:00'}\n"
    )
    assert main(["config", "show", "--config", str(p)]) == 0
    shown = tmp_path / "shown.yaml"
    shown.write_text(capsys.readouterr().out)
    assert load_site(shown) == load_site(p)


def test_a_misspelt_key_gets_the_likely_one(tmp_path):
    text = GROUPS + "slurm:\n  partitions:\n    - {name: a, max_tiem: 1h}\n  poll_intervall: 5s\n"
    problems = _errors(tmp_path, text)
    assert any(
        "slurm.partitions[0].max_tiem: unknown key (did you mean 'max_time'?)" in p
        for p in problems
    )
    assert any(
        "slurm.poll_intervall: unknown key (did you mean 'poll_interval'?)" in p for p in problems
    )


def test_every_problem_of_one_section_is_listed(tmp_path):
    text = GROUPS + (
        "singleuser:\n  port_range: [80, 90]\n  environment:\n    1BAD: x\n    ALSO-BAD: y\n"
    )
    problems = _errors(tmp_path, text)
    assert any("singleuser.port_range: 80-90 is not within" in p for p in problems)
    assert any("singleuser.environment.1BAD: '1BAD' is not a variable name" in p for p in problems)
    assert any("singleuser.environment.ALSO-BAD: 'ALSO-BAD'" in p for p in problems)
