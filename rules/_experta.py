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
from experta import watchers as _watchers  # noqa: E402

_INFO = 20  # logging.INFO


def _faster_network_build() -> None:
    """Building the Rete network is most of a consultation's start-up. Two costs in it repeat the
    same work, and both are memoised here without changing what is built:

    - ``Rule.__call__`` calls ``inspect.signature`` each time a rule is copied into disjunctive
      normal form (about 600 calls for 90 functions): the signature of a function never changes.
    - ``wire_rule`` creates a fresh ``functools.singledispatch`` for every rule, so the type lookup
      (an MRO composition, the slow part of ``_find_impl``) starts from an empty cache 90 times for
      the same handful of classes. The replacement resolves a class once per set of registered
      types and reuses the answer; dispatch itself still goes through ``singledispatch``.
    """
    import functools
    import inspect
    import types

    from experta import rule as rule_module
    from experta.matchers.rete import utils as rete_utils

    if getattr(rule_module, "_tlexpert_fast", False):
        return
    rule_module.inspect = types.SimpleNamespace(signature=functools.lru_cache(maxsize=None)(inspect.signature),
                                                Parameter=inspect.Parameter)
    resolved: dict = {}

    def singledispatch(func):
        base = functools.singledispatch(func)

        def wrapper(*args, **kwargs):
            registry = base.registry
            key = (args[0].__class__, tuple(registry))
            registered = resolved.get(key)
            if registered is None:
                impl = base.dispatch(args[0].__class__)
                registered = resolved[key] = next(t for t, f in registry.items() if f is impl)
            return registry[registered](*args, **kwargs)

        wrapper.register = base.register
        wrapper.dispatch = base.dispatch
        wrapper.registry = base.registry
        functools.update_wrapper(wrapper, func)
        return wrapper

    rete_utils.singledispatch = singledispatch
    rule_module._tlexpert_fast = True


def _faster_tokens() -> None:
    """Every fact that moves through the network is wrapped in ``Token``s (about 5,000 per
    consultation), and each one re-checks its arguments with ``assert``s, a generator and an ABC
    ``isinstance``; ``copy`` checks again what was checked when the token was made. The same
    checks, written directly (the same ``TypeError`` on bad input), and a copy that skips them."""
    from collections.abc import Mapping

    from experta.fact import Fact
    from experta.matchers.rete.token import Token

    if getattr(Token, "_tlexpert_fast", False):
        return
    tag_type, make = Token.TagType, tuple.__new__

    def __new__(cls, tag, data, context=None):
        if context is None:
            context = {}
        if not isinstance(tag, tag_type):
            raise TypeError("tag must be of `Token.TagType` type")
        if isinstance(data, Fact):
            data = {data}
        else:
            data = set(data)
            for f in data:
                if not isinstance(f, Fact):
                    raise TypeError("data must be either Fact or iterable of Facts")
        if type(context) is not dict and not isinstance(context, Mapping):
            raise TypeError("context must be a mapping")
        return make(cls, (tag, data, context))

    def copy(self):
        return make(type(self), (self.tag, self.data.copy(), self.context.copy()))

    Token.__new__ = __new__
    Token.copy = copy
    Token._tlexpert_fast = True


def _faster_prepare_rule() -> None:
    """``prepare_rule`` turns each rule into disjunctive normal form (``dnf``, a loop to a fixed
    point), adapts its parts for the network, and runs ``dnf`` over the result again: 74 rules, four
    or more passes each, ~40 ms of every consultation. When the adaptation changed no part (the same
    objects, in the same order: the usual case), the result is the first ``dnf``'s, which is already
    a fixed point, so the second ``dnf`` is skipped; otherwise it runs as before."""
    from experta.matchers.rete import utils as rete_utils
    from experta.conditionalelement import NOT
    from experta.rule import Rule

    if getattr(rete_utils, "_tlexpert_fast_prepare", False):
        return
    dnf, prepare_rule, extract_facts = rete_utils.dnf, rete_utils.prepare_rule, rete_utils.extract_facts
    InitialFact = rete_utils.InitialFact

    def prepare(exp):
        dnf_rule = dnf(exp)
        parts = [prepare_rule(e) for e in dnf_rule]
        prep_rule = dnf_rule.new_conditions(*parts)
        if not prep_rule:
            return prep_rule.new_conditions(InitialFact())
        if isinstance(prep_rule[0], NOT) or len(extract_facts(prep_rule)) == 0:
            return prep_rule.new_conditions(InitialFact(), *prep_rule)
        if len(parts) == len(dnf_rule) and all(a is b for a, b in zip(parts, dnf_rule)):
            return prep_rule  # dnf(prep_rule) == prep_rule: dnf_rule is a fixed point of dnf
        return dnf(prep_rule)

    rete_utils._tlexpert_original_prepare = prepare_rule.registry[Rule]  # kept for the test that compares
    prepare_rule.register(Rule)(prepare)
    rete_utils._tlexpert_fast_prepare = True


def watched() -> bool:
    """A matcher watcher is on (the type test logs its passes at INFO): experta's own paths run."""
    level = _watchers.MATCHER.level or _watchers.MATCH.level
    return bool(level) and level <= _INFO


def memory_nodes(matcher) -> list:
    """The network's nodes that keep a memory, each once (the network never changes after it is built)."""
    from experta.matchers.rete import mixins

    nodes = matcher.__dict__.get("_tlexpert_nodes")
    if nodes is None:
        seen, stack, nodes = set(), [matcher.root_node], []
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                if type(node)._reset is not mixins.NoMemory._reset:
                    nodes.append(node)
                stack.extend(child.node for child in node.children)
        matcher._tlexpert_nodes = nodes
    return nodes


# what a node remembers: a join's two memories, a conflict-set node's matches and its pending changes
MEMORIES = ("memory", "added", "removed", "left_memory", "right_memory")


class Snapshot:
    """An engine's working memory at one moment (the fact list and every node's memories, pending
    activations included), restorable any number of times: facts declared once and propagated once
    (the knowledge every consultation of a task starts from) are then not declared and propagated again.
    Restoring and then declaring more facts leaves the network exactly as declaring all of them in that
    order would; the facts are shared, never changed (a declared fact cannot be)."""

    def __init__(self, engine):
        self.nodes = [(n, {a: getattr(n, a).copy() for a in MEMORIES if a in vars(n)})
                      for n in memory_nodes(engine.matcher)]
        f = engine.facts
        self.facts = (list(f.items()), f.last_index, f.reference_counter.copy(), f.duplication)

    def restore(self, engine) -> None:
        from collections import OrderedDict

        from experta.agenda import Agenda
        from experta.factlist import FactList

        for node, memories in self.nodes:
            for attr, value in memories.items():
                setattr(node, attr, value.copy())
        items, last, refs, dup = self.facts
        facts = FactList()
        OrderedDict.update(facts, items)
        facts.last_index, facts.reference_counter, facts.duplication = last, refs.copy(), dup
        engine.facts, engine.agenda = facts, Agenda()


def _faster_matching() -> None:
    """Five costs of every consultation, each paid hundreds or thousands of times, removed without
    changing what is matched (each is described where it is replaced below):

    - ``Fact.__setitem__`` freezes every value through a ``singledispatch`` (about 1,000 per
      consultation); a str, number, bool or None is already immutable and is stored as it is, and a
      list of them becomes the ``frozenlist`` freeze would make, without a dispatch per item.
    - After each firing ``ReteMatcher.changes`` asks all ~100 conflict-set nodes for their
      activations, each answering with two new sets; only nodes with activations are asked here.
    - A fact is tested before its token is copied; the bus hands it only to tests of its class; the
      reset wipes each node's memory once.
    """
    from experta.fact import Fact
    from experta.matchers.rete import ReteMatcher
    from experta.utils import freeze, frozenlist

    if getattr(Fact, "_tlexpert_fast", False):
        return
    plain = (str, int, float, bool, type(None))
    dict_set = dict.__setitem__

    def __setitem__(self, key, value):
        if self.__factid__ is not None:
            raise RuntimeError("A fact can't be modified after declaration.")
        t = type(value)
        if t in plain:
            dict_set(self, key, value)
        elif t is list and all(type(v) in plain for v in value):  # a rule's basis, a list of names
            dict_set(self, key, frozenlist(value))  # what freeze makes of it, without a dispatch per item
        else:
            dict_set(self, key, freeze(value))

    Fact.__setitem__ = __setitem__
    Fact._tlexpert_fast = True

    def changes(self, adding=None, deleting=None):
        if deleting is not None:
            for deleted in deleting:
                self.root_node.remove(deleted)
        if adding is not None:
            for added in adding:
                self.root_node.add(added)
        added, removed = [], []
        for csn in self._get_conflict_set_nodes():
            if csn.added or csn.removed:
                c_added, c_removed = csn.get_activations()
                added.extend(c_added)
                removed.extend(c_removed)
        return (added, removed)

    ReteMatcher.changes = changes

    # - A fact reaches every test at the top of the network (~4,000 per consultation) and is copied into
    #   a new token before the test, though most fail it (another type, another value). The test depends
    #   on the fact alone, so it runs first and only a fact that passes is copied; a type test is the
    #   comparison itself (its logging call skipped). With a watcher on, experta's own path runs.
    from collections.abc import Mapping

    from experta.matchers.rete.check import TypeCheck
    from experta.matchers.rete.nodes import FeatureTesterNode

    activate = FeatureTesterNode.activate

    def fast_activate(self, token):
        if watched() or len(token.data) != 1:
            return activate(self, token)
        for fact in token.data:
            pass
        matcher = self.matcher
        match = type(fact) == matcher.fact_type if type(matcher) is TypeCheck else matcher(fact)
        if not match:
            return None
        token = token.copy()
        if isinstance(match, Mapping):
            context = token.context
            for key, value in match.items():
                if isinstance(key, tuple):  # a negated condition
                    if key[1] in context and context[key[1]] == value:
                        return False
                else:
                    if context.get(key, value) != value:
                        return False
                    if (False, key) in context and context[(False, key)] == value:
                        return False
            context.update(match)
        for child in self.children:
            child.callback(token)
        return None

    FeatureTesterNode.activate = fast_activate

    # - The bus at the root hands each fact to every test below it (~30), most of them type tests for
    #   other fact classes. Per fact class, the children it can pass are listed once (in their order,
    #   so activations arrive in the same order) and only those are called.
    from experta.matchers.rete.nodes import BusNode
    from experta.matchers.rete.token import Token

    def children_for(bus, fact_type):
        cache = bus.__dict__.setdefault("_tlexpert_by_type", {})
        key = (fact_type, len(bus.children))
        found = cache.get(key)
        if found is None:
            found = cache[key] = [c for c in bus.children
                                  if not (type(c.node) is FeatureTesterNode and type(c.node.matcher) is TypeCheck
                                          and c.node.matcher.fact_type != fact_type)]
        return found

    def bus_send(bus, token, fact):
        children = bus.children if watched() else children_for(bus, type(fact))
        for child in children:
            child.callback(token)

    BusNode.add = lambda self, fact: bus_send(self, Token.valid(fact), fact)
    BusNode.remove = lambda self, fact: bus_send(self, Token.invalid(fact), fact)

    # - Resetting the network walks it recursively from the root, visiting a node once per path to it
    #   (~1,100 visits for ~300 nodes per consultation). Each node with a memory is listed once (the
    #   network never changes after it is built) and its memory wiped directly.
    def reset(self):
        if watched():
            return self.root_node.reset()  # experta's own walk, with its log lines
        for node in memory_nodes(self):
            node._reset()

    ReteMatcher.reset = reset


def _faster_joins() -> None:
    """A join (``OrdinaryMatchNode``) pairs each arriving token with every token in the other memory
    (about 150 pairs per consultation). For each pair experta rebuilds the stored context as a dict, logs
    the pair (at DEBUG, off), rebuilds the arriving token's part of the joined context, and re-checks every
    fact of the joined token. Here the stored context's dict is kept with the stored token, the arriving
    token's part is built once per arrival, and the joined token is made directly from facts already
    checked: the same pairs are tested by the same check and the same tokens reach the same children in
    the same order. With a watcher on, experta's own path runs (its log lines are the point)."""
    from contextlib import suppress

    from experta.matchers.rete.nodes import OrdinaryMatchNode
    from experta.matchers.rete.token import Token

    if getattr(OrdinaryMatchNode, "_tlexpert_fast", False):
        return
    original = OrdinaryMatchNode._OrdinaryMatchNode__activation
    make, valid = tuple.__new__, Token.TagType.VALID

    def stored_context(info) -> dict:
        d = info.__dict__
        ctx = d.get("_ctx")
        if ctx is None:
            ctx = d["_ctx"] = dict(info.context)
        return ctx

    def activation(self, token, branch_memory, matching_memory, is_left=True):
        if watched():
            return original(self, token, branch_memory, matching_memory, is_left)
        if token.tag is valid:
            branch_memory.append(token.to_info())
        else:
            with suppress(ValueError):
                branch_memory.remove(token.to_info())
        if not matching_memory:
            return None
        context, matcher, own = token.context, self.matcher, None
        for info in matching_memory:
            other = stored_context(info)  # read only: the check compares, the joined context copies values
            if is_left:
                match = matcher(context, other)
            else:
                match = matcher(other, context)
            if match:
                if own is None:
                    own = {k: v for k, v in context.items() if isinstance(k, str)}
                joined = own.copy()
                for k, v in other.items():
                    if not isinstance(k, tuple):  # negated values are not needed any further
                        joined[k] = v
                new = make(Token, (token.tag, token.data | info.data, joined))
                for child in self.children:
                    child.callback(new)
        return None

    OrdinaryMatchNode._OrdinaryMatchNode__activation = activation
    OrdinaryMatchNode._tlexpert_fast = True


_faster_network_build()
_faster_tokens()
_faster_prepare_rule()
_faster_matching()
_faster_joins()

__all__ = ["DepthStrategy", "AS", "L", "MATCH", "NOT", "P", "TEST", "W", "DefFacts", "Fact", "KnowledgeEngine", "Rule",
           "Snapshot", "watched"]
