"""Site-file sections for kernels made from Lmod modules, and for the single-user extensions.

``kernels`` says where Lmod and the site's modules are, which modules become which kind of
kernel, and where the generated kernelspecs live. ``extensions`` chooses the JupyterLab
extensions every user gets. Both are read by `hpchub kernels sync` and by the hub.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from .base import Strict, described, safe_path
from .units import duration

MODULE_NAME_PATTERN = described(
    r"^[A-Za-z0-9_][A-Za-z0-9_.+/-]{0,199}$",
    "a module name such as python/3.11: letters, digits and '_.+/-', not starting with '.', '+', '/' or '-'",
)
ModuleName = Annotated[str, StringConstraints(pattern=MODULE_NAME_PATTERN)]
"""An Lmod module name such as ``python/3.11`` or ``gcc``: no spaces, no leading '-'."""

MODULE_GLOB_PATTERN = described(
    r"^[A-Za-z0-9_*?\[][A-Za-z0-9_.+/*?\[\]!-]{0,199}$",
    "a module pattern such as python/*: letters, digits, '_.+/-' and the wildcards '*?[]!'",
)
ModuleGlob = Annotated[str, StringConstraints(pattern=MODULE_GLOB_PATTERN)]
"""A shell-style pattern matched against full module names, e.g. ``python/*``."""


# No ":" or "@": these paths go into PATH-like variables, where ":" separates entries.
SafePath = Annotated[Path, safe_path(r"A-Za-z0-9_./+-", "_ . / + -")]
"""An absolute path that can go into a kernelspec or an environment variable unquoted."""

KIND_LABELS = {"python": "Python", "r": "R", "custom": "Kernel"}
TEMPLATE_FIELDS = ("fullname", "name", "version", "kind", "kind_label", "description")


def check_display_template(template: str) -> str:
    """A display-name template may use only the documented ``{field}`` names, nothing else."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"not a valid template ({err}); write fields as {{name}}") from None
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            raise ValueError(
                f"unknown field {{{field}}} in display_name; allowed: "
                + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
            )
    if "\n" in template or len(template) > 200:
        raise ValueError("display_name must be one line of at most 200 characters")
    return template


class KernelRule(Strict):
    """One admin rule: modules whose full name matches become kernels of one kind."""

    match: ModuleGlob = Field(
        description="Pattern on the full module name, e.g. 'python/*' or 'R/4.*'.",
    )
    exclude: list[ModuleGlob] = Field(
        default_factory=list, description="Patterns of matching modules that get no kernel."
    )
    kind: Literal["python", "r", "custom"] = Field(
        "python",
        description=(
            "python: ipykernel from the module's python3. r: IRkernel from the module's R. "
            "custom: the 'command' given here (e.g. Julia's IJulia)."
        ),
    )
    display_name: Annotated[str, AfterValidator(check_display_template)] = Field(
        "{fullname} ({kind_label})",
        description=(
            "Name shown in the launcher. Fields: {fullname} {name} {version} {kind} "
            "{kind_label} {description}."
        ),
    )
    versions: Literal["all", "latest"] = Field(
        "all", description="all: one kernel per version. latest: only the highest version."
    )
    extra_modules: list[ModuleName] = Field(
        default_factory=list,
        description="Modules loaded before the matched one (e.g. a compiler it needs).",
    )
    command: list[str] | None = Field(
        None,
        description=(
            "kind custom only: the kernel's argv after the modules are loaded; must contain "
            "'{connection_file}'. The first word is looked up on the module's PATH."
        ),
    )
    language: str | None = Field(
        None,
        pattern=described(
            r"^[A-Za-z0-9_+#.-]{1,40}$", "letters, digits and '_+#.-', at most 40 characters"
        ),
        description="kind custom only: the kernel's language (e.g. julia).",
    )
    test_code: str | None = Field(
        None,
        max_length=500,
        description="The line `hpchub kernels test` runs in this kernel (default per kind).",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Variables set in these kernels after the clean-up, before modules load.",
    )

    @model_validator(mode="after")
    def _check(self) -> KernelRule:
        if self.kind == "custom":
            if not self.command or not self.language:
                raise ValueError("kind custom needs both 'command' and 'language'")
            if not any("{connection_file}" in a for a in self.command):
                raise ValueError("command must contain '{connection_file}'")
        elif self.command is not None or self.language is not None:
            raise ValueError(f"'command' and 'language' are only for kind custom, not {self.kind}")
        for arg in self.command or ():
            if "\n" in arg or "\0" in arg:
                raise ValueError("command arguments must be single-line")
        if self.test_code is not None and "\n" in self.test_code:
            raise ValueError("test_code must be a single line")
        check_environment(self.env)
        return self


def check_environment(env: dict[str, str]) -> None:
    """Variable names that are names, values on one line."""
    for key, value in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or "\n" in value or "\0" in value:
            raise ValueError(f"environment entry {key!r} must be NAME: single-line value")


class KernelSettings(Strict):
    """Kernels generated from Lmod modules by `hpchub kernels sync`."""

    modulepath: list[SafePath] = Field(
        default_factory=lambda: [
            Path("/etc/lmod/modules"),
            Path("/usr/share/lmod/lmod/modulefiles"),
        ],
        min_length=1,
        description=(
            "The site MODULEPATH, in order. Kernels, the Lmod panel and sync use exactly this, "
            "whatever users set in their shells."
        ),
    )
    lmod_dir: SafePath = Field(
        Path("/usr/share/lmod/lmod"),
        description="Lmod's installation ($LMOD_PKG): holds libexec/lmod and libexec/spider.",
    )
    shared_dir: SafePath = Field(
        Path("/opt/hpchub/share"),
        description=(
            "Root-owned folder on the shared filesystem that sync fills: jupyter/kernels/ "
            "(on the servers' JUPYTER_PATH), jupyter-config/ (JUPYTER_CONFIG_PATH), git/."
        ),
    )
    name_prefix: str = Field(
        "module-",
        pattern=described(
            r"^[a-z0-9._-]{0,20}$",
            "lower-case letters, digits, '.', '_' and '-', at most 20 characters",
        ),
        description="Prefix of generated kernel names (folder names), e.g. module-python-3.11.",
    )
    base_path: str = Field(
        "/usr/local/bin:/usr/bin:/bin",
        pattern=described(
            r"^/[A-Za-z0-9_./+-]*(:/[A-Za-z0-9_./+-]*)*$",
            "absolute folders joined by ':' (letters, digits and '_./+-')",
        ),
        description="PATH a kernel starts from, before its modules are loaded.",
    )
    base_modules: list[ModuleName] = Field(
        default_factory=list,
        description="Modules loaded first in every kernel (e.g. the site's StdEnv).",
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Variables for Lmod in every kernel and job, e.g. LMOD_PACKAGE_PATH (site hooks) "
            "or LMOD_RC; set after the clean-up, before modules load."
        ),
    )
    rules: list[KernelRule] = Field(
        default_factory=list,
        description="Which modules become kernels; the first matching rule wins.",
    )
    python3_module: ModuleName | None = Field(
        None,
        description=(
            "A module whose kernel also answers to the name 'python3', which most notebooks ask "
            "for; without it, 'python3' is the single-user environment's own Python. It must "
            "be selected by a python rule."
        ),
    )
    error_kernel: bool = Field(
        True,
        description=(
            "When a kernel's modules cannot load, keep a stand-in kernel that shows the reason "
            "on every cell instead of exiting (which Jupyter would restart in a loop)."
        ),
    )
    load_timeout: duration(5, 3600) = Field(  # type: ignore[valid-type]
        "2m", validate_default=True, description="How long a kernel may spend loading its modules."
    )

    @model_validator(mode="after")
    def _check_environment(self) -> KernelSettings:
        check_environment(self.environment)
        return self

    @property
    def lmod_cmd(self) -> Path:
        return self.lmod_dir / "libexec" / "lmod"

    @property
    def spider_cmd(self) -> Path:
        return self.lmod_dir / "libexec" / "spider"

    @property
    def jupyter_data_dir(self) -> Path:
        """The folder put on JUPYTER_PATH (its kernels/ subfolder holds the specs)."""
        return self.shared_dir / "jupyter"

    @property
    def kernels_dir(self) -> Path:
        return self.jupyter_data_dir / "kernels"

    @property
    def jupyter_config_dir(self) -> Path:
        """The folder put on JUPYTER_CONFIG_PATH (extension choices)."""
        return self.shared_dir / "jupyter-config"

    @property
    def git_attributes(self) -> Path:
        return self.shared_dir / "git" / "attributes"

    @property
    def modulepath_text(self) -> str:
        return ":".join(str(p) for p in self.modulepath)


ExtensionName = Literal["lmod", "nbdime", "git", "resource-usage", "slurm", "favorites"]
DEFAULT_EXTENSIONS: tuple[ExtensionName, ...] = (
    "lmod",
    "nbdime",
    "git",
    "resource-usage",
    "slurm",
    "favorites",
)


class ExtensionSettings(Strict):
    """JupyterLab extensions every user gets (installed in the single-user environment)."""

    enabled: list[ExtensionName] = Field(
        default_factory=lambda: list(DEFAULT_EXTENSIONS),
        description=(
            "lmod: the Softwares panel (jupyterlmod). nbdime: notebook diff and merge. "
            "git: the Git panel (jupyterlab-git). resource-usage: memory and CPU of the job. "
            "slurm: the user's own queue and job history (jupyterlab-slurm, as the user). "
            "favorites: favourite folders in the file browser (jupyterlab-favorites). "
            "Installed ones left out here are switched off."
        ),
    )
    nbdime_git_drivers: bool = Field(
        True,
        description=(
            "Make `git diff`/`git merge` use nbdime for *.ipynb in every repository, through "
            "the server's environment (no per-user install)."
        ),
    )
    disabled_lab_plugins: list[str] = Field(
        default_factory=lambda: ["@jupyterlab/extensionmanager-extension"],
        description=(
            "JupyterLab extensions or plugins to switch off for everyone; by default the "
            "extension manager (users cannot install into the root-owned environment)."
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> ExtensionSettings:
        if len(set(self.enabled)) != len(self.enabled):
            raise ValueError(f"enabled lists an extension twice: {self.enabled}")
        for name in self.disabled_lab_plugins:
            if not re.fullmatch(r"@?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?(:[A-Za-z0-9_.-]+)?", name):
                raise ValueError(f"{name!r} is not a JupyterLab extension or plugin id")
        return self
