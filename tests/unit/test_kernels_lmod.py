"""Parsers of Lmod output, against output captured from Lmod 8.6 on the testbed."""

from hpchub.kernels import lmod


def test_spider_json_finds_modules_hierarchy_and_hidden(data_dir):
    mods = lmod.parse_spider_json((data_dir / "lmod_spider.json").read_text())
    by_name = {m.fullname: m for m in mods}
    assert set(by_name) == {"gcc/12", "py/3.11", "foo/1.0", ".hid/1", "bar/2.0"}
    assert by_name["foo/1.0"].description == "Foo test"
    assert by_name["foo/1.0"].load_sequence == ("foo/1.0",)
    # A module below a compiler is loaded after it.
    assert by_name["py/3.11"].parents == (("gcc/12",),)
    assert by_name["py/3.11"].load_sequence == ("gcc/12", "py/3.11")
    assert by_name[".hid/1"].hidden is True
    assert [m.name for m in mods] == sorted(m.name for m in mods)


def test_spider_json_garbage_is_a_clear_error():
    try:
        lmod.parse_spider_json("Lmod has detected ...")
    except lmod.LmodError as err:
        assert "not JSON" in str(err)
    else:
        raise AssertionError("expected LmodError")


def test_python_output_of_load(data_dir):
    ch = lmod.parse_python_output((data_dir / "lmod_python_load.txt").read_text())
    assert ch.ok is True
    assert ch.set["PATH"] == "/tmp/lmx/foo/bin:/usr/bin:/bin"
    assert ch.set["LOADEDMODULES"] == "foo/1.0"
    assert ch.set["FOO_HOME"] == "/tmp/lmx/foo"
    assert ch.unset == ()


def test_python_output_of_unload_removes_variables(data_dir):
    ch = lmod.parse_python_output((data_dir / "lmod_python_unload.txt").read_text())
    assert ch.ok is True
    assert {"FOO_HOME", "LOADEDMODULES", "_LMFILES_"} <= set(ch.unset)
    env = ch.apply({"FOO_HOME": "x", "LOADEDMODULES": "foo/1.0", "HOME": "/h"})
    assert "FOO_HOME" not in env and env["HOME"] == "/h" and env["PATH"] == "/usr/bin:/bin"


def test_python_output_of_failure(data_dir):
    assert lmod.parse_python_output((data_dir / "lmod_python_fail.txt").read_text()).ok is False


def test_python_output_is_never_executed():
    text = (
        'import os\nos.environ["A"] = "1";\n__import__("os").system("touch /tmp/x")\n'
        'os.environ["B"] = str(1)\nprint("hi")\n_mlstatus = True\n'
    )
    ch = lmod.parse_python_output(text)
    assert ch.set == {"A": "1"} and ch.ok is True


def test_first_error_is_the_reason_without_advice(data_dir):
    text = (data_dir / "lmod_load_error.txt").read_text()
    assert lmod.first_error(text) == 'The following module(s) are unknown: "nonexist/9.9"'


def test_clean_environment_drops_module_state_and_overrides():
    env = {
        "HOME": "/home/u",
        "USER": "u",
        "JUPYTERHUB_API_TOKEN": "t",
        "SLURM_JOB_ID": "7",
        "PATH": "/home/u/bin:/opt/env/bin:/usr/bin",
        "MODULEPATH": "/home/u/mods",
        "LOADEDMODULES": "python/3.11",
        "_LMFILES_": "/x.lua",
        "_ModuleTable001_": "abc",
        "__LMOD_REF_COUNT_PATH": "x",
        "LMOD_CMD": "/l",
        "PYTHONPATH": "/home/u/py",
        "BASH_ENV": "/home/u/.bashrc",
        "CONDA_PREFIX": "/c",
        "LD_LIBRARY_PATH": "/home/u/lib",
        "GIT_CONFIG_COUNT": "1",
    }
    out = lmod.clean_environment(env, "/usr/bin:/bin")
    assert out == {
        "HOME": "/home/u",
        "USER": "u",
        "JUPYTERHUB_API_TOKEN": "t",
        "SLURM_JOB_ID": "7",
        "GIT_CONFIG_COUNT": "1",
        "PATH": "/usr/bin:/bin",
    }
