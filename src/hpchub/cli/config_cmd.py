"""`hpchub config validate | show | schema`."""

from __future__ import annotations

import json
import sys

import yaml

from ..config.loader import load_site, site_path
from ..config.models import SiteConfig


def register(sub) -> None:
    p = sub.add_parser("config", help="check and show the site file")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = csub.add_parser("validate", help="check the site file; exit 2 if it is invalid")
    v.set_defaults(func=validate)
    s = csub.add_parser("show", help="print the effective configuration, defaults included")
    s.add_argument("--format", choices=["yaml", "json"], default="yaml")
    s.set_defaults(func=show)
    sc = csub.add_parser("schema", help="print the JSON schema of the site file")
    sc.set_defaults(func=schema)
    r = csub.add_parser("reference", help="print the Markdown configuration reference")
    r.set_defaults(func=reference)


def validate(args) -> int:
    site = load_site(args.config)
    from ..config.courses import course_warnings

    print(f"{site_path(args.config)}: valid")
    for warning in course_warnings(site):
        print(f"warning: {warning}", file=sys.stderr)
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
