"""The engine base: fact types, the ``rule`` decorator with ids, and the trace.

Every rule has an id (``topic.name``) and a one-line docstring (its condition
and its conclusion). A rule concludes through ``self.conclude(fact)``, which
declares the fact and records, for the explanation trace, which rule fired,
which facts it matched, and which earlier rules produced those facts (the
"how?" chain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from rules._experta import DefFacts, DepthStrategy, Fact, KnowledgeEngine, Rule


# --- facts: knowledge entering the engine (via @DefFacts) ...
class Scenario(Fact):
    """The normalized scenario (one per consultation)."""


class ModelFact(Fact):
    """A catalog model that fits the scenario's task."""


class Threshold(Fact):
    """Every threshold of knowledge/thresholds.yaml, one field per threshold id."""


class TaskFact(Fact):
    """The scenario's task entry: id, family, modality, generative."""


class TechniqueFact(Fact):
    """A technique entry: id, memory_bytes_per_param, trains_backbone."""


class SymptomSeen(Fact):
    """A symptom reported by the user or measured by the harness: id, evidence."""


class Ambiguity(Fact):
    """text, a, b (pitfall ids, sorted), symptoms, scores: one description that fits two pitfalls about equally."""


class DistinctionFact(Fact):
    """id, a, b (pitfall ids, sorted): a knowledge-base question that tells pitfalls a and b apart."""


class EmpiricalScore(Fact):
    """A catalog model scored on the user's data by rank-models: model, rank, mean_rank, scores."""


class EmpiricalAgreement(Fact):
    """How far the transferability estimators agree: kendall_w (None: one estimator), estimators."""


# ... and conclusions (each carries `rule` and `basis`: knowledge ids)
class SizeClass(Fact):
    """small | medium | large | huge (from the dataset_size thresholds)."""


class ComputeLimited(Fact):
    """value: bool; reason."""


class MemoryBudget(Fact):
    """gb: memory available for training."""


class LatencyCritical(Fact):
    """Real-time use: size and latency come first."""


class DeployDevice(Fact):
    """id: the device class the model is deployed on (stated or assumed)."""


class LatencyBudget(Fact):
    """ms: the latency budget per input (stated or assumed); absent when there is none."""


class Language(Fact):
    """value: the language of the text inputs (stated or assumed)."""


class Assumed(Fact):
    """field, value: a scenario value the plan assumed because it was not given."""


class Preferred(Fact):
    """value: the technique the data and compute call for, before memory is checked per model."""


class Fit(Fact):
    """model, technique, gb: the technique this model is trained with, and its estimated memory."""


class Family(Fact):
    """value: the architecture family chosen for the task."""


class Criterion(Fact):
    """A model-selection criterion, rank 1 first."""


class Approach(Fact):
    """value: transfer | full_training."""


class Technique(Fact):
    """value: a technique id; updates, pretrained, quantized: its properties (rules match these, not
    names)."""


def technique_fact(kb, technique: str, why: str) -> Technique:
    """The decision fact for ``technique``, carrying the knowledge base's properties of it."""
    t = kb.techniques[technique]
    return Technique(value=technique, updates=t.updates, pretrained=t.pretrained, quantized=t.quantized_base,
                     why=why)


class Rejected(Fact):
    """model, reason."""


class Candidate(Fact):
    """model, rank, meets_constraints."""


class Hyper(Fact):
    """name, value: one hyperparameter (list-valued ones may have several parts)."""


class Protocol(Fact):
    """text: how the data are split to judge the result."""


class Seeds(Fact):
    """value, why: how many seeds the evaluation runs, by the cost of one run."""


class RunModel(Fact):
    """model, available: the catalog model ``tlexpert run`` loads for this plan."""


class Recipe(Fact):
    """technique, values: the resolved hyperparameters of a core technique the plan did not choose."""


class Risk(Fact):
    """pitfall, likelihood, mitigations."""


class Evidence(Fact):
    """pitfall, symptom, weight: one symptom's support for a pitfall."""


class Diagnosis(Fact):
    """pitfall, confidence, evidence, fixes."""


class Clarify(Fact):
    """distinction, text, pitfalls, symptoms: the question to ask before trusting either diagnosis."""


class EmpiricalComparison(Fact):
    """The scored candidates in the catalog's order and in the measured order."""


class EmpiricalVerdict(Fact):
    """verdict (overturns | confirms | inconclusive | best_rejected), order, why."""


class Done(Fact):
    """A marker that a once-only step (ranking, diagnosis of one pitfall) ran."""


CONCLUSION_FIELDS_HIDDEN = ("rule", "basis", "why")


def describe(fact: Fact) -> str:
    """A short, stable text form of a fact for traces: ``Technique(value=lora)``."""
    items = []
    for k, v in fact.as_dict().items():
        if k in CONCLUSION_FIELDS_HIDDEN or str(k).startswith("_"):
            continue
        if isinstance(v, (list, tuple)) and len(v) > 4:
            v = f"[{len(v)} items]"
        items.append(f"{k}={_plain(v)}")
    return f"{type(fact).__name__}({', '.join(items)})"


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict) or hasattr(v, "items"):
        return {k: _plain(x) for k, x in v.items()}
    return v


def unfreeze(v: Any) -> Any:
    """experta freezes lists and dicts in facts; give plain Python back."""
    if isinstance(v, (list, tuple)):
        return [unfreeze(x) for x in v]
    if hasattr(v, "items"):
        return {k: unfreeze(x) for k, x in v.items()}
    return v


@dataclass(frozen=True)
class RuleInfo:
    id: str
    topic: str
    doc: str
    basis: tuple[str, ...]
    salience: int


RULES: dict[str, RuleInfo] = {}


class IdentifiedRule(Rule):
    """A Rule compared by identity: each rule object is unique, and experta's
    structural comparison of patterns dominated agenda updates (~2x slower)."""

    __eq__ = object.__eq__
    __hash__ = object.__hash__


def rule(rule_id: str, *patterns, salience: int = 0, basis: Iterable[str] = ()):
    """An experta ``Rule`` with an id and the knowledge entries it rests on.

    ``basis`` names knowledge ids (``section:id``) the rule always rests on;
    a rule adds the entries it looked up at fire time through ``conclude``.
    """

    def decorate(fn):
        if rule_id in RULES:
            raise ValueError(f"duplicate rule id {rule_id}")
        doc = (fn.__doc__ or "").strip().splitlines()
        if not doc:
            raise ValueError(f"rule {rule_id} needs a one-line docstring")
        RULES[rule_id] = RuleInfo(
            rule_id, rule_id.split(".")[0], doc[0], tuple(basis), salience
        )
        fn.rule_id = rule_id
        return IdentifiedRule(*patterns, salience=salience)(fn)

    return decorate


class DeterministicStrategy(DepthStrategy):
    """experta's depth strategy with ties broken by rule id, not by object order.

    Activations of equal salience over the same facts otherwise fire in an
    order that depends on hashing, so the trace could differ between runs."""

    def get_key(self, activation):
        # DepthStrategy's key (salience, fact ids newest first), uncached: its lru_cache
        # compared activations fact by fact on every lookup
        facts = sorted((f["__factid__"] for f in activation.facts), reverse=True)
        return (activation.rule.salience, facts, getattr(activation.rule, "rule_id", ""))


class TracingEngine(KnowledgeEngine):
    """A KnowledgeEngine that records which rule concluded what, from which facts."""

    __strategy__ = DeterministicStrategy

    def __init__(self):
        super().__init__()
        self.trace: list[dict] = []
        self._producer: dict[int, str] = {}
        self._firing = None

    def new_trace(self) -> None:
        """An empty trace for the consultation about to run."""
        self.trace = []
        self._producer = {}
        self._firing = None

    def reset(self, **kwargs):
        self.new_trace()
        super().reset(**kwargs)

    def run(self, steps=float("inf")):
        """experta's run loop, keeping the activation being fired (for the trace)."""
        self.running = True
        while steps > 0 and self.running:
            added, removed = self.get_activations()
            self.strategy.update_agenda(self.agenda, added, removed)
            activation = self.agenda.get_next()
            if activation is None:
                break
            steps -= 1
            self._firing = activation
            activation.rule(
                self,
                **{k: v for k, v in activation.context.items() if not k.startswith("__")},
            )
        self._firing = None
        self.running = False

    def conclude(self, fact: Fact, basis: Iterable[str] = ()) -> Fact:
        """Declare a conclusion of the rule now firing and record it in the trace."""
        act = self._firing
        rule_id = getattr(act.rule, "rule_id", act.rule.__name__) if act else "input"
        static = RULES[rule_id].basis if rule_id in RULES else ()
        fact["rule"] = rule_id
        fact["basis"] = list(dict.fromkeys([*static, *basis]))
        declared = self.declare(fact)
        if declared is not None:
            self._producer.setdefault(declared.__factid__, rule_id)
        if act is not None:  # kept as objects; formatted only when the trace is asked for
            if not self.trace or self.trace[-1]["_act"] is not act:
                self.trace.append({"_act": act, "rule": rule_id, "concluded": []})
            self.trace[-1]["concluded"].append(fact)
        return declared

    def facts_of(self, cls: type) -> list[Fact]:
        """The facts of class ``cls`` in working memory, in the order declared. Facts are never retracted
        here, so each class's list is kept with the fact list and extended by the facts declared since it
        was last asked for (rules ask about 80 times per consultation; 6% of one, measured interleaved)."""
        facts = self.facts
        if len(facts) != facts.last_index:  # a fact was retracted: the kept lists may hold it
            return [f for f in facts.values() if type(f) is cls]
        index = facts.__dict__.setdefault("_tlexpert_by_class", {})
        seen, found = index.get(cls, (0, []))
        if seen < facts.last_index:
            get = facts.get
            found = found + [f for i in range(seen, facts.last_index) if type(f := get(i)) is cls]
            index[cls] = (facts.last_index, found)
        return list(found)

    def public_trace(self) -> list[dict]:
        """The trace: each step's rule, the facts it matched, the rules that produced
        those facts ("after": the how-chain) and what it concluded."""
        out = []
        for step, t in enumerate(self.trace, 1):
            matched = sorted((f for f in t["_act"].facts if not isinstance(f, Threshold)),
                             key=lambda f: f.__factid__)
            after = {self._producer[f.__factid__] for f in matched if f.__factid__ in self._producer}
            out.append({"step": step, "rule": t["rule"], "matched": [describe(f) for f in matched],
                        "after": sorted(after - {t["rule"]}),
                        "concluded": [describe(f) for f in t["concluded"]]})
        return out


__all__ = [
    "DefFacts",
    "RULES",
    "RuleInfo",
    "TracingEngine",
    "describe",
    "rule",
    "unfreeze",
]


def benchmark_of(task, scenario: dict) -> str:
    """The benchmark a task's candidates are ranked by: the multilingual one for non-English text."""
    lang = scenario.get("language")
    if lang not in (None, "english") and task.benchmark_multilingual:
        return task.benchmark_multilingual
    return task.benchmark


def scenario_words(scenario: dict) -> set:
    """The words of the task as the user spelled it and of the target_domain tags, lower-case, whole and
    split at '_', '-' and spaces: the cues some knowledge entries are conditioned on."""
    said = [str(r.get("given", "")) for r in scenario.get("read_as") or () if r.get("field") == "task"]
    tags = [str(t) for t in [*said, *(scenario.get("target_domain") or ())]]
    words = {t.lower().replace("-", "_").replace(" ", "_") for t in tags}
    return words | {w for t in words for w in t.split("_") if w}


def task_metrics(task, scenario: dict) -> list[str]:
    """The task's metrics for this scenario: every plain one, and each conditional one whose cues it names."""
    words = scenario_words(scenario)
    out = []
    for m in task.metrics:
        if isinstance(m, str):
            out.append(m)
        elif words & {str(w).lower() for w in m.get("when") or ()}:
            out.append(str(m["text"]))
    return out


def frozen_figure(model, task):
    """A model's figure on the task's frozen-feature benchmark (``Task.benchmark_frozen``), or one that
    counts as such (``benchmark_frozen_equivalent``); None when it has neither."""
    if not task.benchmark_frozen:
        return None
    for q in (model.frozen_quality.get(task.id), model.quality.get(task.id)):
        if q is not None and q.metric in (task.benchmark_frozen, task.benchmark_frozen_equivalent):
            return q
    return None


def sequence_tokens(kb, scenario, generative: bool = False, training: bool = False) -> int:
    """Tokens per text input: the scenario's ``sequence_length``, else the knowledge base's default
    (``sequence_tokens``; ``generation_sequence_tokens`` for training a generative task)."""
    given = scenario.get("sequence_length") if scenario is not None else None
    if given:
        return int(given)
    return int(kb.threshold("generation_sequence_tokens" if generative and training else "sequence_tokens"))
