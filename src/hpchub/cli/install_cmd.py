"""`hpchub install`: put the system files in place (root), or the software (no root)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config.loader import load_site, site_path
from ..deploy.install import Installer, InstallError
from ..deploy.paths import DeployPaths
from ..deploy.releases import install_release
from ..deploy.software import SoftwareError


def register(sub) -> None:
    p = sub.add_parser(
        "install",
        help="install the system files (root; --dry-run shows a diff), or --software (no root)",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument(
        "--reload",
        action="store_true",
        help="afterwards, reload systemd and Apache if they run and their files changed",
    )
    sw = p.add_argument_group("software (no root needed)")
    sw.add_argument(
        "--software",
        action="store_true",
        help="build and check a new release of the hub's software under --prefix, then make it "
        "current",
    )
    sw.add_argument(
        "--prefix",
        metavar="DIR",
        help="the software root (holds releases/ and the current link; singleuser.prefix is "
        "DIR/current, which is also accepted here)",
    )
    sw.add_argument(
        "--python", metavar="PYTHON", help="the Python to build it from (default /usr/bin/python3)"
    )
    sw.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="a source checkout, wheel or requirement (default: this hpchub version from the index)",
    )
    p.set_defaults(func=install_cmd)


def install_cmd(args) -> int:
    if args.software:
        return _software(args)
    if args.prefix or args.python or args.source:
        print("hpchub install: --prefix, --python and --from go with --software", file=sys.stderr)
        return 2
    site = load_site(args.config)
    paths = DeployPaths(site, site_path(args.config).absolute())
    inst = Installer(paths, dry_run=args.dry_run, log=lambda m: print(f"install: {m}"))
    try:
        report = inst.install()
    except InstallError as err:
        print(f"hpchub install: {err}", file=sys.stderr)
        return 1
    for c in report.changes:
        if c.diff:
            print(c.diff, end="" if c.diff.endswith("\n") else "\n")
        check = f"  [{c.check.summary()}]" if c.check else ""
        print(f"{c.action:9} {c.file.path}{check}")
    if args.reload and not args.dry_run:
        try:
            inst.reload()
        except InstallError as err:
            print(f"hpchub install: {err}", file=sys.stderr)
            return 1
    refused = [c for c in report.changes if c.action == "refused"]
    for c in refused:
        print(f"{c.file.path} failed {c.check.tool}:\n{c.check.output}", file=sys.stderr)
    if args.dry_run:
        print("dry run: nothing was changed")
    return 1 if refused else 0


def _software(args) -> int:
    if not args.prefix:
        print("hpchub install --software: --prefix DIR is required", file=sys.stderr)
        return 2
    try:
        install_release(
            Path(args.prefix),
            python=args.python,
            source=args.source,
            log=lambda m: print(f"software: {m}", flush=True),
        )
    except SoftwareError as err:
        print(f"hpchub install --software: {err}", file=sys.stderr)
        return 1
    return 0
