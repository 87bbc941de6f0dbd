"""`hpchub render --out DIR`: every file a site installs, written under DIR for review."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..config.loader import load_site, site_path
from ..core.text import printable
from ..deploy.install import check_candidate
from ..deploy.paths import DeployPaths
from ..deploy.render import render_all


def register(sub) -> None:
    p = sub.add_parser(
        "render", help="write every system file the site file implies under a folder, for review"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder to write into; each file keeps its full path below it (DIR/etc/...)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help=(
            "check each file with its real tool as install does (visudo, apachectl, slurmd, "
            "sh -n, ...), also files rendered for another distribution (os_family)"
        ),
    )
    p.set_defaults(func=render_cmd)


def render_cmd(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"hpchub render: --out {out} exists and is not a folder", file=sys.stderr)
        return 2
    if out.resolve() == Path("/"):
        print(
            "hpchub render: --out / would write the system itself; use hpchub install",
            file=sys.stderr,
        )
        return 2
    site = load_site(args.config)
    paths = DeployPaths(site, site_path(args.config).absolute())
    failed = 0
    for f in render_all(paths):
        target = out / f.path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text)
        os.chmod(target, f.mode)
        check = f"checked by {f.check}" if f.check else "no check"
        print(f"{target}  ({f.owner}:{f.group} {f.mode:o}, {check}) {f.what}")
        result = check_candidate(f, paths) if args.check else None
        if result is not None:
            print(f"    {result.summary()}")
            if not result.ok and not result.skipped:
                failed += 1
                print("\n".join(f"      {printable(line)}" for line in result.output.splitlines()))
            elif result.ok and result.output and f.check in ("apache", "cgroup"):
                # What the check could and could not do here (a stand-in, a plugin not started).
                print(f"      {printable(result.output.splitlines()[-1])}")
    print("Secrets are not rendered: `hpchub install` creates them on the hub node.")
    if failed:
        print(f"hpchub render: {failed} files failed their checks (above)", file=sys.stderr)
        return 1
    return 0
