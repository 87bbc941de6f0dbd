"""Where a single-user server's start-up goes: one profiled direct start read back (pure parsers).

The profiled start is a floor start (spawn.floor_once) with Python's ``-X importtime`` and the
server's ``--debug`` log: the import lines give each package's own import time; the log's
timestamps give the extensions' import, link and load steps and the moment it serves.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from collections import Counter
from pathlib import Path

_IMPORT = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
_LOG = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\w+)\] (.*)$")
_TOOK = re.compile(r"Extension package (\S+) took ([\d.]+)s to import")
_LOADED = re.compile(r"^(\S+) \| extension was successfully loaded")


def import_seconds(text: str, top: int = 8) -> dict:
    """Import time by top-level package (self times summed), the ``top`` largest and the
    total, from ``-X importtime`` output mixed into a log."""
    per: Counter = Counter()
    for line in text.splitlines():
        m = _IMPORT.match(line)
        if m:
            per[m.group(4).split(".")[0]] += int(m.group(1))
    return {
        "total": sum(per.values()) / 1e6,
        "top": {name: us / 1e6 for name, us in per.most_common(top)},
    }


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace(" ", "T")).timestamp()


def log_steps(text: str) -> dict:
    """From a --debug server log: seconds from its first line to serving, each extension's
    import (as the server reports it) and load (from the previous step's line to its
    'successfully loaded' line)."""
    first = running = last = None
    imports: dict[str, float] = {}
    loads: dict[str, float] = {}
    for line in text.splitlines():
        m = _LOG.match(line)
        if not m:
            continue
        t, msg = _ts(m.group(1)), m.group(3)
        first = t if first is None else first
        if (took := _TOOK.search(msg)) is not None:
            imports[took.group(1)] = float(took.group(2))
        elif (done := _LOADED.match(msg)) is not None and last is not None:
            loads[done.group(1)] = t - last
        elif "is running at" in msg and running is None:
            running = t
        if "extension was successfully" in msg:
            last = t
    return {
        "first_line_to_serving": None if first is None or running is None else running - first,
        "extension_import": imports,
        "extension_load": loads,
    }


def profile(text: str) -> dict:
    """One profiled start: its imports and its log's steps."""
    return {"imports": import_seconds(text), **log_steps(text)}


def uncompiled(prefix: Path) -> dict:
    """Python files of a prefix's site-packages without their byte-code for this Python.

    A server start imports from a prefix its user cannot write: a module without its .pyc
    there is compiled again on every start, in every job.
    """
    files = list(prefix.glob("lib/python3*/site-packages/**/*.py"))
    missing = [f for f in files if not Path(importlib.util.cache_from_source(str(f))).exists()]
    return {"py_files": len(files), "without_pyc": len(missing)}
