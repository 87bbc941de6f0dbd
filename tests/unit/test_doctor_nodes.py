"""Doctor's node Python check on a fake Slurm: which nodes, what it runs, what it says."""

from __future__ import annotations

import os
from pathlib import Path

from hpchub.config.loader import parse_site
from hpchub.doctor import nodes
from hpchub.doctor.deployment import Deployment
from hpchub.doctor.findings import Severity
from hpchub.slurm.client import SlurmClient
from hpchub.slurm.runner import Result

from .deploy_helpers import tmp_site

SINFO = (
    "jn1|10.0.0.1|idle|0/8/0/8|8000|7000|jupyter\n"
    "jn2|10.0.0.2|down*|0/0/8/8|8000|7000|jupyter\n"
    "bn1|10.0.0.3|mixed|4/4/0/8|8000|3000|batch\n"
    "bn1|10.0.0.3|mixed|4/4/0/8|8000|3000|jupyter-overflow\n"
    "gpu1|10.0.0.9|idle|0/8/0/8|8000|7000|gpu\n"
)


class NodeSlurm:
    """sinfo from SINFO; srun answers per node from ``answers`` (node -> (code, out, err))."""

    def __init__(self, answers):
        self.answers = answers
        self.sruns: list[tuple[str, ...]] = []

    async def __call__(self, argv, **kw):
        argv = tuple(argv)
        if argv[0].endswith("sinfo"):
            return Result(argv, 0, SINFO, "")
        self.sruns.append(argv)
        node = next(a.split("=", 1)[1] for a in argv if a.startswith("--nodelist="))
        return Result(argv, *self.answers[node])


def _deployment(tmp_path, answers, version="3.11.2") -> tuple[Deployment, NodeSlurm]:
    partitions = [{"name": "jupyter"}, {"name": "jupyter-overflow"}]
    p = tmp_site(tmp_path)
    site = p.site.model_copy(
        update={"slurm": parse_site({"slurm": {"partitions": partitions}}).slurm}
    )
    p = type(p)(site, p.site_path)
    p.prefix.mkdir(parents=True, exist_ok=True)
    (p.prefix / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {version}\n")
    fake = NodeSlurm(answers)
    return Deployment(p, slurm_run=fake, euid=os.geteuid()), fake


def test_every_up_node_of_the_sites_partitions_runs_the_probe(tmp_path):
    ok = (0, "hpchub-python 3.11.9\n", "")
    d, fake = _deployment(tmp_path, {"jn1": ok, "bn1": ok})
    (found,) = nodes.check_node_python(d)
    assert found.severity == Severity.OK and found.what.startswith("2 nodes run")
    ran = {a for argv in fake.sruns for a in argv if a.startswith(("--nodelist", "--partition"))}
    # jn2 is down, gpu1 is in no partition of the site; bn1 through its Jupyter partition.
    assert ran == {
        "--nodelist=jn1",
        "--partition=jupyter",
        "--nodelist=bn1",
        "--partition=jupyter-overflow",
    }
    argv = fake.sruns[0]
    assert argv[-3:] == (str(d.paths.prefix / "bin" / "python"), "-c", nodes.PROBE)
    assert any(a.startswith("--immediate=") for a in argv) and "--" in argv


def test_a_node_with_another_minor_version_is_an_error_naming_both(tmp_path):
    d, _ = _deployment(
        tmp_path, {"jn1": (0, "hpchub-python 3.9.18\n", ""), "bn1": (0, "hpchub-python 3.11.2", "")}
    )
    (found,) = nodes.check_node_python(d)
    assert found.severity == Severity.ERROR
    assert "node jn1 has Python 3.9.18" in found.what and "needs Python 3.11" in found.what
    assert "python3.11" in found.fix


def test_a_node_that_cannot_start_it_and_a_busy_node(tmp_path):
    missing = (
        2,
        "",
        "slurmstepd-jn1: error: execve(): /opt/x/bin/python: No such file or directory\n"
        "srun: error: jn1: task 0: Exited with exit code 2\n",
    )
    busy = (1, "", "srun: error: Unable to allocate resources: Requested nodes are busy\n")
    d, _ = _deployment(tmp_path, {"jn1": missing, "bn1": busy})
    by_node = {f.what.split()[1]: f for f in nodes.check_node_python(d)}
    assert by_node["jn1"].severity == Severity.ERROR
    assert "execve(): /opt/x/bin/python: No such file or directory" in by_node["jn1"].what
    assert by_node["bn1"].severity == Severity.WARNING and "not checked" in by_node["bn1"].what


def test_without_pyvenv_the_floor_is_hpchubs_requires_python(tmp_path):
    assert nodes.required_python() == (3, 11)
    d, _ = _deployment(tmp_path, {"jn1": (0, "hpchub-python 3.12.1", ""), "bn1": (0, "", "")})
    (d.paths.prefix / "pyvenv.cfg").unlink()
    found = nodes.check_node_python(d)
    # bn1 printed nothing: it could not run the probe.
    assert [f.what.split()[1] for f in found] == ["bn1"]
    assert "needs Python 3.11 or newer" in found[0].what


def test_the_probes_answer_is_parsed_strictly():
    assert nodes.parse_probe("noise\nhpchub-python 3.11.2\n") == (3, 11, 2)
    assert nodes.parse_probe("Python 3.11.2") is None
    assert nodes.environment_python(Path("/nonexistent")) is None


def test_run_on_node_builds_one_srun():
    seen = []

    async def runner(argv, **kw):
        seen.append((list(argv), kw))
        return Result(tuple(argv), 0, "", "")

    import asyncio

    client = SlurmClient(parse_site({}).slurm, runner)
    asyncio.run(client.run_on_node("node1", "jupyter", ["/bin/true"], timeout=60))
    argv, kw = seen[0]
    assert argv[0].endswith("srun") and "--nodelist=node1" in argv and "--immediate=30" in argv
    assert argv[-2:] == ["--", "/bin/true"] and kw["timeout"] == 60


def test_slurm_refusing_the_probe_is_not_blamed_on_the_node():
    refused = Result(
        ("srun",),
        1,
        "",
        "srun: error: Unable to allocate resources: Invalid account or account/partition combination specified\n",
    )
    f = nodes.judge("jn1", refused, Path("/opt/x/bin/python"), (3, 11), (3, 11))
    assert f.severity == Severity.WARNING and "Slurm did not run the probe job" in f.what
    crashed = Result(
        ("srun",),
        1,
        "",
        "Fatal Python error: init_fs_encoding\nsrun: error: jn1: task 0: Exited with exit code 1\n",
    )
    f = nodes.judge("jn1", crashed, Path("/opt/x/bin/python"), (3, 11), (3, 11))
    assert f.severity == Severity.ERROR and "Fatal Python error" in f.what
    assert (
        nodes.judge(
            "jn1", Result(("srun",), 0, "hpchub-python 3.11.4\n", ""), Path("/p"), (3, 11), (3, 11)
        )
        is None
    )
