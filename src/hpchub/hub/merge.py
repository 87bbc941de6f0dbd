"""Put the features' pieces of hub configuration together, in any order.

Each feature returns its own traitlets ``Config``. A key that holds a list of handlers,
services, roles, template folders or hooks is the sum of what the pieces give; a dictionary of
settings is their union; any other key may be set by one piece only. Two pieces that set the
same plain key, or the same entry of a dictionary, differently are a wiring bug, reported here.
"""

from __future__ import annotations

from collections.abc import Iterable

from traitlets.config import Config

ADDED = frozenset(
    {
        ("JupyterHub", "extra_handlers"),
        ("JupyterHub", "template_paths"),
        ("JupyterHub", "services"),
        ("JupyterHub", "load_roles"),
        ("SlurmSpawner", "internal_pre_spawn_hooks"),
    }
)
UNITED = frozenset({("JupyterHub", "tornado_settings"), ("SlurmSpawner", "job_environment")})


class WiringConflict(ValueError):
    """Two pieces set the same key differently."""


def merge(pieces: Iterable[Config]) -> Config:
    """One Config from ``pieces``; the result does not depend on their order."""
    out = Config()
    for piece in pieces:
        for section, values in piece.items():
            for key, value in values.items():
                target = out[section]
                where = (section, key)
                if key not in target:
                    target[key] = list(value) if where in ADDED else value
                elif where in ADDED:
                    target[key] = [*target[key], *value]
                elif where in UNITED:
                    both = dict(target[key])
                    for k, v in value.items():
                        if k in both and both[k] != v:
                            raise WiringConflict(
                                f"{section}.{key}[{k!r}] is set twice: {both[k]!r} and {v!r}"
                            )
                        both[k] = v
                    target[key] = both
                elif target[key] != value:
                    raise WiringConflict(
                        f"{section}.{key} is set twice: {target[key]!r} and {value!r}"
                    )
    return out
