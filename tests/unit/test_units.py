import pytest

from hpchub.config.units import (
    format_duration,
    format_memory,
    format_slurm_time,
    parse_duration_seconds,
    parse_memory_mib,
)


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("4G", 4096),
        ("512M", 512),
        ("1.5G", 1536),
        ("2T", 2 * 1024 * 1024),
        ("4GB", 4096),
        ("4GiB", 4096),
        ("100", 100),
        (100, 100),
        ("2048K", 2),
        (" 8g ", 8192),
    ],
)
def test_memory_parses(text, mib):
    assert parse_memory_mib(text) == mib


@pytest.mark.parametrize(
    "bad", ["", "4X", "-1G", "G", "4 G B", "1e3", True, None, [1], "0M", "0.1K"]
)
def test_memory_rejects(bad):
    with pytest.raises(ValueError):
        parse_memory_mib(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("8h", 28800),
        ("2d", 172800),
        ("1w", 604800),
        ("90", 5400),
        (90, 5400),
        ("01:30:00", 5400),
        ("10:00", 600),
        ("1-12", 129600),
        ("1-12:30", 131400),
        ("1-00:00:00", 86400),
    ],
)
def test_duration_parses(text, seconds):
    assert parse_duration_seconds(text) == seconds


@pytest.mark.parametrize(
    "bad", ["", "8x", "h", "1:2:3:4", "-1h", "30s", "400d", True, 1.5, "1h 30"]
)
def test_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration_seconds(bad)


def test_formats_round_trip():
    assert format_memory(4096) == "4G"
    assert format_memory(1536) == "1536M"
    assert format_duration(28800) == "8h"
    assert format_duration(5400) == "1h30m"
    assert format_slurm_time(5400) == "01:30:00"
    assert format_slurm_time(86400 + 60) == "1-00:01:00"
    for s in (60, 3600, 5400, 86400, 7 * 86400):
        assert parse_duration_seconds(format_slurm_time(s)) == s


def test_compound_durations_and_round_trip():
    from hypothesis import given
    from hypothesis import strategies as st

    assert parse_duration_seconds("1h30m") == 5400
    assert parse_duration_seconds("2m30s", minimum=10) == 150

    @given(st.integers(min_value=10, max_value=365 * 86400))
    def round_trip(seconds):
        assert parse_duration_seconds(format_duration(seconds), minimum=1) == seconds

    round_trip()


@pytest.mark.parametrize("bare", [4, "4", " 4 ", 4.5, "4.5", "4B", "4 iB"])
def test_memory_input_needs_a_unit(bare):
    from hpchub.config.units import memory_input

    with pytest.raises(ValueError, match="unit"):
        memory_input(bare)


@pytest.mark.parametrize("bare", [30, "30", 1.5, "90"])
def test_duration_input_needs_a_unit(bare):
    from hpchub.config.units import duration_input

    with pytest.raises(ValueError, match="has no unit"):
        duration_input(bare)


@pytest.mark.parametrize(
    ("text", "seconds"), [("12:00:00", 43200), ("1-00:00:00", 86400), ("90m", 5400), ("10:00", 600)]
)
def test_duration_input_takes_units_and_slurm_forms(text, seconds):
    from hpchub.config.units import duration_input

    assert duration_input(text) == seconds


def test_memory_input_floor_is_named():
    from hpchub.config.units import SERVER_MEMORY_FLOOR, memory_input

    with pytest.raises(ValueError, match="needs at least 256M"):
        memory_input("100M", SERVER_MEMORY_FLOOR)
    assert memory_input("256M", SERVER_MEMORY_FLOOR) == 256
