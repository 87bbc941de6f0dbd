"""`hpchub doctor [--user NAME]`: check a live deployment, or what breaks one user."""

from __future__ import annotations

import sys

from ..config.loader import load_site, site_path
from ..core.text import printable
from ..deploy.paths import DeployPaths
from ..doctor.deployment import Deployment
from ..doctor.findings import exit_code, format_json, format_text
from ..doctor.system import run_system_checks
from ..doctor.user import run_user_checks


def register(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check a live deployment (or, with --user, one user's account); exit 1 on errors",
    )
    p.add_argument(
        "--user", metavar="NAME", help="check what in this user's account breaks Jupyter"
    )
    p.add_argument("--json", action="store_true", help="findings as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="also list the checks that passed")
    p.set_defaults(func=doctor_cmd)


def doctor_cmd(args) -> int:
    site = load_site(args.config)
    if args.user is not None:
        # The name as the user gives it (anna.lee@EXAMPLE.ORG) is the account the hub maps it to.
        try:
            user = site.hub.account_of(args.user)
        except ValueError as err:
            print(f"hpchub doctor: --user: {printable(err)}", file=sys.stderr)
            return 2
        if user != args.user and not args.json:
            print(printable(f"{args.user!r} is the account {user}"))
        findings = run_user_checks(user, site)
    else:
        findings = run_system_checks(
            Deployment(DeployPaths(site, site_path(args.config).absolute()))
        )
    print(format_json(findings) if args.json else format_text(findings, verbose=args.verbose))
    return exit_code(findings)
