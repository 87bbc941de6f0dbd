"""Work the single-user server does at start-up for nothing, left out or deferred to first use.

Measured on the testbed (`bench/run`, docs/benchmarks.md, "where the floor goes"), the two
largest items of the stock server's start-up CPU that it never needs to serve:

- ``rfc3987_syntax``, which jsonschema imports (for its optional ``iri`` format check) when
  Jupyter Server's event logger imports jsonschema. At import it compiles about 40 Earley
  parsers with Lark, for a format no Jupyter event schema uses. :func:`defer` puts a stand-in
  module under that name before jsonschema is imported: jsonschema takes ``is_valid_syntax``
  from it, and the real module is imported on the first call (or any other attribute read),
  so an ``iri`` check still gives the real answer.
- ``jupyterlab.labapp`` computes JupyterLab's version when it is imported, through an
  ``AppOptions`` whose default npm registry runs ``node yarn.js config --json``: a Node.js
  process on every server start, for a registry the version does not depend on.
  :func:`import_lab_without_yarn` imports it with Node.js out of sight (``PATH`` without it for
  that import only), so the version is read from JupyterLab's files alone. Builds and the
  extension manager make their own ``AppOptions`` later, with the real ``PATH``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types

DEFERRED = "rfc3987_syntax"


def _real() -> types.ModuleType:
    """The real module: imported now, replacing the stand-in in ``sys.modules``."""
    mod = sys.modules.get(DEFERRED)
    if isinstance(mod, _Deferred):
        del sys.modules[DEFERRED]
    return importlib.import_module(DEFERRED)


class _Deferred(types.ModuleType):
    """Stands for ``rfc3987_syntax`` until something uses it."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # the import system's probes (__path__...): not a use
            raise AttributeError(name)
        return getattr(_real(), name)


def _is_valid_syntax(term: str, value: str) -> bool:
    return _real().is_valid_syntax(term, value)


def defer() -> bool:
    """Install the stand-in, unless the module or jsonschema is already imported (then it is
    too late to save anything). True if it was installed."""
    if DEFERRED in sys.modules or "jsonschema" in sys.modules:
        return False
    if importlib.util.find_spec(DEFERRED) is None:
        return False  # not installed: jsonschema skips the iri check, as it would anyway
    stub = _Deferred(DEFERRED, "hpchub: imported on first use (hpchub.singleuser.lazy)")
    stub.is_valid_syntax = _is_valid_syntax
    sys.modules[DEFERRED] = stub
    return True


@contextlib.contextmanager
def _without_path():
    """No command is found on PATH inside (os.devnull is no folder); restored after."""
    saved = os.environ.get("PATH")
    os.environ["PATH"] = os.devnull
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved


def import_lab_without_yarn() -> bool:
    """Import ``jupyterlab.labapp`` without its import-time ``node yarn.js config`` run.

    Its dependencies are imported first, with the real PATH; only the module's own body (and
    ``jupyterlab.labextensions``, which does the same) runs without one. True if it did so.
    """
    if "jupyterlab.labapp" in sys.modules or importlib.util.find_spec("jupyterlab") is None:
        return False
    importlib.import_module("jupyterlab.commands")  # everything labapp needs, as usual
    with _without_path():
        importlib.import_module("jupyterlab.labapp")
    return True
