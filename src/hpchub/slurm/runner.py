"""Run a command from an argument list, asynchronously, with a timeout. Never through a shell."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def message(self) -> str:
        """The command's own words about what went wrong (stderr, else stdout)."""
        text = (self.stderr or self.stdout).strip()
        return text or f"{self.argv[0]} exited with status {self.returncode}"


class CommandTimeout(TimeoutError):
    """The command did not finish in time and was killed.

    A TimeoutError, so every ``except TimeoutError`` (the monitor's "Slurm is slow: the jobs'
    fate is unknown") also covers a Slurm command that was killed for being slow.
    """


async def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    cwd: str = "/",
) -> Result:
    """Run ``argv`` (no shell) and collect its output; kill it after ``timeout`` seconds."""
    if isinstance(argv, str):  # a plain string would be split into characters
        raise TypeError("argv must be a sequence of arguments, not a string")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), timeout
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        raise CommandTimeout(f"{argv[0]} did not answer within {timeout:g} s") from None
    return Result(
        tuple(argv),
        proc.returncode or 0,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )
