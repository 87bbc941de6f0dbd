"""`hpchub upgrade` and `hpchub rollback`: the hub's software, a release at a time (root)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..deploy.backup import DEFAULT_OUT, BackupError
from ..deploy.software import SoftwareError
from ..deploy.upgrade import UpgradeError, roll_back, systemd_control, upgrade
from .config_cmd import load_paths


def register(sub) -> None:
    u = sub.add_parser(
        "upgrade",
        help="build and check a new release, back up, switch, upgrade the database, restart the hub",
    )
    u.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="a source checkout, wheel or requirement (default: this hpchub version)",
    )
    u.add_argument("--python", metavar="PYTHON", help="the Python to build the release from")
    u.add_argument(
        "--backup-dir", metavar="DIR", default=str(DEFAULT_OUT), help=f"default {DEFAULT_OUT}"
    )
    u.set_defaults(func=upgrade_cmd)
    r = sub.add_parser("rollback", help="return to the previous release and restart the hub")
    r.set_defaults(func=rollback_cmd)


def upgrade_cmd(args) -> int:
    paths = load_paths(args)
    try:
        release, saved = upgrade(
            paths,
            systemd_control(paths),
            source=args.source,
            python=args.python,
            backup_dir=Path(args.backup_dir),
            log=lambda m: print(f"upgrade: {m}", flush=True),
        )
    except (SoftwareError, BackupError, UpgradeError) as err:
        print(f"hpchub upgrade: {err}", file=sys.stderr)
        return 1
    print(f"current: {release}\nbackup: {saved}")
    return 0


def rollback_cmd(args) -> int:
    paths = load_paths(args)
    try:
        name = roll_back(paths, systemd_control(paths), log=lambda m: print(f"rollback: {m}"))
    except (SoftwareError, UpgradeError) as err:
        print(f"hpchub rollback: {err}", file=sys.stderr)
        return 1
    print(f"current: {name}")
    return 0
