"""From discovered modules and the site's rules to the kernelspecs that should exist (pure)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..config.kernels import KIND_LABELS, KernelRule, KernelSettings
from .kinds import KINDS
from .lmod import ModuleInfo

GENERATOR = "hpchub kernels sync"


@dataclass(frozen=True)
class KernelDef:
    """One kernelspec to write: its folder name and the content of kernel.json."""

    name: str
    module: str
    spec: dict
    logos: bool


def matches(rule: KernelRule, fullname: str) -> bool:
    """Whether ``rule`` makes a kernel of the module ``fullname``."""
    if not fnmatch.fnmatchcase(fullname, rule.match):
        return False
    return not any(fnmatch.fnmatchcase(fullname, pat) for pat in rule.exclude)


def kernel_name(prefix: str, fullname: str) -> str:
    """A kernelspec folder name for a module: lower-case letters, digits and ._- only."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", fullname.lower()).strip("-.") or "module"
    return f"{prefix}{slug}"[:120]


def display_name(rule: KernelRule, mod: ModuleInfo) -> str:
    return rule.display_name.format(
        fullname=mod.fullname,
        name=mod.name,
        version=mod.version,
        kind=rule.kind,
        kind_label=KIND_LABELS[rule.kind],
        description=mod.description,
    ).strip()


def launcher_argv(
    launcher: Path, settings: KernelSettings, rule: KernelRule, modules: tuple[str, ...], name: str
) -> list[str]:
    """kernel.json's argv: our launcher with everything it needs, then the kernel command."""
    kind = KINDS.get(rule.kind)
    command = list(rule.command or ()) if rule.kind == "custom" else list(kind.command)
    language = rule.language if rule.kind == "custom" else kind.language
    argv = [
        str(launcher),
        f"--display-name={name}",
        f"--modulepath={settings.modulepath_text}",
        f"--lmod={settings.lmod_cmd}",
        f"--base-path={settings.base_path}",
        f"--timeout={settings.load_timeout}",
        f"--language={language}",
        f"--check={rule.kind if kind and kind.check else 'none'}",
    ]
    env = {**settings.environment, **rule.env}
    argv += [f"--env={k}={v}" for k, v in sorted(env.items())]
    argv += [f"--module={m}" for m in (*settings.base_modules, *rule.extra_modules, *modules)]
    if not settings.error_kernel:
        argv.append("--no-error-kernel")
    argv += ["--connection-file={connection_file}", "--", *command]
    return argv


def plan(
    modules: list[ModuleInfo], settings: KernelSettings, launcher: Path
) -> tuple[dict[str, KernelDef], list[str]]:
    """The kernels the rules ask for, by folder name, and notes on what was left out and why."""
    notes: list[str] = []
    chosen: list[tuple[KernelRule, ModuleInfo]] = []
    for mod in modules:
        if mod.hidden:
            continue
        rule = next((r for r in settings.rules if matches(r, mod.fullname)), None)
        if rule is not None:
            chosen.append((rule, mod))
    # versions: latest keeps the highest version of each module name (Lmod's own ordering).
    latest: dict[tuple[int, str], ModuleInfo] = {}
    for rule, mod in chosen:
        if rule.versions == "latest":
            key = (settings.rules.index(rule), mod.name)
            if key not in latest or mod.sort_key > latest[key].sort_key:
                latest[key] = mod
    out: dict[str, KernelDef] = {}
    for rule, mod in chosen:
        if rule.versions == "latest" and latest[(settings.rules.index(rule), mod.name)] is not mod:
            continue
        name = kernel_name(settings.name_prefix, mod.fullname)
        if name in out:
            name = f"{name}-{hashlib.sha256(mod.fullname.encode()).hexdigest()[:6]}"
        if name in out:
            notes.append(f"{mod.fullname}: skipped, it is on the MODULEPATH twice")
            continue
        shown = display_name(rule, mod)
        kind = KINDS.get(rule.kind)
        spec = {
            "argv": launcher_argv(launcher, settings, rule, mod.load_sequence, shown),
            "display_name": shown,
            "language": rule.language if rule.kind == "custom" else kind.language,
            "interrupt_mode": "signal",
            "metadata": {
                "hpchub": {
                    "generator": GENERATOR,
                    "modules": [*settings.base_modules, *rule.extra_modules, *mod.load_sequence],
                    "kind": rule.kind,
                    "rule": rule.match,
                    "test_code": rule.test_code or (kind.test_code if kind else "1"),
                }
            },
        }
        if len(mod.parents) > 1:
            notes.append(
                f"{mod.fullname}: reachable {len(mod.parents)} ways; its kernel loads "
                + " ".join(mod.load_sequence)
            )
        out[name] = KernelDef(name, mod.fullname, spec, bool(kind and kind.logos_from_ipykernel))
    _add_python3(out, settings, notes)
    return out, notes


def _add_python3(out: dict[str, KernelDef], settings: KernelSettings, notes: list[str]) -> None:
    """The kernel of ``python3_module`` once more, as 'python3' (it shadows the server's own)."""
    wanted = settings.python3_module
    if wanted is None:
        return
    match = next((k for k in out.values() if k.module == wanted), None)
    if match is None or match.spec["language"] != "python":
        notes.append(f"python3_module {wanted}: no python kernel made from it; 'python3' unchanged")
        return
    spec = json.loads(json.dumps(match.spec))
    spec["display_name"] = f"Python 3 ({wanted})"
    argv = spec["argv"]
    argv[argv.index(f"--display-name={match.spec['display_name']}")] = (
        f"--display-name={spec['display_name']}"
    )
    out["python3"] = KernelDef("python3", wanted, spec, match.logos)
