"""Are the hub user's sudo rules no wider than hpchub needs? Read from `sudo -ll -U USER`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .findings import Finding, all_ok, error, warning

# Programs that turn "may run X as a user" into "may run anything as that user".
_ESCAPES = re.compile(
    r"^(ALL|.*/)?(sh|bash|dash|zsh|ksh|csh|tcsh|fish|env|su|sudo|python[0-9.]*|perl|ruby|node|"
    r"vi|vim|nano|emacs|less|more|find|awk|gawk|sed|tar|rsync|ssh|script|sudoedit|srun|salloc)$"
)


@dataclass
class SudoEntry:
    """One 'Sudoers entry' of sudo's long listing."""

    runas_users: list[str] = field(default_factory=list)
    runas_groups: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def parse_sudo_ll(text: str) -> list[SudoEntry]:
    """The entries of `sudo -ll -U USER` output (an empty list if the user may run nothing)."""
    entries: list[SudoEntry] = []
    current: SudoEntry | None = None
    in_commands = False
    for line in text.splitlines():
        # sudo 1.9.13 prints a bare "Sudoers entry:", 1.9.16 adds the file it came from.
        if line.strip().startswith("Sudoers entry:") or line.startswith("LDAP Role:"):
            current = SudoEntry()
            entries.append(current)
            in_commands = False
            continue
        if current is None:
            continue
        stripped = line.strip()
        if not stripped:
            in_commands = False
            continue
        if in_commands and line.startswith(("\t", "        ")):
            current.commands.append(stripped)
            continue
        key, _, value = stripped.partition(":")
        items = [v.strip() for v in value.split(",") if v.strip()]
        if key == "RunAsUsers":
            current.runas_users = items
        elif key == "RunAsGroups":
            current.runas_groups = items
        elif key == "Options":
            current.options = items
        elif key == "Commands":
            in_commands = True
    return entries


def judge_sudo(
    entries: list[SudoEntry],
    expected: list[str],
    hub_user: str,
    extend: tuple[str, str] | None = None,
) -> list[Finding]:
    """Errors for rules that reach root, ALL or a shell; warnings for commands hpchub does not
    need; an error when a command hpchub needs is missing. ``extend`` is the Extend button's
    rule (run as, command), where the site offers it: exactly that rule is hpchub's own."""
    name = "sudo rules"
    out: list[Finding] = []
    seen: set[str] = set()
    extend_seen = False
    for e in entries:
        if extend and e.runas_users == [extend[0]] and e.commands == [extend[1]]:
            extend_seen = True
            if any(g in ("ALL", "root") for g in e.runas_groups):
                out.append(
                    error(
                        name,
                        f"the Extend rule also runs as group {', '.join(e.runas_groups)}",
                        "remove the Runas group from the rule",
                    )
                )
            continue
        runas = e.runas_users or ["root"]  # no Runas list means root
        if "ALL" in runas or "root" in runas or "#0" in runas:
            out.append(
                error(
                    name,
                    f"{hub_user} may run {', '.join(e.commands) or 'commands'} as "
                    f"{', '.join(runas)}: that includes root",
                    "remove that rule; hpchub's own rule runs commands only as allowed users, "
                    "with '!root' (hpchub install writes it)",
                )
            )
        elif "!root" not in runas:
            out.append(
                warning(
                    name,
                    f"the rule for {', '.join(runas)} does not exclude root explicitly",
                    "add '!root' to the Runas list, so that root joining the group changes nothing",
                )
            )
        if e.runas_groups and any(g in ("ALL", "root") for g in e.runas_groups):
            out.append(
                error(
                    name,
                    f"{hub_user} may run commands with group {', '.join(e.runas_groups)}",
                    "remove the Runas group from the rule",
                )
            )
        for cmd in e.commands:
            seen.add(cmd)
            program = cmd.split()[0] if cmd.split() else cmd
            if cmd in expected:
                continue
            if cmd == "ALL" or _ESCAPES.match(os.path.basename(program)) or "*" in program:
                out.append(
                    error(
                        name,
                        f"{hub_user} may run {cmd!r}: that runs anything at all",
                        "remove it; hpchub needs only sbatch, scancel and its helper",
                    )
                )
            else:
                out.append(
                    warning(
                        name,
                        f"{hub_user} may run {cmd!r}, which this hub does not need",
                        "remove it unless another service of this user needs it",
                    )
                )
    if extend and not extend_seen:
        out.append(
            error(
                name,
                f"{hub_user} may not run {extend[1]} as {extend[0]}: the Extend button fails",
                "run `hpchub install`, which writes that rule, or switch time.extend off",
            )
        )
    missing = [c for c in expected if c not in seen]
    if missing:
        out.append(
            error(
                name,
                f"{hub_user} may not run {', '.join(missing)}: servers cannot be started or stopped",
                "run `hpchub install` to write the sudo rule",
            )
        )
    return all_ok(out, name, f"{hub_user} may run exactly what hpchub needs, never as root")
