"""Imports that Jupyter Server pays for at start-up but rarely uses, deferred to their first use.

Measured on the testbed (`bench/run`, docs/benchmarks.md, "where the floor goes"): of the
single-user server's start-up CPU, the largest single item is ``rfc3987_syntax``, which
jsonschema imports (for its optional ``iri`` format check) when Jupyter Server's event logger
imports jsonschema. At import it compiles about 40 Earley parsers with Lark: about a third of a
second of CPU on an idle core, on every server start, for a format no Jupyter event schema uses.

:func:`defer` puts a stand-in module under that name before jsonschema is imported. jsonschema
takes ``is_valid_syntax`` from it; the real module is imported on the first call (or on any
other attribute read), so an ``iri`` check still gives the real answer.
"""

from __future__ import annotations

import importlib
import importlib.util
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
