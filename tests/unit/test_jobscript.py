import pytest

from hpchub.slurm.jobscript import JobRequest, render_job_script


def make(**kw):
    base = dict(
        user="alice",
        server_name="",
        partitions=("jupyter-short", "jupyter-overflow"),
        memory_mib=4096,
        cpus=2,
        time_seconds=8 * 3600,
        log_dir="/home/alice/.hpchub/logs",
        workdir="/home/alice",
        prefix_bin="/opt/hpchub/env/bin",
        port_low=40000,
        port_high=49999,
    )
    base.update(kw)
    return JobRequest(**base)


def sbatch_lines(script):
    return [ln for ln in script.splitlines() if ln.startswith("#SBATCH")]


def test_renders_resources():
    s = render_job_script(make())
    lines = sbatch_lines(s)
    assert "#SBATCH --partition=jupyter-short,jupyter-overflow" in lines
    assert "#SBATCH --mem=4096M" in lines
    assert "#SBATCH --cpus-per-task=2" in lines
    assert "#SBATCH --time=08:00:00" in lines
    assert "#SBATCH --output=/home/alice/.hpchub/logs/jupyter-%j.log" in lines
    assert s.startswith("#!/bin/bash\n")
    assert "--port-range=40000-49999" in s


def test_no_secret_in_script():
    s = render_job_script(make())
    assert "TOKEN" not in s  # the token travels in the environment only


def test_environment_values_are_quoted():
    s = render_job_script(make(environment=(("GREETING", "hi; rm -rf ~ $(id)"),)))
    assert "export GREETING='hi; rm -rf ~ $(id)'" in s


def test_server_args_quoted():
    s = render_job_script(make(server_args=("--ServerApp.x=a b",)))
    assert "'--ServerApp.x=a b'" in s


@pytest.mark.parametrize(
    "kw",
    [
        {"user": "root;id"},
        {"user": "Alice"},
        {"server_name": "a b"},
        {"server_name": "x\n#SBATCH --uid=0"},
        {"partitions": ("short\n#SBATCH --uid=0",)},
        {"partitions": ()},
        {"memory_mib": 0},
        {"cpus": True},
        {"log_dir": "/tmp/$(id)"},
        {"workdir": "relative"},
        {"extra_sbatch_lines": ("--wrap=rm -rf /",)},
        {"environment": (("A", "x\ny"),)},
        {"environment": (("BAD-NAME", "x"),)},
        {"server_args": ("a\nb",)},
    ],
)
def test_rejects_unsafe_values(kw):
    with pytest.raises(ValueError):
        make(**kw)


def test_named_server_job_name():
    assert make(server_name="big").job_name == "jupyter-alice-big"


def test_default_server_command_is_the_prefix_singleuser():
    s = render_job_script(make(server_args=("--debug",)))
    assert "\n    /opt/hpchub/env/bin/hpchub-jupyterhub-singleuser --debug\n" in s


def test_server_command_from_spawner_cmd_is_quoted():
    s = render_job_script(make(server_cmd=("/opt/site/bin/wrap", "a b"), server_args=("--x",)))
    assert "\n    /opt/site/bin/wrap 'a b' --x\n" in s


@pytest.mark.parametrize("cmd", [("rm -rf /",), ("./wrap",), ("/opt/$(id)",), ("/ok", "a\nb")])
def test_rejects_unsafe_server_command(cmd):
    with pytest.raises(ValueError):
        make(server_cmd=cmd)
