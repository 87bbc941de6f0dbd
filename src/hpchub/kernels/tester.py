"""`hpchub kernels test`: start each kernel for real, run one line, report pass/fail and time.

The kernel is started exactly as a Jupyter server starts it (jupyter_client, the kernelspec's
argv and env), so a pass here means a pass in JupyterLab for the same user on the same node.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.clock import now
from ..core.names import user_name
from .kinds import TEST_CODE_BY_LANGUAGE
from .launcher import PREFIX
from .sync import is_ours

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class KernelResult:
    """The outcome of starting one kernel and running one line in it."""

    name: str
    display_name: str
    ok: bool
    seconds: float
    output: str = ""
    reason: str = ""

    def line(self) -> str:
        status = "PASS" if self.ok else "FAIL"
        text = self.output.strip().splitlines()[-1] if self.ok and self.output.strip() else ""
        tail = text if self.ok else self.reason
        return f"{status}  {self.name:40} {self.seconds:6.2f} s  {tail}"


def kernel_spec_manager(kernels_dir: Path):
    """A KernelSpecManager that looks in the site's kernels folder first, then the usual places."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_core.paths import jupyter_path

    dirs = [str(kernels_dir), *jupyter_path("kernels")]
    return KernelSpecManager(kernel_dirs=dirs, ensure_native_kernel=False)


def managed_names(kernels_dir: Path) -> list[str]:
    """The kernels that `hpchub kernels sync` made, by name."""
    if not kernels_dir.is_dir():
        return []
    return sorted(p.name for p in kernels_dir.iterdir() if p.is_dir() and is_ours(p))


def _reason_from_stderr(text: str) -> str:
    lines = [ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    ours = [ln for ln in lines if ln.startswith(PREFIX + ":")]
    if ours:
        return ours[-1]
    return lines[-1][:500] if lines else "the kernel exited without a message"


def test_code_for(spec) -> str:
    meta = (spec.metadata or {}).get("hpchub") or {}
    return meta.get("test_code") or TEST_CODE_BY_LANGUAGE.get(spec.language.lower(), "1")


def run_one(ksm, name: str, timeout: float, clock: Callable[[], float] = now) -> KernelResult:
    """Start kernel ``name``, run its test line, shut it down."""
    from jupyter_client.kernelspec import NoSuchKernel
    from jupyter_client.manager import KernelManager

    try:
        spec = ksm.get_kernel_spec(name)
    except NoSuchKernel:
        return KernelResult(name, name, False, 0.0, reason="no such kernel")
    code = test_code_for(spec)
    km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
    with tempfile.TemporaryFile(mode="w+") as errlog:
        return _start_and_run(km, spec, name, code, errlog, timeout, clock)


def _start_and_run(km, spec, name, code, errlog, timeout, clock) -> KernelResult:
    start = clock()
    kc = None
    try:
        km.start_kernel(stderr=errlog, stdout=errlog)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=timeout)
        except (RuntimeError, TimeoutError) as err:
            errlog.seek(0)
            reason = _reason_from_stderr(errlog.read()) if not km.is_alive() else str(err)
            return KernelResult(name, spec.display_name, False, clock() - start, reason=reason)
        out: list[str] = []

        def hook(msg) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] in ("execute_result", "display_data"):
                out.append(msg["content"]["data"].get("text/plain", "") + "\n")

        try:
            reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        except TimeoutError:
            reason = f"no answer to {code!r} within {timeout:g} s"
            return KernelResult(name, spec.display_name, False, clock() - start, reason=reason)
        seconds = clock() - start
        content = reply["content"]
        if content.get("status") != "ok":
            evalue = _ANSI.sub("", str(content.get("evalue", ""))).strip()
            reason = f"{content.get('ename', 'error')}: {evalue}"
            if content.get("ename") == "KernelStartError":
                reason = evalue
            return KernelResult(name, spec.display_name, False, seconds, "".join(out), reason)
        return KernelResult(name, spec.display_name, True, seconds, "".join(out))
    finally:
        if kc is not None:
            kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def run_all(ksm, names: Sequence[str], timeout: float) -> dict:
    """Test ``names`` one after the other; a JSON-ready report with where it ran."""
    results = [run_one(ksm, n, timeout) for n in names]
    return {
        "host": socket.gethostname(),
        "user": user_name(os.geteuid()),
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
        "results": [asdict(r) for r in results],
    }


def report_lines(report: dict) -> list[str]:
    """Human-readable lines for a report from :func:`run_all`."""
    where = f"as {report['user']} on {report['host']}"
    if report.get("slurm_job"):
        where += f" in Slurm job {report['slurm_job']}"
    lines = [f"kernels tested {where}:"]
    for r in report["results"]:
        lines.append(KernelResult(**r).line())
    failed = sum(1 for r in report["results"] if not r["ok"])
    lines.append(f"{len(report['results']) - failed} passed, {failed} failed")
    return lines


def parse_report(stdout: str) -> dict:
    """The JSON report printed by `hpchub kernels test --json` (the last JSON line)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON report in the output")
