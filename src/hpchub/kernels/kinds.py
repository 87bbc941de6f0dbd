"""The kinds of kernel a module can become, described as data.

Each kind says which command starts the kernel once the modules are loaded, a quick check that
the module really provides that kernel (so a missing ipykernel gives a message, not a restart
loop), and the line `hpchub kernels test` runs in it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """How to start one kind of kernel inside a module environment."""

    language: str
    command: tuple[str, ...]
    check: tuple[str, ...] | None
    check_failed: str
    test_code: str
    logos_from_ipykernel: bool = False


KINDS: dict[str, Kind] = {
    "python": Kind(
        language="python",
        command=("python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"),
        check=(
            "python3",
            "-c",
            "import importlib.util, sys; sys.exit(importlib.util.find_spec('ipykernel') is None)",
        ),
        check_failed="its python3 has no ipykernel (the module's Python needs the ipykernel package)",
        test_code="import sys; print(sys.executable)",
        logos_from_ipykernel=True,
    ),
    "r": Kind(
        language="R",
        command=("R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"),
        check=(
            "Rscript",
            "-e",
            "quit(status = as.integer(!requireNamespace('IRkernel', quietly = TRUE)))",
        ),
        check_failed="its R has no IRkernel package (install IRkernel into the module's R library)",
        test_code="cat(R.home(), '\\n')",
    ),
}

# What `hpchub kernels test` runs in kernels that are not ours, by language.
TEST_CODE_BY_LANGUAGE = {
    "python": "import sys; print(sys.executable)",
    "r": "cat(R.home(), '\\n')",
    "julia": "println(Sys.BINDIR)",
}
