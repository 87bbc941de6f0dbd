"""`hpchub-kernel`: start a kernel from a known module state, or say clearly why it cannot.

It is argv[0] of every kernelspec `hpchub kernels sync` writes. In order:

1. drop every trace of the caller's module state, shell hooks and Python/conda overrides, and
   start PATH from the site's base (so a ~/.bashrc that loaded modules or changed MODULEPATH,
   or modules loaded in the Lmod panel, change nothing);
2. set the site MODULEPATH and load the kernel's modules one by one through Lmod;
3. check that the modules provide the kernel (e.g. python3 with ipykernel);
4. exec the kernel.

If 2 or 3 fails, it prints one line naming the module and the reason, and then (unless
``--no-error-kernel``) serves a stand-in kernel that answers every cell with that message.
Jupyter would restart a kernel that exits, again and again, without telling the user why.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.commands import TIMED_OUT, run_command
from . import lmod
from .kinds import KINDS

PREFIX = "hpchub-kernel"


class StartError(Exception):
    """The kernel cannot start; the message says which module and why."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PREFIX, description="Start a kernel inside Lmod modules.")
    p.add_argument("--display-name", default="kernel")
    p.add_argument("--modulepath", required=True, help="the site MODULEPATH (colon-separated)")
    p.add_argument("--lmod", required=True, help="Lmod's libexec/lmod")
    p.add_argument("--base-path", default="/usr/local/bin:/usr/bin:/bin")
    p.add_argument("--module", action="append", default=[], help="a module to load (repeatable)")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE set before loading")
    p.add_argument("--check", default="none", choices=["none", *KINDS])
    p.add_argument("--language", default="python")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--connection-file", required=True)
    p.add_argument("--no-error-kernel", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    bad = [e for e in args.env if "=" not in e]
    if bad:
        p.error(f"--env needs NAME=VALUE, got {bad[0]!r}")
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        p.error("no kernel command after --")
    return args


def prepare_environment(
    environ: Mapping[str, str],
    modulepath: str,
    base_path: str,
    lmod_cmd: Path,
    modules: Sequence[str],
    timeout: float,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The kernel's environment: clean, ``extra`` set, site MODULEPATH, ``modules`` loaded."""
    env = lmod.clean_environment(environ, base_path)
    env.update(extra or {})
    env["MODULEPATH"] = modulepath
    env["LMOD_CMD"] = str(lmod_cmd)
    for module in modules:
        try:
            env = lmod.load(lmod_cmd, [module], env, timeout=timeout)
        except lmod.LmodError as err:
            raise StartError(f'module "{module}" cannot be loaded: {err}') from None
    return env


def resolve_command(command: Sequence[str], env: Mapping[str, str], modules: Sequence[str]) -> str:
    """The absolute path of the kernel program on the modules' PATH."""
    found = shutil.which(command[0], path=env.get("PATH", ""))
    if found is None:
        loaded = " ".join(modules) or "no modules"
        raise StartError(f"'{command[0]}' is not on the PATH after loading {loaded}")
    return found


def run_check(kind: str, env: Mapping[str, str], modules: Sequence[str], timeout: float) -> None:
    """The kind's quick check that the modules really provide this kernel."""
    spec = KINDS.get(kind)
    if spec is None or spec.check is None:
        return
    exe = shutil.which(spec.check[0], path=env.get("PATH", ""))
    last = modules[-1] if modules else "the environment"
    if exe is None:
        raise StartError(f'module "{last}" provides no {spec.check[0]}')
    r = run_command([exe, *spec.check[1:]], env=env, timeout=timeout)
    if r.returncode == TIMED_OUT:
        raise StartError(f'module "{last}": {spec.check[0]} did not answer in {timeout:g} s')
    if r.returncode != 0:
        detail = (r.stderr.strip().splitlines() or [""])[-1][:300]
        raise StartError(
            f'module "{last}": {spec.check_failed}' + (f" ({detail})" if detail else "")
        )


def format_failure(display_name: str, reason: str) -> str:
    return f'{PREFIX}: kernel "{display_name}" cannot start: {reason}'


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        extra = dict(e.split("=", 1) for e in args.env)
        env = prepare_environment(
            os.environ,
            args.modulepath,
            args.base_path,
            Path(args.lmod),
            args.module,
            args.timeout,
            extra,
        )
        exe = resolve_command(args.command, env, args.module)
        run_check(args.check, env, args.module, args.timeout)
    except StartError as err:
        message = format_failure(args.display_name, str(err))
        print(message, file=sys.stderr, flush=True)
        if args.no_error_kernel:
            raise SystemExit(3) from None
        from .errorkernel import serve

        serve(message, args.language, args.connection_file)
        return
    os.execve(exe, list(args.command), env)  # noqa: S606 - argv from the root-owned kernelspec


if __name__ == "__main__":
    main()
