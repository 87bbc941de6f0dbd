"""`hpchub`: one entry point; each group of subcommands lives in its own module."""

from __future__ import annotations

import argparse
import sys

from ..config.loader import SiteConfigError
from . import (
    config_cmd,
    course_cmd,
    doctor_cmd,
    install_cmd,
    kernels_cmd,
    render_cmd,
)

GROUPS = (config_cmd, kernels_cmd, course_cmd, render_cmd, install_cmd, doctor_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpchub", description="JupyterHub as the front door to an HPC cluster."
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="site file (default: $HPCHUB_CONFIG, else /etc/hpchub/hpchub.yaml)",
    )
    sub = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except SiteConfigError as err:  # every command that reads the site file says it the same way
        print(f"{err.path}: invalid site file:", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
