"""The site's time policy: warnings before a job's time limit, extensions, start notices."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import ProblemList, Strict, described
from .names import SlurmName, UnixName
from .units import DurationSeconds, IdleSeconds

EXTEND_HELPER = "hpchub-extend-job"
"""The generated helper's file name in deploy.etc_dir (rendered by deploy, run by the hub)."""


class ExtendSettings(Strict):
    """The Extend button: how much a running server's time limit may grow, and where."""

    enabled: bool = Field(True, description="Offer the Extend button (JupyterLab, home page).")
    step: DurationSeconds = Field(
        "1h", validate_default=True, description="What one press of the button asks for."
    )
    max_per_extension: DurationSeconds = Field(
        "4h", validate_default=True, description="The most one extension may add."
    )
    max_total: DurationSeconds = Field(
        "12h",
        validate_default=True,
        description="The most all extensions of one server may add together.",
    )
    partitions: list[SlurmName] | None = Field(
        None,
        description=(
            "Partitions whose jobs may be extended (default: all of slurm.partitions). The new "
            "limit never passes the partition's max_time nor Slurm's MaxTime."
        ),
    )
    run_as: UnixName = Field(
        "slurm",
        description=(
            "slurm.conf's SlurmUser: the generated helper that raises a time limit runs as it "
            "through sudo (slurmctld lets only it, root and operators raise a limit)."
        ),
    )

    @model_validator(mode="after")
    def _fits(self) -> ExtendSettings:
        problems = ProblemList()
        if self.step > self.max_per_extension:
            problems.add(("step",), "is more than max_per_extension")
        if self.max_per_extension > self.max_total:
            problems.add(("max_per_extension",), "is more than max_total")
        problems.raise_if_any()
        return self


class EmailSettings(Strict):
    """Mail to a user whose queued server has started, through the site's SMTP relay."""

    enabled: bool = Field(False, description="Send the mail (the site's relay must accept it).")
    smtp_host: str = Field(
        "localhost",
        pattern=described(r"^[A-Za-z0-9.:-]+$", "a host name or address"),
        description="The site's mail relay (plain SMTP, no login).",
    )
    smtp_port: int = Field(25, ge=1, le=65535)
    sender: str = Field(
        "hpchub@localhost",
        pattern=described(r"^[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+$", "an address like hub@example.org"),
        description="The From: address.",
    )
    domain: str = Field(
        "localhost",
        pattern=described(r"^[A-Za-z0-9.-]+$", "a mail domain like example.org"),
        description="Users' addresses are NAME@domain.",
    )


class TimeSettings(Strict):
    """Time users can see and extend: JupyterLab's status bar and the home page show it."""

    warn_before: list[DurationSeconds] = Field(
        default_factory=lambda: [1800, 300],
        description="Warn (JupyterLab and a browser notification) this long before the limit.",
    )
    extend: ExtendSettings = Field(default_factory=ExtendSettings)
    queue_notice_after: IdleSeconds = Field(
        "1m",
        validate_default=True,
        description=(
            "A server that waited in the queue longer than this tells its user when it starts "
            "(a browser notification from the progress page, and mail if email is enabled)."
        ),
    )
    email: EmailSettings = Field(default_factory=EmailSettings)
