"""Slurm's states and pending reasons in words a user can act on."""

from __future__ import annotations

from .parsers import JobHistory

PENDING_REASONS = {
    "Resources": "waiting for free CPUs or memory on the Jupyter nodes",
    "Priority": "waiting behind other jobs with higher priority",
    "Dependency": "waiting for another job to finish",
    "ReqNodeNotAvail": "the nodes it needs are not available (down, drained or reserved)",
    "PartitionNodeLimit": "asks for more nodes than the partition allows",
    "PartitionTimeLimit": "asks for more time than the partition allows: choose a shorter time",
    "PartitionDown": "the partition is down: ask the admins, or choose another profile",
    "PartitionInactive": "the partition is inactive: ask the admins, or choose another profile",
    "QOSMaxJobsPerUserLimit": "you already run as many jobs as your QOS allows: stop another server",
    "QOSMaxCpuPerUserLimit": "you already use as many CPUs as your QOS allows",
    "QOSMaxMemoryPerUser": "you already use as much memory as your QOS allows",
    "AssocMaxJobsLimit": "your account already runs as many jobs as it may",
    "AssocGrpCpuLimit": "your group already uses all the CPUs it may",
    "AssocGrpMemLimit": "your group already uses all the memory it may",
    "JobHeldUser": "held by you: release it with `scontrol release`",
    "JobHeldAdmin": "held by an administrator",
    "BeginTime": "waiting for its start time",
    "Reservation": "waiting for its reservation to start",
    "ReqNodeNotAvail, Reserved for maintenance": "the nodes are reserved for maintenance",
    "Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions": (
        "the nodes are down, drained, or kept for higher-priority partitions"
    ),
    "None": "being scheduled",
}

END_STATES = {
    "COMPLETED": "the server exited by itself",
    "FAILED": "the job failed",
    "CANCELLED": "the job was cancelled (by you, an admin, or the hub)",
    "TIMEOUT": "the job reached its time limit; choose a longer time next time",
    "OUT_OF_MEMORY": "it used more memory than it asked for and was killed; choose more memory",
    "NODE_FAIL": "the node it ran on failed; start it again",
    "PREEMPTED": "it was preempted by a higher-priority job; start it again",
    "BOOT_FAIL": "the node could not boot for it; start it again",
    "DEADLINE": "it missed its deadline",
    "GONE": "the job has ended and Slurm no longer keeps its record",
}


def explain_pending(reason: str) -> str:
    """Plain words for a pending reason; unknown reasons are shown as Slurm gives them."""
    reason = (reason or "None").strip("() ")
    if reason in PENDING_REASONS:
        return PENDING_REASONS[reason]
    for key, words in PENDING_REASONS.items():
        if reason.startswith(key):
            return words
    return f"Slurm says: {reason}"


def _size(mib: float) -> str:
    return f"{mib / 1024:.1f}G" if mib >= 1024 else f"{mib:.0f}M"


def memory_words(history: JobHistory) -> str:
    """ "you used 3.9G of the 4.0G you asked for", from accounting ('' when it was not sampled)."""
    if history.peak_mib is None:
        return ""
    if history.requested_mib is None:
        return f"it used at most {_size(history.peak_mib)} of memory"
    return f"you used {_size(history.peak_mib)} of the {_size(history.requested_mib)} you asked for"


def explain_end(
    state: str,
    exit_code: str | None = None,
    history: JobHistory | None = None,
    requested_mib: float | None = None,
) -> str:
    """Plain words for a job that ended; the exit code and, from accounting, the peak memory
    are added where they help. ``history`` (sacct's record) names the state of a job that has
    left the queue, once accounting has recorded its end; ``requested_mib`` (what the hub
    asked for) stands in for the record's request while accounting has none yet."""
    base = state.split()[0] if state else "GONE"
    if history is not None and history.state in END_STATES:
        base, exit_code = history.state, exit_code or history.exit_code
    words = END_STATES.get(base, f"the job ended in state {base}")
    if exit_code and base in ("FAILED", "COMPLETED") and exit_code not in ("0:0", ""):
        words += f" (exit code {exit_code})"
    memory = memory_words(history) if history is not None else ""
    if memory:
        words += f"; {memory}"
    elif base == "OUT_OF_MEMORY":
        asked = (history.requested_mib if history is not None else None) or requested_mib
        if asked:
            words += f"; you asked for {_size(asked)}"
    return f"{base}: {words}"
