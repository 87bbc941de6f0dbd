"""A fake command runner: records argument lists and answers like Slurm would.

It can also misbehave the ways a real cluster does: be slow (``latency``: a command slower
than its timeout raises CommandTimeout, as the real runner does, after moving ``clock`` on by
the timeout instead of sleeping), fail (``fail``) and print garbage (``garbage``). Commands
are named by their program, with ``squeue--start`` for the queue-place query.
"""

from __future__ import annotations

from hpchub.slurm.runner import CommandTimeout, Result


class FakeClock:
    """A clock that tests move by hand (install it with hpchub.core.clock.set_clock)."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


GARBAGE = "\x1b[31mSegmentation fault|||\n\x00not|a|job\n"


class FakeSlurm:
    """Answers sbatch/squeue/scancel from an in-memory job table."""

    def __init__(self):
        self.calls: list[tuple[str, ...]] = []
        self.stdin: list[str | None] = []
        self.envs: list[dict | None] = []
        self.jobs: dict[str, str] = {}
        self.next_id = 100
        self.down = False
        self.sbatch_error: str | None = None
        self.latency: dict[str, float] = {}
        self.fail: dict[str, str] = {}
        self.garbage: set[str] = set()
        self.clock = None  # an object with a float ``t`` that slow commands move on
        self.comments: dict[str, str] = {}  # job id -> Slurm comment (default: hpchub:hpchub)
        self.owners: dict[str, str] = {}  # job id -> user
        self.sinfo_o = ""  # what `sinfo -O ...` prints
        self.user_tool_output = ""  # what hpchub-user (prepare-logs, log-tail) prints
        self.state_only = False  # squeue takes --only-job-state (Slurm 24.05+), or not (22.05)
        self.private_data = "none"  # slurm.conf's PrivateData, as `scontrol show config` says
        self.admin_level = "None"  # the hub user's level in sacctmgr ("" when not in accounting)
        self.accounting = True  # False: sacct/sacctmgr say accounting storage is disabled
        self.history: dict[str, str] = {}  # job id -> sacct --parsable2 lines
        self.user_accounts: dict[str, list[str]] = {"alice": ["research", "course101"]}

    async def __call__(self, argv, *, stdin=None, env=None, timeout=30, cwd="/"):
        argv = tuple(argv)
        self.calls.append(argv)
        self.stdin.append(stdin)
        self.envs.append(env)
        if self.down:
            return Result(
                argv,
                1,
                "",
                "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
            )
        if any(a.endswith("/hpchub-user") for a in argv):
            return Result(argv, 0, self.user_tool_output, "")
        cmd = next(
            a
            for a in argv
            if a.endswith(
                ("sbatch", "squeue", "scancel", "sinfo", "scontrol", "sacct", "sacctmgr", "sshare")
            )
        )
        name = cmd.rsplit("/", 1)[-1]
        key = name + ("--start" if "--start" in argv else "")
        took = self.latency.get(key, 0.0)
        if self.clock is not None:
            self.clock.t += min(took, timeout)
        if took >= timeout:
            raise CommandTimeout(f"{cmd} did not answer within {timeout:g} s")
        if key in self.fail:
            return Result(argv, 1, "", self.fail[key])
        if key in self.garbage:
            return Result(argv, 0, GARBAGE, "")
        if name in ("sacct", "sacctmgr"):
            return self._accounting(name, argv)
        if name == "sshare":
            user = argv[argv.index("-u") + 1]
            lines = [f"  {a}|{user}|7200|0.5" for a in self.user_accounts.get(user, [])]
            return Result(argv, 0, "\n".join(lines) + "\n", "")
        if name == "scontrol" and argv[1:3] == ("show", "config"):
            return Result(argv, 0, f"PrivateData             = {self.private_data}\n", "")
        if name == "sbatch":
            if self.sbatch_error:
                return Result(argv, 1, "", self.sbatch_error)
            jid = str(self.next_id)
            self.next_id += 1
            self.jobs[jid] = "PENDING"
            self.owners[jid] = argv[3] if argv[0].endswith("sudo") else "alice"
            return Result(argv, 0, f"{jid}\n", "")
        if name == "scancel":
            jid = argv[-1]
            if jid not in self.jobs:
                return Result(
                    argv,
                    1,
                    "",
                    "scancel: error: Kill job error on job id 1: Invalid job id specified",
                )
            self.jobs[jid] = "CANCELLED"
            return Result(argv, 0, "", "")
        if name == "squeue" and "--start" in argv:
            pending = [j for j, st in self.jobs.items() if st == "PENDING"]
            lines = [
                f"{j}|jupyter-short|{1000 - i}|2026-11-26T12:00:00" for i, j in enumerate(pending)
            ]
            return Result(argv, 0, "\n".join(lines) + "\n", "")
        if name == "squeue" and "--only-job-state" in argv:
            if not self.state_only:
                return Result(argv, 1, "", "squeue: unrecognized option '--only-job-state'\n")
            ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
            lines = [f"{j}|{self.jobs[j]}" for j in ids if j in self.jobs]
            return Result(argv, 0, "".join(line + "\n" for line in lines), "")
        if name == "squeue" and "--jobs" not in " ".join(argv):
            return self._squeue_by_user(argv)
        if name == "squeue":
            ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
            if self.hides_jobs:
                ids = []  # PrivateData: the hub user sees none of the users' jobs
            lines = [
                f"{j}|{self.jobs[j]}|None|{'vm' if self.jobs[j] == 'RUNNING' else 'n/a'}|N/A|jupyter-short|2:00:00|"
                for j in ids
                if j in self.jobs
            ]
            if not lines and len(ids) == 1:
                return Result(argv, 1, "", "slurm_load_jobs error: Invalid job id specified")
            return Result(argv, 0, "\n".join(lines) + "\n", "")
        if name == "sinfo" and "-O" in argv:
            return Result(argv, 0, self.sinfo_o, "")
        if name == "sinfo":
            return Result(argv, 0, "vm|127.0.0.1|mixed|1/7/0/8|23593|22820|jupyter-short\n", "")
        return Result(argv, 1, "", "unsupported")

    @property
    def hides_jobs(self) -> bool:
        return "jobs" in self.private_data and self.admin_level not in ("Operator", "Administrator")

    def _accounting(self, name: str, argv) -> Result:
        if not self.accounting:
            return Result(argv, 1, "", "Slurm accounting storage is disabled")
        if name == "sacctmgr" and "withassoc" in argv:
            accounts = self.user_accounts.get(argv[argv.index("user") + 1], [])
            return Result(argv, 0, "".join(f"{accounts[0]}|{a}\n" for a in accounts), "")
        if name == "sacctmgr":
            return Result(argv, 0, f"{self.admin_level}\n" if self.admin_level else "", "")
        ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
        return Result(argv, 0, "".join(self.history.get(j, "") for j in ids), "")

    def _squeue_by_user(self, argv) -> Result:
        """`squeue --users=... --format=...` (course status) or `squeue -t PENDING -o %P`."""
        if "%P" in argv:
            pending = [j for j, st in self.jobs.items() if st == "PENDING"]
            return Result(argv, 0, "".join("jupyter-short\n" for _ in pending), "")
        users = next(a for a in argv if a.startswith("--users=")).split("=", 1)[1].split(",")
        lines = []
        for j, st in self.jobs.items():
            user = self.owners.get(j, "alice")
            if user in users and st in ("PENDING", "RUNNING"):
                node = "vm" if st == "RUNNING" else ""
                comment = self.comments.get(j, "hpchub:hpchub")
                lines.append(f"{user}|{j}|{st}|None|{node}|{comment}|jupyter-{user}")
        return Result(argv, 0, "\n".join(lines) + "\n", "")

    def count(self, name: str) -> int:
        return sum(1 for c in self.calls if any(a.endswith("/" + name) for a in c))
