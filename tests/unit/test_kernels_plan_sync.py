"""Rules -> kernelspecs (pure), and the writer's idempotency and ownership rules."""

import json
from pathlib import Path

import pytest

from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.kernels.lmod import ModuleInfo
from hpchub.kernels.plan import kernel_name, plan
from hpchub.kernels.sync import MARKER, sync_files, sync_kernels

LAUNCHER = Path("/opt/hpchub/env/bin/hpchub-kernel")


def mod(fullname, sort_key="", parents=(), hidden=False, description=""):
    name, _, version = fullname.partition("/")
    return ModuleInfo(
        fullname,
        name,
        version,
        f"/m/{fullname}.lua",
        description,
        hidden,
        sort_key or version,
        parents,
    )


def settings(**kernels):
    return parse_site({"kernels": kernels}).kernels


MODULES = [
    mod("python/3.10", "000000003.000000010"),
    mod("python/3.11", "000000003.000000011", description="Python 3.11"),
    mod("python/3.11-debug"),
    mod("R/4.3"),
    mod("gcc/12"),
    mod("py/3.12", parents=(("gcc/12",), ("intel/2024",))),
    mod(".python/hidden", hidden=True),
]


def test_rules_choose_modules_kinds_and_names():
    k = settings(
        modulepath=["/site/modules"],
        base_modules=["StdEnv"],
        environment={"LMOD_PACKAGE_PATH": "/site/lmod"},
        rules=[
            {
                "match": "python/*",
                "exclude": ["*-debug"],
                "display_name": "Python {version}",
                "env": {"PYTHONPATH": "/site/py"},
            },
            {"match": "R/*", "kind": "r"},
            {"match": "py/*"},
        ],
    )
    wanted, notes = plan(MODULES, k, LAUNCHER)
    assert sorted(wanted) == [
        "module-py-3.12",
        "module-python-3.10",
        "module-python-3.11",
        "module-r-4.3",
    ]
    spec = wanted["module-python-3.11"].spec
    assert spec["display_name"] == "Python 3.11"
    assert spec["language"] == "python"
    argv = spec["argv"]
    assert argv[0] == str(LAUNCHER)
    assert "--modulepath=/site/modules" in argv
    assert argv.index("--module=StdEnv") < argv.index("--module=python/3.11")
    assert "--check=python" in argv and "--connection-file={connection_file}" in argv
    # Set after the launcher's clean-up (kernel.json's env would be cleaned away).
    assert argv.index("--env=LMOD_PACKAGE_PATH=/site/lmod") < argv.index("--module=StdEnv")
    assert "--env=PYTHONPATH=/site/py" in argv and "env" not in spec
    assert argv[argv.index("--") + 1 :] == [
        "python3",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec["metadata"]["hpchub"]["test_code"] == "import sys; print(sys.executable)"
    r = wanted["module-r-4.3"].spec
    assert r["language"] == "R" and r["display_name"] == "R/4.3 (R)"
    # A hierarchical module loads its first parent chain; the choice is reported.
    py = wanted["module-py-3.12"].spec["argv"]
    assert py.index("--module=gcc/12") < py.index("--module=py/3.12")
    assert any("py/3.12" in n and "2 ways" in n for n in notes)


def test_python3_name_goes_to_the_chosen_module():
    k = settings(python3_module="python/3.11", rules=[{"match": "python/*"}])
    wanted, _ = plan(MODULES, k, LAUNCHER)
    py3 = wanted["python3"].spec
    assert py3["display_name"] == "Python 3 (python/3.11)"
    assert (
        "--module=python/3.11" in py3["argv"]
        and "--display-name=Python 3 (python/3.11)" in py3["argv"]
    )
    assert wanted["module-python-3.11"].spec["display_name"] == "python/3.11 (Python)"
    missing = settings(python3_module="python/9", rules=[{"match": "python/*"}])
    wanted, notes = plan(MODULES, missing, LAUNCHER)
    assert "python3" not in wanted and any("python3_module python/9" in n for n in notes)


def test_latest_keeps_the_highest_version_only():
    k = settings(rules=[{"match": "python/3.1?", "versions": "latest"}])
    wanted, _ = plan(MODULES, k, LAUNCHER)
    assert list(wanted) == ["module-python-3.11"]


def test_custom_kind_and_error_kernel_off():
    k = settings(
        error_kernel=False,
        rules=[
            {
                "match": "gcc/*",
                "kind": "custom",
                "language": "julia",
                "command": ["julia", "-i", "kernel.jl", "{connection_file}"],
                "test_code": "1+1",
            }
        ],
    )
    spec = plan(MODULES, k, LAUNCHER)[0]["module-gcc-12"].spec
    assert spec["language"] == "julia"
    assert "--check=none" in spec["argv"] and "--no-error-kernel" in spec["argv"]
    assert spec["argv"][-4:] == ["julia", "-i", "kernel.jl", "{connection_file}"]


def test_kernel_names_are_valid_kernelspec_names():
    assert kernel_name("module-", "Python/3.11+GCC 12") == "module-python-3.11-gcc-12"
    assert kernel_name("", "../../etc") == "etc"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"match": "x/*", "kind": "custom"}, "needs both 'command' and 'language'"),
        (
            {"match": "x/*", "kind": "custom", "language": "j", "command": ["j"]},
            "must contain '{connection_file}'",
        ),
        ({"match": "x/*", "command": ["x"]}, "only for kind custom"),
        ({"match": "x/*", "display_name": "{name.__class__}"}, "unknown field"),
        ({"match": "x/*", "display_name": "{nope}"}, "allowed: {fullname}"),
        ({"match": "x/* ; rm"}, "match"),
        ({"match": "x/*", "extra_modules": ["-rf"]}, "extra_modules"),
    ],
)
def test_bad_rules_are_clear_errors(rule, problem):
    with pytest.raises(SiteConfigError) as err:
        parse_site({"kernels": {"rules": [rule]}})
    assert problem in str(err.value)


def test_bad_paths_are_errors():
    with pytest.raises(SiteConfigError) as err:
        parse_site({"kernels": {"modulepath": ["relative/dir", "/ok", "/a b"]}})
    text = str(err.value)
    assert "kernels.modulepath[0]" in text and "kernels.modulepath[2]" in text


def _wanted(names=("module-a", "module-b")):
    k = settings(rules=[{"match": "*"}])
    return plan([mod(n.removeprefix("module-") + "/1") for n in names], k, LAUNCHER)[0]


def test_sync_creates_then_keeps_then_updates(tmp_path):
    kdir = tmp_path / "kernels"
    wanted = _wanted()
    first = sync_kernels(kdir, wanted)
    assert [c.action for c in first] == ["create", "create"]
    assert (kdir / "module-a-1" / MARKER).is_file()
    spec = json.loads((kdir / "module-a-1" / "kernel.json").read_text())
    assert spec["metadata"]["hpchub"]["modules"] == ["a/1"]
    assert (kdir / "module-a-1").stat().st_mode & 0o777 == 0o755
    assert [c.action for c in sync_kernels(kdir, wanted)] == ["keep", "keep"]
    wanted["module-a-1"].spec["display_name"] = "changed"
    assert [c.action for c in sync_kernels(kdir, wanted)] == ["update", "keep"]
    assert not [p for p in kdir.iterdir() if p.name.startswith(".")]


def test_sync_removes_only_its_own_stale_kernels(tmp_path):
    kdir = tmp_path / "kernels"
    sync_kernels(kdir, _wanted())
    foreign = kdir / "module-b-1-handmade"
    foreign.mkdir()
    (foreign / "kernel.json").write_text("{}")
    clash = kdir / "module-c-1"
    clash.mkdir()
    (clash / "kernel.json").write_text("{}")
    changes = sync_kernels(kdir, _wanted(("module-a", "module-c")))
    assert {(c.action, c.what.split()[0]) for c in changes} == {
        ("keep", "module-a-1"),
        ("skip", "module-c-1"),
        ("remove", "module-b-1"),
    }
    assert not (kdir / "module-b-1").exists()
    assert foreign.exists() and json.loads((clash / "kernel.json").read_text()) == {}


def test_dry_run_changes_nothing(tmp_path):
    kdir = tmp_path / "kernels"
    changes = sync_kernels(kdir, _wanted(), dry_run=True)
    assert [c.action for c in changes] == ["create", "create"] and not kdir.exists()
    assert [c.action for c in sync_files(tmp_path / "cfg", {"a/b.json": "{}"}, True)] == ["create"]
    assert not (tmp_path / "cfg").exists()


def test_sync_files_writes_and_keeps(tmp_path):
    files = {"labconfig/page_config.json": "{}\n"}
    assert [c.action for c in sync_files(tmp_path, files)] == ["create"]
    assert [c.action for c in sync_files(tmp_path, files)] == ["keep"]
    assert (tmp_path / "labconfig" / "page_config.json").stat().st_mode & 0o777 == 0o644
