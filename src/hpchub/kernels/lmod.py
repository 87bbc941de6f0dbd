"""Talking to Lmod: discover modules with its spider, load them through its Python output.

Nothing here walks module folders by hand, and nothing ``exec``s what Lmod prints: Lmod's
``python`` shell writes a fixed, tiny grammar (``os.environ[K] = V``, ``del os.environ[K]``,
``_mlstatus = bool``), which :func:`parse_python_output` reads with ``ast``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.commands import MISSING, TIMED_OUT, run_command

# Module state that Lmod keeps in the environment; a kernel must not inherit any of it.
LMOD_STATE_PREFIXES = ("_ModuleTable", "__LMOD_", "_LMFILES_", "LMOD_", "__LMOD_STACK_")
LMOD_STATE_NAMES = frozenset({"LOADEDMODULES", "MODULEPATH", "MODULEPATH_ROOT", "MODULESHOME"})


class LmodError(Exception):
    """Lmod could not be run, or refused what was asked."""


@dataclass(frozen=True)
class ModuleInfo:
    """One modulefile as Lmod's spider reports it."""

    fullname: str
    name: str
    version: str
    path: str
    description: str = ""
    hidden: bool = False
    sort_key: str = ""
    # Each entry is one way to make the module reachable (modules to load first).
    parents: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    @property
    def load_sequence(self) -> tuple[str, ...]:
        """The modules to load, in order, to get this one (first parent chain, then itself)."""
        return (*(self.parents[0] if self.parents else ()), self.fullname)


def parse_spider_json(text: str) -> list[ModuleInfo]:
    """Lmod's ``spider -o spider-json`` output -> modules, sorted by name and version."""
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError as err:
        raise LmodError(f"Lmod's spider printed something that is not JSON: {err}") from None
    if data == []:
        return []  # an empty Lua table: no modules at all
    if not isinstance(data, dict):
        raise LmodError("Lmod's spider output is not a JSON object")
    found = []
    for name, files in data.items():
        if not isinstance(files, dict):
            continue
        for path, entry in files.items():
            if not isinstance(entry, dict) or "fullName" not in entry:
                continue
            parents = tuple(
                tuple(str(m) for m in chain)
                for chain in entry.get("parentAA") or ()
                if isinstance(chain, list)
            )
            found.append(
                ModuleInfo(
                    fullname=str(entry["fullName"]),
                    name=str(name),
                    version=str(entry.get("Version") or ""),
                    path=str(path),
                    description=str(entry.get("Description") or "").strip(),
                    hidden=bool(entry.get("hidden", False)),
                    sort_key=str(entry.get("pV") or entry.get("Version") or ""),
                    parents=parents,
                )
            )
    found.sort(key=lambda m: (m.name.lower(), m.sort_key, m.fullname))
    return found


def _run(
    argv: list[str], env: Mapping[str, str], timeout: float, what: str
) -> subprocess.CompletedProcess:
    r = run_command(argv, env=env, timeout=timeout)
    if r.returncode == MISSING and not Path(argv[0]).exists():
        raise LmodError(f"Lmod is not installed at {argv[0]} (check kernels.lmod_dir)")
    if r.returncode == TIMED_OUT:
        raise LmodError(f"{what} took longer than {timeout:g} s")
    return r


def run_spider(
    spider_cmd: Path, modulepath: str, env: Mapping[str, str], timeout: float = 300
) -> str:
    """Run Lmod's spider over ``modulepath`` and return its JSON text."""
    argv = [str(spider_cmd), "-o", "spider-json", modulepath]
    r = _run(argv, env, timeout, "Lmod's spider")
    if r.returncode != 0:
        raise LmodError(f"Lmod's spider failed: {first_error(r.stderr) or r.returncode}")
    return r.stdout


def discover(
    spider_cmd: Path, modulepath: str, env: Mapping[str, str] | None = None
) -> list[ModuleInfo]:
    """Every module on ``modulepath``, hierarchical ones included, as Lmod sees them."""
    missing = [p for p in modulepath.split(":") if p and not os.path.isdir(p)]
    if missing:
        # Spider would print an empty table for them, which reads as a broken Lmod.
        raise LmodError(
            f"kernels.modulepath names folders that do not exist on this node: "
            f"{', '.join(missing)}; fix the site file or mount them"
        )
    base = dict(env if env is not None else clean_environment(os.environ, "/usr/bin:/bin"))
    base["MODULEPATH"] = modulepath
    return parse_spider_json(run_spider(spider_cmd, modulepath, base))


@dataclass(frozen=True)
class EnvChanges:
    """What Lmod's python output asks for: variables to set, variables to remove, success."""

    set: dict[str, str]
    unset: tuple[str, ...]
    ok: bool | None

    def apply(self, env: dict[str, str]) -> dict[str, str]:
        out = dict(env)
        for k in self.unset:
            out.pop(k, None)
        out.update(self.set)
        return out


def _environ_key(node: ast.AST) -> str | None:
    """'K' if ``node`` is ``os.environ["K"]``."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "environ"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "os"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None


def parse_python_output(text: str) -> EnvChanges:
    """Read Lmod's ``python`` shell output without executing it.

    Statements outside Lmod's grammar (for example text that a modulefile's ``execute{}``
    printed) are ignored: they would be shell commands, which a kernel cannot run.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError:
        # Lmod writes one statement per line; keep the lines that parse on their own.
        stmts = []
        for line in text.splitlines():
            try:
                stmts.extend(ast.parse(line).body)
            except SyntaxError:
                continue
        tree = ast.Module(body=stmts, type_ignores=[])
    set_: dict[str, str] = {}
    unset: list[str] = []
    ok: bool | None = None
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            key = _environ_key(target)
            value = stmt.value
            if key is not None and isinstance(value, ast.Constant) and isinstance(value.value, str):
                set_[key] = value.value
                if key in unset:
                    unset.remove(key)
            elif (
                isinstance(target, ast.Name)
                and target.id == "_mlstatus"
                and isinstance(value, ast.Constant)
                and isinstance(value.value, bool)
            ):
                ok = value.value
        elif isinstance(stmt, ast.Delete):
            for t in stmt.targets:
                key = _environ_key(t)
                if key is not None:
                    set_.pop(key, None)
                    unset.append(key)
    return EnvChanges(set_, tuple(unset), ok)


_ERROR_HEAD = re.compile(r"Lmod has detected the following error:\s*", re.S)


def first_error(stderr: str) -> str:
    """The gist of Lmod's error text on one line (the first paragraph of the error)."""
    text = stderr.strip()
    if not text:
        return ""
    m = _ERROR_HEAD.search(text)
    body = text[m.end() :] if m else text
    para = re.split(r"\n\s*\n", body.strip(), maxsplit=1)[0]
    # Lmod's own advice lines ("Please check the spelling...") are not the reason.
    lines = [ln.strip() for ln in para.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Please check", "Also try", "It is also"))]
    return " ".join(lines)[:600]


def clean_environment(environ: Mapping[str, str], base_path: str) -> dict[str, str]:
    """``environ`` without any module state, shell start-up hooks or Python/conda overrides.

    What stays: the user's identity, locale, Jupyter's and Slurm's variables. PATH starts over
    from ``base_path``; modules loaded afterwards add to it.
    """
    drop_exact = LMOD_STATE_NAMES | {
        "BASH_ENV",
        "ENV",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
        "VIRTUAL_ENV",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "LIBRARY_PATH",
        "CPATH",
        "MANPATH",
        "PKG_CONFIG_PATH",
        "R_LIBS",
        "R_LIBS_USER",
        "JULIA_LOAD_PATH",
        "JULIA_DEPOT_PATH",
    }
    out = {}
    for key, value in environ.items():
        if key in drop_exact or key.startswith(LMOD_STATE_PREFIXES):
            continue
        if key.startswith(("CONDA_", "_CE_", "BASH_FUNC_")):
            continue
        out[key] = value
    out["PATH"] = base_path
    return out


def load(
    lmod_cmd: Path,
    modules: Sequence[str],
    env: Mapping[str, str],
    timeout: float = 120,
) -> dict[str, str]:
    """``env`` with ``modules`` loaded (in one Lmod call); LmodError naming the reason if not."""
    if not modules:
        return dict(env)
    r = _run([str(lmod_cmd), "python", "load", *modules], env, timeout, "loading")
    changes = parse_python_output(r.stdout)
    if r.returncode != 0 or changes.ok is False:
        raise LmodError(first_error(r.stderr) or f"Lmod exited with status {r.returncode}")
    return changes.apply(dict(env))
