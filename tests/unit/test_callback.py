import json

import pytest

from hpchub.spawner.callback import ENDED, parse_port_body

R = (40000, 49999)


def test_accepts_only_port():
    assert parse_port_body(json.dumps({"port": 40001}).encode(), R) == 40001


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"port": 40001, "exec_prefix": "touch /tmp/pwned"}, "refused keys: ['exec_prefix']"),
        ({"port": 40001, "ip": "10.0.0.1"}, "refused keys: ['ip']"),
        ({"port": "40001"}, "integer"),
        ({"port": True}, "integer"),
        ({"port": 40001.0}, "integer"),
        ({"port": 22}, "outside the allowed range"),
        ({}, "integer"),
        ([40001], "JSON object"),
    ],
)
def test_refuses_everything_else(body, needle):
    with pytest.raises(ValueError, match=".*") as e:
        parse_port_body(json.dumps(body).encode(), R)
    assert needle in str(e.value)


def test_ended_only_alone_and_exactly_true():
    assert parse_port_body(json.dumps({"ended": True}).encode(), R) == ENDED
    for body in ({"ended": 1}, {"ended": True, "port": 40001}, {"ended": "yes"}):
        with pytest.raises(ValueError, match="refused keys"):
            parse_port_body(json.dumps(body).encode(), R)


def test_refuses_non_json():
    with pytest.raises(ValueError, match="must be JSON"):
        parse_port_body(b"port=1", R)
