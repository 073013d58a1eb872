"""Import experta on Python >= 3.10.

experta 1.9.4 (the newest release) pins ``frozendict==1.2``, whose one module
subclasses ``collections.Mapping``: an alias Python 3.10 removed in favour of
``collections.abc.Mapping``. We install exactly the versions experta asks for
(so ``pip check`` stays clean) and, only while frozendict's module is first
imported, put that alias back; it is removed again straight after, so no
other code ever sees it. A newer frozendict (2.x) needs no help and is left
alone. The same module gets a faster, equivalent ``__eq__`` (see below).
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


def _fast_frozendict_eq() -> None:
    """frozendict 1.2 inherits ``Mapping.__eq__``, which copies both sides into
    new dicts on every comparison; experta compares facts holding frozendicts
    on every agenda update. Compare the wrapped dicts directly (same result)."""
    from frozendict import frozendict

    if getattr(frozendict, "_tlexpert_fast_eq", False) or not hasattr(frozendict(), "_dict"):
        return

    def __eq__(self, other):
        if isinstance(other, frozendict):
            return self._dict == other._dict
        return collections.abc.Mapping.__eq__(self, other)

    frozendict.__eq__ = __eq__
    frozendict._tlexpert_fast_eq = True


_fast_frozendict_eq()

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
from experta.strategies import DepthStrategy  # noqa: E402

__all__ = ["DepthStrategy", "AS", "L", "MATCH", "NOT", "P", "TEST", "W", "DefFacts", "Fact", "KnowledgeEngine", "Rule"]
