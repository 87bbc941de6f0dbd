"""`hpchub kernels sync | test`: Lmod modules as Jupyter kernels."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import sys

from ..config.loader import load_site, site_path
from ..config.models import SiteConfig
from ..core.accounts import current_user
from ..core.commands import TIMED_OUT, run_command
from ..core.text import printable


def register(sub) -> None:
    p = sub.add_parser("kernels", help="kernels made from the cluster's Lmod modules")
    ksub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = ksub.add_parser(
        "sync",
        help="write a kernel for each module the site's rules select; remove stale ones",
        description=(
            "Discover modules on kernels.modulepath through Lmod's spider, apply kernels.rules "
            "and make the shared kernels folder match. Also writes the servers' extension "
            "config and nbdime's git attributes. Safe to run from cron."
        ),
    )
    s.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    s.add_argument("--quiet", action="store_true", help="print only changes (for cron)")
    s.set_defaults(func=sync)
    t = ksub.add_parser(
        "test",
        help="start kernels, run a line in each, print pass/fail and time",
        description="Exits 1 if any kernel fails. With no NAME, tests every kernel sync made.",
    )
    t.add_argument("names", nargs="*", metavar="NAME", help="kernel names (default: all of ours)")
    t.add_argument("--user", help="run as this user, in their login environment (needs root)")
    t.add_argument("--in-slurm", action="store_true", help="run inside a Slurm allocation (srun)")
    t.add_argument("--partition", help="partition for --in-slurm (default: the site default)")
    t.add_argument(
        "--timeout",
        type=_seconds,
        default=120,
        help="seconds per kernel, more than 0 and at most 3600 (default 120)",
    )
    t.add_argument("--json", action="store_true", help="print the report as JSON")
    t.set_defaults(func=test)


def _seconds(text: str) -> float:
    """A --timeout value: a number of seconds above 0 and at most an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 (excluded) and 3600 seconds")
    return value


def sync(args) -> int:
    from ..kernels import extensions, lmod
    from ..kernels.plan import plan
    from ..kernels.sync import ipykernel_logos, sync_files, sync_kernels, unsafe_owner

    site = load_site(args.config)
    k = site.kernels
    if not args.dry_run:
        problem = unsafe_owner(k.shared_dir)
        if problem:
            print(
                f"hpchub kernels sync: refusing: {problem}; users' kernels must come "
                "from a folder only root can change",
                file=sys.stderr,
            )
            return 2
    try:
        modules = lmod.discover(k.spider_cmd, k.modulepath_text)
    except lmod.LmodError as err:
        print(f"hpchub kernels sync: {err}", file=sys.stderr)
        return 1
    launcher = site.singleuser.prefix / "bin" / "hpchub-kernel"
    wanted, notes = plan(modules, k, launcher)
    old_umask = os.umask(0o022)
    try:
        changes = sync_kernels(k.kernels_dir, wanted, args.dry_run, ipykernel_logos())
        changes += sync_files(
            k.jupyter_config_dir,
            extensions.config_files(site.extensions, site.files, site.slurm.bin_dir),
            args.dry_run,
            label=lambda rel: f"jupyter-config/{rel}",
        )
        changes += sync_files(
            k.git_attributes.parent,
            {k.git_attributes.name: extensions.GIT_ATTRIBUTES},
            args.dry_run,
            label=lambda rel: f"git/{rel}",
        )
    except OSError as err:
        print(
            f"hpchub kernels sync: cannot write {err.filename or k.shared_dir}: "
            f"{err.strerror} (sync writes the shared folder as root)",
            file=sys.stderr,
        )
        return 1
    finally:
        os.umask(old_umask)
    verb = "would" if args.dry_run else "did"
    if not args.quiet:
        print(f"{len(modules)} modules on {k.modulepath_text}; {len(wanted)} selected by the rules")
    for c in changes:
        if not args.quiet or c.action not in ("keep",):
            print(("(dry run) " if args.dry_run else "") + str(c))
    for n in notes:
        print(f"note: {n}")
    changed = sum(1 for c in changes if c.action in ("create", "update", "remove"))
    if not args.quiet or changed:
        print(f"{changed} changes {verb} apply in {k.shared_dir}")
    return 0


def test(args) -> int:
    site = load_site(args.config)
    if args.user or args.in_slurm:
        return _test_elsewhere(args, site)
    from ..kernels import tester

    names = args.names or tester.managed_names(site.kernels.kernels_dir)
    if not names:
        print(
            f"no kernels to test in {site.kernels.kernels_dir} (run `hpchub kernels sync`)",
            file=sys.stderr,
        )
        return 1
    ksm = tester.kernel_spec_manager(site.kernels.kernels_dir)
    report = tester.run_all(ksm, names, args.timeout)
    return _print_report(report, args.json)


def _print_report(report: dict, as_json: bool) -> int:
    from ..kernels import tester

    if as_json:
        print(json.dumps(report))
    else:
        print("\n".join(tester.report_lines(report)))
    return 0 if all(r["ok"] for r in report["results"]) else 1


def _test_elsewhere(args, site: SiteConfig) -> int:
    from ..kernels import tester
    from ..kernels.wrap import test_argv

    if args.user:
        try:
            args.user = site.hub.account_of(args.user)
            pwd.getpwnam(args.user)
        except ValueError as err:
            print(f"--user: {printable(err)}", file=sys.stderr)
            return 2
        except KeyError:
            print(f"--user: no such user {args.user!r}", file=sys.stderr)
            return 2
        if os.geteuid() != 0 and current_user() != args.user:
            print("--user needs root (it runs the test through sudo -u USER -i)", file=sys.stderr)
            return 2
    site_file = site_path(args.config).resolve()
    try:
        argv = test_argv(
            site, site_file, args.names, args.timeout, args.user, args.in_slurm, args.partition
        )
    except ValueError as err:
        print(f"hpchub kernels test: {err}", file=sys.stderr)
        return 2
    # The whole run: every kernel's timeout, plus time to queue for the allocation.
    limit = args.timeout * max(1, len(args.names) or 10) + 600
    r = run_command(argv, timeout=limit, cwd="/")
    if r.returncode == TIMED_OUT:
        print(f"hpchub kernels test: no result within {limit:g} s", file=sys.stderr)
        return 1
    try:
        report = tester.parse_report(r.stdout)
    except ValueError:
        print(
            f"hpchub kernels test: the test did not run ({' '.join(argv[:6])} ...):",
            file=sys.stderr,
        )
        print((r.stderr or r.stdout).strip()[-2000:], file=sys.stderr)
        return 1
    return _print_report(report, args.json)
