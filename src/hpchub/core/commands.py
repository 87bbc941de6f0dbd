"""Run a program from an argument list and wait for it, with a timeout. Never through a shell.

The one synchronous runner (the CLI, doctor, the installer's checks, kernels); the hub's
asynchronous one is slurm/runner.py. A missing program comes back as exit code 127 and a
program killed for its timeout as 124, like a shell's, so callers judge one result instead of
catching three kinds of failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

MISSING = 127
TIMED_OUT = 124


def run_command(
    argv: Sequence[str],
    *,
    timeout: float = 30,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` with its output captured as text; 127 if it is missing, 124 if too slow."""
    if isinstance(argv, str):  # a plain string would be one program named by the whole line
        raise TypeError("argv must be a sequence of arguments, not a string")
    argv = list(argv)
    try:
        return subprocess.run(  # noqa: S603 - an argument list, no shell
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    except FileNotFoundError as err:
        return subprocess.CompletedProcess(argv, MISSING, "", str(err))
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            argv, TIMED_OUT, "", f"{argv[0]} did not finish in {timeout:g} s"
        )
