"""The only #SBATCH options a job script may carry, whatever the user sent (the tests' oracle)."""

ALLOWED_SBATCH = frozenset(
    {
        "--job-name",
        "--partition",
        "--time",
        "--mem",
        "--cpus-per-task",
        "--nodes",
        "--ntasks",
        "--output",
        "--chdir",
        "--export",
        "--gres",
        "--account",
        "--qos",
        "--reservation",
        "--constraint",
        "--comment",
    }
)
