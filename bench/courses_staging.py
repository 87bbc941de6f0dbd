"""How long staging a course takes, against a plain `cp -r` of the same files in the same run.

    .venv/bin/python bench/courses_staging.py [--files 500] [--runs 3]

A git repository of N files (notebooks, data and scripts of mixed sizes) is staged with the
hub's real code: git fetch and export into the hub's cache, hashing, the helper over pipes,
the three-way plan and the manifest. Only sudo is left out (the helper runs as the current
user); on the testbed sudo adds about a tenth of a second per staging.

Printed per scenario: the median of the runs in seconds, and the ratio to `cp -r`. The hub's
fetch is shown apart: it happens once per revision of the course, whatever the number of
students (the bench's random data compresses badly, so git takes longer than on real material).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpchub.config.loader import parse_site
from hpchub.core.coursepaths import expand_target
from hpchub.courses.stager import CourseStager

HELPER = (
    "import sys; from pathlib import Path; from hpchub.courses.student import stage; "
    "stage(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.stdin.buffer, sys.stdout.buffer, "
    "owned_from=int(sys.argv[4]))"
)


class BenchStager(CourseStager):
    """The hub's stager with the helper run directly (no sudo)."""

    homes: Path

    def helper_argv(self, course, user):
        target = expand_target(course.target_template, user, str(self.homes / user))
        self.homes.mkdir(parents=True, exist_ok=True)
        first_owned = str(len((self.homes / user).parts) - 1)  # the student's own folders
        return [sys.executable, "-c", HELPER, course.name, str(target), user, first_owned]


def make_materials(repo: Path, n: int, rng: random.Random) -> list[str]:
    """N files in a few folders: small notebooks and scripts, some larger data files."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    paths = []
    for i in range(n):
        folder = ("notebooks", "data", "scripts", "exercises/week1", "exercises/week2")[i % 5]
        size = rng.choice((2_000, 8_000, 20_000, 60_000)) if folder != "data" else 200_000
        rel = f"{folder}/file{i:04d}.{'csv' if folder == 'data' else 'ipynb'}"
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(rng.randbytes(size // 2).hex().encode())
        paths.append(rel)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "materials")
    return paths


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b", *args],
        check=True,
        capture_output=True,
    )


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_once(work: Path, n: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    repo = work / "materials"
    paths = make_materials(repo, n, rng)
    site = parse_site(
        {
            "hub": {"allowed_groups": ["jupyter"], "data_dir": str(work / "hub")},
            "courses": [
                {
                    "name": "bench",
                    "users": ["student"],
                    "source": {"git": str(repo), "refresh_interval": "0s"},
                    "target": "~/course",
                }
            ],
        }
    )
    stager = BenchStager(site)
    stager.homes = work / "home"
    course = stager.course("bench")
    target = stager.homes / "student" / "course"

    def stage():
        r = asyncio.run(stager.stage(course, "student"))
        assert r.state in ("ok", "conflicts"), r

    out = {}
    # Baseline: copy the same tree (git's working tree, .git left out) with cp -r.
    export = work / "export"
    shutil.copytree(repo, export, ignore=shutil.ignore_patterns(".git"))
    out["cp -r"] = timed(
        lambda: subprocess.run(["cp", "-r", str(export), str(work / "cp")], check=True)
    )
    # Once per course revision, for all students: the hub fetches and exports the repository.
    out["hub fetch (once per revision)"] = timed(lambda: stager.cache.snapshot(course))
    out["first staging of a student"] = timed(stage)
    out["restage, nothing changed"] = timed(stage)
    # 50 upstream changes, 20 student edits (5 of them on files changed upstream: conflicts).
    changed = rng.sample(paths, 50)
    for rel in changed:
        (repo / rel).write_text("changed upstream\n")
    git(repo, "commit", "-qam", "updates")
    for rel in changed[:5] + rng.sample(sorted(set(paths) - set(changed)), 15):
        (target / rel).write_text("student's answer\n")
    out["restage, 50 updates + 20 edits"] = timed(stage)
    report = stager.store.load("bench", "student")
    assert len(report.files["updated"]) == 45 and len(report.conflicts) == 5, report
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="hpchub-bench-") as tmp:
            for k, v in run_once(Path(tmp), args.files, seed=run).items():
                results.setdefault(k, []).append(v)
    base = statistics.median(results["cp -r"])
    print(f"staging {args.files} files, median of {args.runs} runs")
    print(f"{'scenario':36} {'seconds':>8} {'x cp -r':>8}")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:36} {med:8.3f} {med / base:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
