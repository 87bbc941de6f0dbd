"""The single-user servers' shared Jupyter config: which extensions run, nbdime's git drivers.

Pure functions from the site file to file contents and environment variables; `hpchub kernels
sync` writes the files, the hub puts the variables into every job.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config.files import FileBrowserSettings
from ..config.kernels import DEFAULT_EXTENSIONS, ExtensionSettings, KernelSettings
from ..core.templates import render

# Our short names -> (server extension module or None, JupyterLab extension package).
EXTENSIONS = {
    "lmod": ("jupyterlmod", "@cmd-ntrf/jupyterlab-lmod"),
    "nbdime": ("nbdime", "nbdime-jupyterlab"),
    "git": ("jupyterlab_git", "@jupyterlab/git"),
    "resource-usage": ("jupyter_resource_usage", "@jupyter-server/resource-usage"),
    "slurm": ("jupyterlab_slurm", "jupyterlab-slurm"),
    "favorites": (None, "@jlab-enhanced/favorites"),
}
assert set(EXTENSIONS) == set(DEFAULT_EXTENSIONS)

GIT_ATTRIBUTES = "*.ipynb\tdiff=jupyternotebook merge=jupyternotebook\n"


def config_files(
    ext: ExtensionSettings, files: FileBrowserSettings, slurm_bin: Path
) -> dict[str, str]:
    """Files of the shared JUPYTER_CONFIG_PATH folder, by path relative to it."""
    server: dict = {"ServerApp": {"jpserver_extensions": {}}}
    disabled: dict[str, bool] = {}
    for short, (module, lab) in EXTENSIONS.items():
        on = short in ext.enabled
        if module:
            server["ServerApp"]["jpserver_extensions"][module] = on
        if not on:
            disabled[lab] = True
    if "slurm" in ext.enabled:
        # The site's Slurm commands, not whatever the user's PATH finds first.
        server["SlurmCommandPaths"] = {
            f"{cmd}_path": str(slurm_bin / cmd)
            for cmd in ("squeue", "scancel", "scontrol", "sbatch", "sacct")
        }
    for plugin in ext.disabled_lab_plugins:
        disabled[plugin] = True
    files_out = {
        "jupyter_server_config.d/hpchub-extensions.json": json.dumps(server, indent=2) + "\n",
        "labconfig/page_config.json": json.dumps({"disabledExtensions": disabled}, indent=2) + "\n",
        "jupyter_server_config.py": render("kernels/jupyter_server_config.py.j2"),
    }
    # jupyterlab_server layers labconfig/default_setting_overrides.json from every
    # JUPYTER_CONFIG_PATH folder under the users' own settings. Always written (maybe empty),
    # so that favourites removed from the site file disappear.
    overrides = files.lab_setting_overrides() if "favorites" in ext.enabled else {}
    files_out["labconfig/default_setting_overrides.json"] = json.dumps(overrides, indent=2) + "\n"
    return files_out


def git_environment(prefix_bin: str, kernels: KernelSettings) -> dict[str, str]:
    """nbdime's diff and merge drivers through git's GIT_CONFIG_* variables (git >= 2.31).

    They apply to every git command in the user's server, in any repository, and need no
    per-user install. Command-scope config overrides the user's core.attributesFile inside
    Jupyter only; the user's own file keeps working in their shells.
    """
    pairs = [
        ("diff.jupyternotebook.command", f"{prefix_bin}/git-nbdiffdriver diff"),
        ("merge.jupyternotebook.driver", f"{prefix_bin}/git-nbmergedriver merge %O %A %B %L %P"),
        ("merge.jupyternotebook.name", "jupyter notebook merge driver"),
        ("difftool.nbdime.cmd", f'{prefix_bin}/git-nbdifftool diff "$LOCAL" "$REMOTE" "$BASE"'),
        (
            "mergetool.nbdime.cmd",
            f'{prefix_bin}/git-nbmergetool merge "$BASE" "$LOCAL" "$REMOTE" "$MERGED"',
        ),
        ("core.attributesFile", str(kernels.git_attributes)),
    ]
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for i, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def job_environment(
    kernels: KernelSettings, ext: ExtensionSettings, prefix: Path, existing: dict[str, str]
) -> dict[str, str]:
    """The variables every single-user job gets for kernels, the Lmod panel and nbdime."""
    env = dict(existing)

    def prepend(name: str, value: str) -> None:
        old = env.get(name, "")
        env[name] = value + (":" + old if old and old != value else "")

    prepend("JUPYTER_PATH", str(kernels.jupyter_data_dir))
    prepend("JUPYTER_CONFIG_PATH", str(kernels.jupyter_config_dir))
    # The Lmod panel (jupyterlmod) and users' terminals see the site's modules.
    env.update(kernels.environment)
    env["MODULEPATH"] = kernels.modulepath_text
    env["LMOD_CMD"] = str(kernels.lmod_cmd)
    env["LMOD_PKG"] = str(kernels.lmod_dir)
    env["LMOD_DIR"] = str(kernels.lmod_dir / "libexec")
    if "nbdime" in ext.enabled and ext.nbdime_git_drivers:
        env.update(git_environment(str(prefix / "bin"), kernels))
    return env
