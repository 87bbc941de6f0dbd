"""The `courses` section of the site file: who takes a course, where its materials come from,
where they go in each student's folders, which profiles the course uses and when it runs.

Every value here ends up in a command line (git), a path (the student's target folder) or a
file name, so each one is checked for the characters it may hold.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from ..core.coursepaths import check_target
from .base import Strict
from .names import CourseName, UnixName
from .profiles import ProfileKey
from .units import duration

if TYPE_CHECKING:
    from .models import SiteConfig


"""A course name: lower-case letters, digits, '_' and '-'; it names folders and report files."""


# Transports git may use for a course source. Anything else (ext::, fd::, a leading '-') could
# run commands on the hub, so it is refused here and again through GIT_ALLOW_PROTOCOL.
GIT_PROTOCOLS = ("https", "http", "ssh", "git", "file")
_URL_RE = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>[^\s]+)$")
_SCP_RE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9.-]+:[A-Za-z0-9_./~-]+$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9_./+@~-]*$")
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_SUBDIR_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_./ -]{0,199}$")
_EXCLUDE_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]/ -]{1,200}$")


def check_git_url(url: str) -> str:
    """``url`` if git may fetch it safely, else ValueError naming what is allowed."""
    allowed = (
        "use https://host/path, ssh://[user@]host/path, user@host:path, git://host/path, "
        "file:///path or an absolute path"
    )
    if url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(f"git URL {url!r} is not allowed: {allowed}")
    m = _URL_RE.match(url)
    if m:
        scheme = m["scheme"]
        if scheme not in GIT_PROTOCOLS:
            raise ValueError(f"git URL scheme {scheme!r} is not allowed: {allowed}")
        authority = m["rest"].split("/", 1)[0]
        if scheme in ("https", "http") and "@" in authority:
            # The site file is world-readable: a token in the URL would be readable by all.
            raise ValueError(
                "git URL must not hold credentials (the site file is readable by everyone); "
                "use ssh_key, or a credential helper in the hub user's git config"
            )
        return url
    if "::" in url:
        raise ValueError(f"git URL {url!r} uses a remote helper, which is not allowed: {allowed}")
    if _SCP_RE.match(url) or (_PATH_RE.match(url) and ".." not in url.split("/")):
        return url
    raise ValueError(f"git URL {url!r} is not allowed: {allowed}")


def _check_relative(value: str, what: str) -> str:
    parts = value.strip("/").split("/")
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{what} {value!r} must be a relative path without '.', '..' or '//'")
    return value.strip("/")


class CourseSource(Strict):
    """Where a course's materials come from: a git repository or a local folder (one of them)."""

    git: str | None = Field(
        None,
        description=(
            "A git repository the hub can reach: https://, ssh://, user@host:path, git://, "
            "file:// or an absolute path. The hub fetches it; compute nodes never do."
        ),
    )
    ref: str = Field(
        "main",
        description="Branch or tag of the git repository to stage (git sources only).",
    )
    ssh_key: Path | None = Field(
        None,
        description=(
            "Private key the hub user uses for ssh:// and user@host: URLs (mode 600, owned "
            "by the hub user). Without it, ssh runs in batch mode with the hub user's defaults."
        ),
    )
    path: Path | None = Field(
        None,
        description=(
            "A local folder the hub user can read (for example on the shared filesystem). "
            "It is read without following a symbolic link a user could have made (on the way "
            "to it or inside it), and is never one of the hub's own folders."
        ),
    )
    subdir: str | None = Field(
        None,
        description="Stage only this sub-folder of the repository or folder.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description=(
            "Glob patterns never staged. A pattern without '/' matches any file or folder "
            "name (`*.pyc`, `solutions`); with '/' it matches the path from the top "
            "(`answers/*.ipynb`). `.git` and hpchub's own names are always excluded."
        ),
    )
    refresh_interval: duration(0, 86400) = Field(  # type: ignore[valid-type]
        "1m",
        validate_default=True,
        description=(
            "How long a fetched git revision is reused without asking the server "
            "again (a workshop's first minute starts many servers at once)."
        ),
    )
    fetch_timeout: duration(5, 3600) = Field(  # type: ignore[valid-type]
        "1m", validate_default=True, description="How long a git fetch may take before it fails."
    )

    @field_validator("git")
    @classmethod
    def _git_url(cls, v: str | None) -> str | None:
        return None if v is None else check_git_url(v)

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        if not _REF_RE.match(v) or ".." in v or "//" in v or v.endswith((".lock", "/")):
            raise ValueError(
                f"ref {v!r} is not a valid branch or tag name: letters, digits and ._/- only, "
                "starting with a letter or digit"
            )
        return v

    @field_validator("path", "ssh_key")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        if v is not None and (not v.is_absolute() or ".." in v.parts):
            raise ValueError(f"{v} must be an absolute path without '..'")
        return v

    @field_validator("subdir")
    @classmethod
    def _subdir(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not _SUBDIR_RE.match(v):
            raise ValueError(f"subdir {v!r} may hold letters, digits, spaces and ._/- only")
        return _check_relative(v, "subdir")

    @field_validator("exclude")
    @classmethod
    def _excludes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            if not _EXCLUDE_RE.match(pattern) or ".." in pattern.split("/"):
                raise ValueError(
                    f"exclude pattern {pattern!r} may hold letters, digits, spaces, "
                    "'._-/' and the glob characters '*?[]' only"
                )
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> CourseSource:
        if (self.git is None) == (self.path is None):
            raise ValueError("a course source needs exactly one of `git` or `path`")
        if self.path is not None and self.ssh_key is not None:
            raise ValueError("ssh_key only applies to git sources")
        return self

    @property
    def kind(self) -> str:
        """'git' or 'folder'."""
        return "git" if self.git is not None else "folder"

    def describe(self) -> str:
        """One line for reports: where the materials come from."""
        where = f"git {self.git} ({self.ref})" if self.git is not None else f"folder {self.path}"
        return where + (f", sub-folder {self.subdir}" if self.subdir else "")


class Course(Strict):
    """A course or workshop: its members get its materials staged and see its profiles."""

    name: CourseName = Field(
        description="Short name, used on the command line and in report files (`pyintro`)."
    )
    title: str = Field("", max_length=200, description="Name shown to students.")
    groups: list[UnixName] = Field(
        default_factory=list, description="Unix groups whose members take the course."
    )
    users: list[UnixName] = Field(
        default_factory=list, description="Users who take the course, besides the groups."
    )
    instructors: list[UnixName] = Field(
        default_factory=list,
        description=(
            "Users who run the course: they are members too, and may use "
            "`hpchub course status|stage` on this course through sudo."
        ),
    )
    source: CourseSource = Field(description="Where the materials come from.")
    target: str | None = Field(
        None,
        description=(
            "Folder the materials go to, per student: `~/...` (the student's home) or an "
            "absolute path holding `{user}` (`/scratch/work/{user}/pyintro`). "
            "The folder holding `{user}` (or the home) and every one below must be the "
            "student's own, never a link. Default `~/courses/NAME`."
        ),
    )
    profiles: list[ProfileKey] = Field(
        default_factory=list,
        description=(
            "Keys of the profiles students use for this course (for example one with the "
            "lab-hours reservation). Members see them at the top of the form; nobody else "
            "sees them."
        ),
    )
    start: dt.date | None = Field(
        None, description="First day of the course (YYYY-MM-DD); before it, nothing happens."
    )
    end: dt.date | None = Field(
        None,
        description=(
            "Last day of the course; after it, nothing is staged and its profiles are hidden "
            "(students keep their files)."
        ),
    )
    stage_on_spawn: bool = Field(
        True, description="Stage the materials each time a member starts a server."
    )
    spawn_wait: int = Field(
        30,
        ge=0,
        le=600,
        description=(
            "Seconds a starting server waits for staging to finish; staging that takes longer "
            "goes on in the background and the server starts anyway. 0: never wait."
        ),
    )

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        if v is None:
            return None
        return check_target(v)

    @model_validator(mode="after")
    def _check(self) -> Course:
        if not (self.groups or self.users or self.instructors):
            raise ValueError(
                f"course {self.name!r} has no members: set groups, users or instructors"
            )
        if self.start and self.end and self.end < self.start:
            raise ValueError(
                f"course {self.name!r} ends ({self.end}) before it starts ({self.start})"
            )
        if len(set(self.profiles)) != len(self.profiles):
            raise ValueError(f"course {self.name!r} lists a profile twice: {self.profiles}")
        return self

    @property
    def target_template(self) -> str:
        """The target folder template, with the default filled in."""
        return self.target or f"~/courses/{self.name}"

    def active(self, today: dt.date) -> bool:
        """Whether ``today`` lies within the course's dates (open-ended when a date is unset)."""
        return (self.start is None or self.start <= today) and (
            self.end is None or today <= self.end
        )

    def has_member(self, username: str, groups: set[str] | frozenset[str]) -> bool:
        """Whether the user (with these Unix groups) takes or runs the course."""
        return (
            username in self.users
            or username in self.instructors
            or bool(set(self.groups) & set(groups))
        )


def check_unique_courses(courses: list[Course]) -> list[Course]:
    """Course names must be unique (they name folders and report files)."""
    names = [c.name for c in courses]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"course names must be unique; repeated: {dupes}")
    return courses


def check_course_profiles(site: SiteConfig) -> None:
    """Every profile a course names must exist in the site's profile list."""
    keys = {p.key for p in site.profiles}
    for i, course in enumerate(site.courses):
        missing = [k for k in course.profiles if k not in keys]
        if missing:
            raise ValueError(
                f"courses[{i}].profiles: course {course.name!r} names profiles that do not "
                f"exist: {missing}; defined profiles are {sorted(keys)}"
            )


def hub_folders(site: SiteConfig) -> tuple[Path, ...]:
    """The hub's own folders (its state and secrets, its configuration, its logs): never a
    course source, nor inside one."""
    return (Path(site.hub.data_dir), Path(site.deploy.etc_dir), Path(site.deploy.log_dir))


def local_source(source: CourseSource) -> Path | None:
    """The local folder a course source reads (a folder, or a git repository on this host)."""
    if source.path is not None:
        return source.path / source.subdir if source.subdir else source.path
    url = source.git or ""
    if url.startswith(("/", "file:///")):
        return Path(url.removeprefix("file://"))
    return None


def check_course_sources(site: SiteConfig) -> None:
    """No course may read the hub's own folders, or a folder that holds one (the hub reads
    sources as the hub user, who can read its secrets). Links are refused when the source is
    read; this check is on the names the site file gives."""
    for i, course in enumerate(site.courses):
        local = local_source(course.source)
        if local is None:
            continue
        for folder in hub_folders(site):
            if local == folder or folder in local.parents:
                relation = "is inside"
            elif local in folder.parents:
                relation = "holds"
            else:
                continue
            raise ValueError(
                f"courses[{i}].source: {local} {relation} {folder}, one of the hub's own "
                "folders (state and secrets, configuration, logs): it can never be a course "
                "source"
            )


def course_warnings(site: SiteConfig, homes: set[Path] | None = None) -> list[str]:
    """Targets whose students' folders are made in a shared parent, where one student could
    create another's folder first (``homes``: the users' home folders; default from passwd)."""
    if homes is None:
        import pwd

        homes = {Path(pw.pw_dir) for pw in pwd.getpwall()}
    parents = {h.parent for h in homes}
    out = []
    for i, course in enumerate(site.courses):
        template = course.target_template
        if template.startswith("~"):
            continue
        parts = Path(template).parts
        at = next(n for n, part in enumerate(parts) if "{user}" in part)
        shared = Path(*parts[:at])
        if parts[at] == "{user}" and shared in parents:
            continue  # /home/{user}/...: the user's home
        out.append(
            f"courses[{i}].target {template}: each student's folder is made in the shared "
            f"folder {shared}. A student who can create folders there could create another's "
            "first; staging then refuses it. Make sure users cannot create each other's "
            f"folders in {shared}, or create {Path(*parts[: at + 1])} for every student "
            "beforehand (owned by the student)."
        )
    return out
