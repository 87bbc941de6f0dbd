"""Fetching a git course as the hub user (never on a compute node): into a bare repository, then
exported once per revision into an immutable tree of plain folders and files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.files import atomic_write

if TYPE_CHECKING:
    from ..config.courses import CourseSource

GIT = "/usr/bin/git"
REF = "refs/hpchub/fetched"


class GitError(Exception):
    """A git command failed; the message is git's own last line."""


def git_env(source: CourseSource, home: Path) -> dict[str, str]:
    """A fixed environment for git: no prompts, only safe transports, batch-mode ssh."""
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
    ssh += ["-o", f"UserKnownHostsFile={home / 'known_hosts'}"]
    if source.ssh_key is not None:
        ssh += ["-i", str(source.ssh_key), "-o", "IdentitiesOnly=yes"]
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
        "GIT_SSH_COMMAND": " ".join(ssh),
        "GIT_CONFIG_NOSYSTEM": "0",
    }


def _trust_local_repository(source: CourseSource, home: Path) -> None:
    """Let git read the local repository the site file names, whoever owns it.

    git refuses repositories owned by another user ("dubious ownership"), and only trusts an
    exception from protected configuration: the global file in the HOME we give git. Only the
    exact path from the site file is trusted.
    """
    url = source.git or ""
    local = url.removeprefix("file://") if url.startswith(("/", "file:///")) else None
    lines = ["# Written by hpchub: the course repository named in the site file.\n"]
    if local:
        base = local.rstrip("/")
        lines += ["[safe]\n", f"\tdirectory = {base}\n", f"\tdirectory = {base}/.git\n"]
    atomic_write(home / ".gitconfig", "".join(lines), 0o600)


def _git(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(  # noqa: S603 - fixed argv, validated URL and ref
            [GIT, *args], env=env, capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {timeout:g} s") from None
    if r.returncode != 0:
        raise GitError(git_reason(r.stderr.decode(errors="replace"), args[0], r.returncode))
    return r


def git_reason(stderr: str, command: str, code: int) -> str:
    """git's own reason, from its first 'fatal:' or 'error:' line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line.removeprefix(prefix)
    return lines[-1] if lines else f"git {command} failed ({code})"


def fetch(source: CourseSource, home: Path) -> tuple[str, str]:
    """Fetch ``source`` into ``home/repo.git`` and export it; (revision, tree folder name)."""
    env = git_env(source, home)
    _trust_local_repository(source, home)
    repo = home / "repo.git"
    if not (repo / "HEAD").exists():
        shutil.rmtree(repo, ignore_errors=True)
        _git(["init", "--quiet", "--bare", str(repo)], env, 30)
    git = ["--git-dir", str(repo)]
    # Into a ref: the next fetch tells the server what we have, and gets only what changed.
    refspec = f"+{source.ref}:{REF}"
    fetch_args = ["fetch", "--quiet", "--depth=1", "--no-tags", "--", source.git, refspec]
    _git([*git, *fetch_args], env, source.fetch_timeout)
    rev = _git([*git, "rev-parse", "--verify", f"{REF}^{{commit}}"], env, 30)
    revision = rev.stdout.decode().strip()
    suffix = hashlib.sha256((source.subdir or "").encode()).hexdigest()[:8]
    tree_name = f"tree-{revision}-{suffix}"
    if not (home / tree_name).is_dir():
        treeish = f"{revision}:{source.subdir}" if source.subdir else revision
        _export([GIT, *git, "archive", "--format=tar", treeish], env, home / tree_name)
    return revision, tree_name


def _export(argv: list[str], env: dict[str, str], tree: Path) -> None:
    tmp = tree.with_name(tree.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    with subprocess.Popen(  # noqa: S603 - fixed argv
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        failure = None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                extract_plain(tar, tmp)
        except tarfile.TarError as err:
            failure = str(err)
            proc.kill()
        errors = proc.stderr.read().decode(errors="replace")
        code = proc.wait()
        if code != 0 or failure:
            shutil.rmtree(tmp, ignore_errors=True)
            raise GitError(git_reason(errors, "archive", code) if errors.strip() else failure)
    os.replace(tmp, tree)


def extract_plain(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract only folders and regular files with plain relative names (links, devices and
    anything that would land outside ``dest`` are dropped: they are never staged anyway)."""
    for member in tar:
        parts = member.name.strip("/").split("/")
        if (
            member.name.startswith("/")
            or any(p in ("", ".", "..") for p in parts)
            or not (member.isdir() or member.isreg())
        ):
            continue
        path = dest.joinpath(*parts)
        for parent in reversed(path.relative_to(dest).parents[:-1]):
            (dest / parent).mkdir(mode=0o700, exist_ok=True)
        if member.isdir():
            path.mkdir(mode=0o700, exist_ok=True)
            continue
        src = tar.extractfile(member)
        mode = 0o700 if member.mode & 0o100 else 0o600
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
