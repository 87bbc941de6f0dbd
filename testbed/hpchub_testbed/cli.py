"""`hpchub-testbed up | down | status | info [--json]` (a development tool, not in hpchub)."""

from __future__ import annotations

import argparse

from . import control
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
