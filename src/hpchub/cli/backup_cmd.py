"""`hpchub backup` and `hpchub restore`: the hub's database, secrets, site file and pending
cancels, in a private folder and back (root)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..deploy.backup import DEFAULT_OUT, BackupError, backup, restore
from .config_cmd import load_paths


def register(sub) -> None:
    b = sub.add_parser(
        "backup", help="a consistent copy of the hub's state (files 600, folder 700)"
    )
    b.add_argument("--out", metavar="DIR", default=str(DEFAULT_OUT), help=f"default {DEFAULT_OUT}")
    b.set_defaults(func=backup_cmd)
    r = sub.add_parser("restore", help="put a checked backup back (the hub must be stopped)")
    r.add_argument("folder", metavar="BACKUP", help="a folder that `hpchub backup` made")
    r.set_defaults(func=restore_cmd)


def backup_cmd(args) -> int:
    paths = load_paths(args)
    try:
        folder = backup(paths, Path(args.out), log=lambda m: print(f"backup: {m}"))
    except BackupError as err:
        print(f"hpchub backup: {err}", file=sys.stderr)
        return 1
    print(folder)
    return 0


def restore_cmd(args) -> int:
    paths = load_paths(args)
    try:
        restore(paths, Path(args.folder), log=lambda m: print(f"restore: {m}"))
    except BackupError as err:
        print(f"hpchub restore: {err}", file=sys.stderr)
        return 1
    return 0
