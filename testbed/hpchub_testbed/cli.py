"""`hpchub-testbed up | down | status | info [--json]` (a development tool, not in hpchub)."""

from __future__ import annotations

import argparse

from . import control, generation
from .layout import from_environ


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hpchub-testbed",
        description="A real two-node Slurm cluster with a hub, on this development machine "
        "(HPCHUB_TESTBED_NAME and HPCHUB_TESTBED_PORT_BASE name a second one).",
    )
    tsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    tsub.add_parser("up", help="install, configure and start everything (idempotent)").set_defaults(
        func=_up
    )
    tsub.add_parser("down", help="stop every process the testbed started").set_defaults(func=_down)
    tsub.add_parser("status", help="what runs, and how memory is enforced").set_defaults(
        func=_status
    )
    i = tsub.add_parser("info", help="URL, demo users and passwords, partitions")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_info)
    g = tsub.add_parser(
        "generation",
        help="run the testbed and the core tests on the other Debian generation (12 <-> 13) "
        "in a debootstrap root",
        description="Build (or reuse) a root of the other Debian generation under "
        f"{generation.ROOTS}, run the same testbed in namespaces of its own and pytest inside "
        "it; the exit status is pytest's.",
    )
    g.add_argument("--fresh", action="store_true", help="rebuild the root from scratch")
    g.add_argument(
        "--run",
        action="store_true",
        help="run the arguments as a command in the root's checkout instead of pytest "
        "(its venv first on PATH), e.g. --run -- python -m hpchub_testbed.capture DIR",
    )
    g.add_argument(
        "pytest_args",
        nargs=argparse.REMAINDER,
        metavar="PYTEST_ARGS",
        help=f"arguments for pytest in the root (default: {' '.join(generation.DEFAULT_PYTEST)})",
    )
    g.set_defaults(func=_generation)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def _up(args) -> int:
    layout = from_environ()
    control.up(layout, log=lambda m: print(f"testbed: {m}", flush=True))
    return control.print_info(layout, as_json=False)


def _down(args) -> int:
    control.down(from_environ(), log=lambda m: print(f"testbed: {m}", flush=True))
    return 0


def _status(args) -> int:
    return control.print_status(from_environ())


def _info(args) -> int:
    return control.print_info(from_environ(), as_json=args.json)


def _generation(args) -> int:
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    if args.run and not extra:
        raise SystemExit("hpchub-testbed generation --run: name the command to run after --")
    return generation.run(
        None if args.run else extra or None,
        fresh=args.fresh,
        command=extra if args.run else None,
        log=lambda m: print(f"generation: {m}", flush=True),
    )
