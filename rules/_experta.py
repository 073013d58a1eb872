"""Import experta on Python >= 3.10.

experta 1.9.4 (the newest release) pins ``frozendict==1.2``, whose one module
subclasses ``collections.Mapping``: an alias Python 3.10 removed in favour of
``collections.abc.Mapping``. We install exactly the versions experta asks for
(so ``pip check`` stays clean) and, only while frozendict's module is first
imported, put that alias back; it is removed again straight after, so no
other code ever sees it. A newer frozendict (2.x) needs no help and is left
alone.
"""

from __future__ import annotations

import collections
import collections.abc
import sys


def _import_frozendict() -> None:
    if "frozendict" in sys.modules or hasattr(collections, "Mapping"):
        return
    collections.Mapping = collections.abc.Mapping  # type: ignore[attr-defined]
    try:
        import frozendict  # noqa: F401  (registers itself in sys.modules)
    finally:
        del collections.Mapping  # type: ignore[attr-defined]


_import_frozendict()

from experta import (  # noqa: E402
    AS,
    MATCH,
    NOT,
    TEST,
    W,
    DefFacts,
    Fact,
    KnowledgeEngine,
    L,
    P,
    Rule,
)

__all__ = ["AS", "L", "MATCH", "NOT", "P", "TEST", "W", "DefFacts", "Fact", "KnowledgeEngine", "Rule"]
