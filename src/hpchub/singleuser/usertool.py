"""`hpchub-user`: the few things the hub does as the user, through sudo, besides sbatch/scancel.

It runs as the user (never root), takes only validated arguments, and touches only the user's
own log folder (and, for `stage-course`, the user's own course folder).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

_LOG_NAME = re.compile(r"^jupyter-\d+\.log$")


def _log_dir(raw: str) -> Path:
    if not re.fullmatch(r"(~|/)[A-Za-z0-9_./-]*", raw) or ".." in raw.split("/"):
        raise SystemExit(f"hpchub-user: unsafe log folder {raw!r}")
    return Path(os.path.expanduser(raw))


def prepare_logs(folder: Path, max_age_days: int, now: float | None = None) -> int:
    """Create ``folder`` mode 700 and delete our job logs older than ``max_age_days``."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    cutoff = (now or time.time()) - max_age_days * 86400
    removed = 0
    for entry in folder.iterdir():
        if _LOG_NAME.match(entry.name) and entry.is_file() and entry.stat().st_mtime < cutoff:
            entry.unlink()
            removed += 1
    return removed


def log_tail(folder: Path, job_id: str, lines: int) -> str:
    """The last ``lines`` lines of the log of ``job_id`` ('' if there is none)."""
    if not re.fullmatch(r"\d+", job_id):
        raise SystemExit("hpchub-user: job id must be a number")
    path = folder / f"jupyter-{job_id}.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stage-course"]:
        # Course materials, sent by the hub on stdin (hpchub.courses.student).
        from ..courses.student import main as stage_course

        raise SystemExit(stage_course(argv[1:]))
    parser = argparse.ArgumentParser(prog="hpchub-user")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare-logs")
    p.add_argument("--dir", required=True)
    p.add_argument("--max-age-days", type=int, default=7)
    t = sub.add_parser("log-tail")
    t.add_argument("--dir", required=True)
    t.add_argument("--job", required=True)
    t.add_argument("--lines", type=int, default=30, choices=range(1, 501), metavar="1..500")
    args = parser.parse_args(argv)
    if os.geteuid() == 0:
        raise SystemExit("hpchub-user runs as the user, never as root")
    folder = _log_dir(args.dir)
    if args.cmd == "prepare-logs":
        if not 1 <= args.max_age_days <= 3650:
            parser.error("--max-age-days must be 1..3650")
        prepare_logs(folder, args.max_age_days)
    else:
        sys.stdout.write(log_tail(folder, args.job, args.lines))


if __name__ == "__main__":
    main()
