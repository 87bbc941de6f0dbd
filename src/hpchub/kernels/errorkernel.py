"""A stand-in kernel that stays up and answers every cell with why the real one cannot start.

An exiting kernel makes Jupyter restart it several times and then show only "kernel died".
This one keeps the connection, so the notebook shows the message as the cell's error, the
console shows it as the banner, and nothing restarts.
"""

from __future__ import annotations

from ipykernel.kernelbase import Kernel

from .. import __version__

ENAME = "KernelStartError"


class ErrorKernel(Kernel):
    """Answers kernel_info normally and every execute request with one fixed error."""

    implementation = "hpchub-error-kernel"
    implementation_version = __version__
    message = "this kernel cannot start"
    language_name = "python"

    @property
    def banner(self) -> str:  # type: ignore[override]
        return self.message

    @property
    def language_info(self) -> dict:  # type: ignore[override]
        return {"name": self.language_name, "mimetype": "text/plain", "file_extension": ".txt"}

    def error_content(self) -> dict:
        hint = (
            "Ask your admins, or choose another kernel. "
            "`hpchub kernels test` shows the same message."
        )
        return {"ename": ENAME, "evalue": self.message, "traceback": [self.message, hint]}

    def do_execute(
        self,
        code,
        silent,
        store_history=True,
        user_expressions=None,
        allow_stdin=False,
        *,
        cell_meta=None,
        cell_id=None,
    ):
        content = self.error_content()
        if not silent:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    def do_complete(self, code, cursor_pos):
        return {
            "status": "ok",
            "matches": [],
            "cursor_start": cursor_pos,
            "cursor_end": cursor_pos,
            "metadata": {},
        }


def serve(message: str, language: str, connection_file: str) -> None:
    """Run the stand-in kernel on ``connection_file`` until Jupyter shuts it down."""
    from ipykernel.kernelapp import IPKernelApp

    cls = type(
        "ErrorKernel", (ErrorKernel,), {"message": message, "language_name": language.lower()}
    )
    IPKernelApp.launch_instance(argv=["-f", connection_file], kernel_class=cls)
