import asyncio

import pytest

from hpchub.config.models import SlurmSettings
from hpchub.core import clock
from hpchub.slurm.client import SlurmClient
from hpchub.slurm.livestate import LiveState
from hpchub.slurm.parsers import count_pending, parse_sinfo_state
from hpchub.slurm.runner import Result

SINFO = """hpchub-batch1|idle|0/8/0/8|6144|0|batch|7-00:00:00|(null)|(null)
hpchub-batch1|idle|0/8/0/8|6144|0|jupyter-overflow|12:00:00|(null)|(null)
vm|mixed|2/6/0/8|8192|1536|jupyter-short*|12:00:00|gpu:a100:2(S:0)|gpu:a100:1(IDX:0)
vm|mixed|2/6/0/8|8192|1536|jupyter-long|7-00:00:00|gpu:a100:2(S:0)|gpu:a100:1(IDX:0)
dead|down*|0/0/8/8|8192|0|jupyter-short*|12:00:00|(null)|(null)
"""


def test_parse_sinfo_state():
    parts = parse_sinfo_state(SINFO)
    short = parts["jupyter-short"]
    assert short.nodes == 1  # the down node does not count
    assert (short.cpus_free, short.memory_free, short.max_node_memory) == (6, 6656, 8192)
    assert (short.gpus_total, short.gpus_used, short.max_time) == (2, 1, 12 * 3600)
    assert parts["batch"].max_time == 7 * 86400


def test_count_pending_multi_partition():
    assert count_pending("jupyter-short,jupyter-overflow\njupyter-short\n") == {
        "jupyter-short": 2,
        "jupyter-overflow": 1,
    }


class Runner:
    def __init__(self):
        self.calls = []
        self.down = False

    async def __call__(self, argv, timeout=30, **kw):
        self.calls.append(argv[0].rsplit("/", 1)[-1])
        await asyncio.sleep(0)
        if self.down:
            return Result(tuple(argv), 1, "", "sinfo: error: Unable to contact slurm controller")
        if argv[0].endswith("sinfo"):
            return Result(tuple(argv), 0, SINFO, "")
        return Result(tuple(argv), 0, "jupyter-short\n", "")


@pytest.fixture
def t():
    now = [1000.0]
    clock.set_clock(lambda: now[0])
    yield now
    clock.set_clock(None)


async def test_one_query_per_interval_however_many_forms(t):
    r = Runner()
    live = LiveState(SlurmClient(SlurmSettings(), runner=r), max_age=30)
    snaps = await asyncio.gather(*(live.get() for _ in range(50)))
    assert r.calls == ["sinfo", "squeue", "scontrol"]  # scontrol: the reservations
    assert all(s.partitions["jupyter-short"].pending == 1 for s in snaps)
    t[0] += 29
    await live.get()
    assert len(r.calls) == 3
    t[0] += 2
    await live.get()
    assert len(r.calls) == 6


async def test_slurm_down_gives_unavailable_snapshot(t):
    r = Runner()
    r.down = True
    snap = await LiveState(SlurmClient(SlurmSettings(), runner=r)).get()
    assert not snap.available and "Unable to contact" in snap.error
    assert snap.limits() == {}
