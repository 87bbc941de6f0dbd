"""`hpchub`: one entry point; each group of subcommands lives in its own module."""

from __future__ import annotations

import argparse
import os
import pwd
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .. import __version__
from ..config.loader import SiteConfigError
from . import (
    backup_cmd,
    config_cmd,
    course_cmd,
    doctor_cmd,
    install_cmd,
    kernels_cmd,
    release_cmd,
    render_cmd,
)

GROUPS = (
    config_cmd,
    kernels_cmd,
    course_cmd,
    render_cmd,
    install_cmd,
    release_cmd,
    backup_cmd,
    doctor_cmd,
)

EXIT_CODES = """\
exit codes:
  0    success (for validate/doctor/kernels test: nothing wrong)
  1    the work was done and found problems, or failed: doctor found errors, a kernel test
       failed, an install step was refused
  2    wrong usage or input: an unknown option, a bad value, a site file that is missing or
       invalid (every problem is listed with its file, line and column)
  70   an internal error: one line says where the details were written
  130  interrupted (Ctrl-C)
"""


def _sub_parsers(parser: argparse.ArgumentParser):
    """Every parser below ``parser``, at any depth."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _sub_parsers(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpchub",
        description="JupyterHub as the front door to an HPC cluster.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_help = "site file (default: $HPCHUB_CONFIG, else /etc/hpchub/hpchub.yaml)"
    parser.add_argument("--config", metavar="FILE", help=config_help)
    parser.add_argument("--version", action="version", version=f"hpchub {__version__}")
    sub = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    # Global options are accepted after the subcommand too, as people type them. SUPPRESS keeps
    # a subcommand that was not given --config from overwriting the one given before it.
    for p in _sub_parsers(parser):
        p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=config_help)
        if p.epilog is None:
            p.epilog = EXIT_CODES
            p.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def crash_folder(environ=None, euid: int | None = None) -> Path:
    """Where crash details go: the caller's cache folder. Root ignores $HOME and
    $XDG_CACHE_HOME (under sudo they may still name the invoking user's folders, which that
    user could point anywhere) and uses root's own home from the password database."""
    env = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    if euid != 0 and env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "hpchub"
    return Path(pwd.getpwuid(euid).pw_dir) / ".cache" / "hpchub"


def crash_report(err: BaseException, argv: list[str]) -> Path:
    """Write the traceback to a new file only its owner can read; return its path."""
    folder = crash_folder()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="crash-", suffix=".txt", dir=folder)
    except OSError:
        fd, name = tempfile.mkstemp(prefix="hpchub-crash-", suffix=".txt")  # mode 600, O_EXCL
    with os.fdopen(fd, "w") as f:
        f.write(f"hpchub {__version__} at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n")
        f.write(f"argv: {argv!r}\n\n")
        f.write("".join(traceback.format_exception(err)))
    return Path(name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except SiteConfigError as err:  # every command that reads the site file says it the same way
        config_cmd.report(err)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - no command ever ends in a traceback
        where = crash_report(err, sys.argv if argv is None else argv)
        print(
            f"hpchub: internal error ({type(err).__name__}); details written to {where}",
            file=sys.stderr,
        )
        return 70
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
