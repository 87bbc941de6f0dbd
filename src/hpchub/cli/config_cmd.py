"""`hpchub config validate | show | schema | reference | init`."""

from __future__ import annotations

import asyncio
import json
import sys

import yaml

from ..config.loader import SiteConfigError, load_site, site_path
from ..config.models import SiteConfig, SlurmSettings
from ..core.text import printable


def register(sub) -> None:
    p = sub.add_parser("config", help="check and show the site file")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = csub.add_parser(
        "validate",
        help="check the site file; exit 2 if it is invalid (warnings too, with --strict)",
        description="Lists every problem with its file, line and column, then the warnings: "
        "things that are valid but likely wrong on this node (a group that does not exist, a "
        "loopback hub address with several Slurm nodes).",
    )
    v.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 2)")
    v.set_defaults(func=validate)
    i = csub.add_parser(
        "init",
        help="write a commented starter site file with the cluster's partitions (from sinfo)",
    )
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(func=init)
    s = csub.add_parser("show", help="print the effective configuration, defaults included")
    s.add_argument("--format", choices=["yaml", "json"], default="yaml")
    s.set_defaults(func=show)
    sc = csub.add_parser("schema", help="print the JSON schema of the site file")
    sc.set_defaults(func=schema)
    r = csub.add_parser("reference", help="print the Markdown configuration reference")
    r.set_defaults(func=reference)


def report(err: SiteConfigError) -> None:
    """Print a site-file error: one line for a file that cannot be read, else every problem."""
    prefix = f"{err.path}, "
    if len(err.problems) == 1 and not err.problems[0].startswith(prefix):
        print(f"hpchub: {err.path}: {err.problems[0]}", file=sys.stderr)
        return
    print(f"{err.path}: invalid site file:", file=sys.stderr)
    for problem in err.problems:
        print(f"  - {problem}", file=sys.stderr)


def load_paths(args):
    """The deployment's paths from the site file (an invalid one is reported by main)."""
    from ..deploy.paths import DeployPaths

    return DeployPaths(load_site(args.config), site_path(args.config).absolute())


def _slurm_nodes(site: SiteConfig) -> int | None:
    """How many nodes Slurm has (None when sinfo cannot say: that check is then skipped)."""
    from ..slurm.client import SlurmClient, SlurmError
    from ..slurm.runner import CommandTimeout

    try:
        return len(asyncio.run(SlurmClient(site.slurm).nodes()))
    except (SlurmError, CommandTimeout, OSError, ValueError):
        return None


def validate(args) -> int:
    from ..config.site_warnings import NodeFacts, warnings

    site = load_site(args.config)
    path = site_path(args.config)
    found = warnings(site, NodeFacts(slurm_nodes=_slurm_nodes(site)))
    label = "error" if args.strict else "warning"
    count = f"{len(found)} warning" + ("s" if len(found) != 1 else "")
    for w in found:
        print(f"{path}: {label}: {printable(w)}", file=sys.stderr)
    if found and args.strict:
        print(f"{path}: invalid with --strict ({count})", file=sys.stderr)
        return 2
    print(f"{path}: valid" + (f" ({count})" if found else ""))
    return 0


def init(args) -> int:
    from ..config.starter import FoundPartition, starter_text
    from ..core.files import atomic_write
    from ..slurm.client import SlurmClient, SlurmError
    from ..slurm.runner import CommandTimeout

    path = site_path(args.config)
    if (path.exists() or path.is_symlink()) and not args.force:
        print(
            f"hpchub config init: {path} exists; keeping it (--force replaces it)",
            file=sys.stderr,
        )
        return 2
    try:
        found = asyncio.run(SlurmClient(SlurmSettings()).partitions())
    except (SlurmError, CommandTimeout, OSError) as err:
        print(f"hpchub config init: cannot list partitions with sinfo: {err}", file=sys.stderr)
        return 1
    parts = [FoundPartition(name, state.max_time) for name, state in found.items()]
    source = f"from the {len(parts)} partitions sinfo listed" if parts else "(sinfo listed none)"
    text = starter_text(parts, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text, mode=0o644)
    print(f"{path}: written {source}; check it with `hpchub config validate`")
    return 0


def show(args) -> int:
    site = load_site(args.config)
    data = site.model_dump(mode="json")
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False), end="")
    return 0


def schema(args) -> int:
    print(json.dumps(SiteConfig.model_json_schema(), indent=2))
    return 0


def reference(args) -> int:
    from ..config.reference import markdown

    print(markdown(), end="")
    return 0
