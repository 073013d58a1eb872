"""The expert system: topic rule mixins combined into one experta engine.

    engine = TransferEngine(kb)
    plan = engine.consult(scenario)          # scenario: output of rules.scenario.normalize

The engine is built once and reused: ``consult`` resets working memory, brings the knowledge in,
declares the scenario and runs. The knowledge a consultation starts from depends only on the task and
its benchmark (the thresholds, the techniques, the task's catalog models): it is declared and propagated
through the network once per task and benchmark, kept as a ``Snapshot``, and restored on each later
consultation; the scenario's facts are declared after it, as they always were (the same facts, the same
order, the same ids: the plans are identical, see BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Iterable, Optional

from rules._experta import DefFacts, Snapshot, watched
from rules.base import (
    Ambiguity,
    benchmark_of,
    frozen_figure,
    DistinctionFact,
    EmpiricalAgreement,
    EmpiricalScore,
    Scenario,
    SymptomSeen,
    TaskFact,
    TechniqueFact,
    Threshold,
    ModelFact,
    TracingEngine,
)
from rules.diagnosis import DiagnosisRules
from rules.empirical import EmpiricalRules
from rules.contract import Plan  # noqa: F401  (the type consult returns)
from rules.plan import build_plan
from rules.profile import ProfileRules
from rules.risks import RiskRules
from rules.selection import SelectionRules
from rules.strategy import StrategyRules
from rules.evaluation import EvaluationRules
from rules.tuning import TuningRules


class TransferEngine(
    ProfileRules,
    StrategyRules,
    SelectionRules,
    EmpiricalRules,
    TuningRules,
    EvaluationRules,
    RiskRules,
    DiagnosisRules,
    TracingEngine,
):
    """Transfer-learning decisions: scenario (+ symptoms) -> plan (+ diagnoses)."""

    def __init__(self, kb):
        self.kb = kb
        self._snapshots: dict[tuple, Snapshot] = {}
        super().__init__()

    @DefFacts()
    def knowledge(self, scenario: dict, measured: Iterable[dict] = (), readings: Iterable = (),
                  ranking: Optional[dict] = None):
        """The knowledge relevant to this scenario, as facts (experta's own reset path: with a watcher on)."""
        yield from self.static_facts(scenario)
        yield from self.scenario_facts(scenario, measured, readings, ranking)

    def static_key(self, scenario: dict) -> tuple:
        """What the static facts depend on: the task, and the benchmark its models are ranked on."""
        task = self.kb.tasks[scenario["task"]]
        return task.id, benchmark_of(task, scenario)

    def static_facts(self, scenario: dict):
        """The thresholds, the task, the core techniques and the task's catalog models (``static_key``)."""
        yield Threshold(**{tid: th.value for tid, th in self.kb.sections["thresholds"].items()})
        task = self.kb.tasks[scenario["task"]]
        yield TaskFact(id=task.id, family=task.family.value, modality=task.modality.value,
                       generative=task.generative, dense=task.dense)
        for tech in self.kb.techniques.values():
            if tech.kind == "core":  # qlora included
                yield TechniqueFact(id=tech.id, memory_bytes_per_param=tech.memory_bytes_per_param,
                                    trains_backbone=tech.trains_backbone)
        for m in self.kb.models.values():
            if task.id not in m.tasks:
                continue
            q = m.quality.get(task.id)
            ranked = q is not None and q.metric == benchmark_of(task, scenario)  # compared only within a benchmark
            base = self.kb.models.get(m.base_model) if m.base_model else None
            if not ranked and base is not None:  # an instruction-tuned variant is ranked by its base's figure
                bq = base.quality.get(task.id)
                if bq is not None and bq.metric == benchmark_of(task, scenario):
                    q, ranked = bq, True
            frozen = frozen_figure(m, task)
            yield ModelFact(id=m.id, family=m.family.value, params=m.params, gflops=m.gflops, per=m.per, input=m.input,
                            languages=list(m.languages), open_weights=m.open_weights, offline=m.offline,
                            best_use=m.best_use, quality=q.value if ranked else None,
                            quality_metric=q.metric if ranked else None,
                            frozen_quality=frozen.value if frozen is not None else None,
                            embedding=m.embedding)

    def scenario_facts(self, scenario: dict, measured: Iterable[dict] = (), readings: Iterable = (),
                       ranking: Optional[dict] = None):
        """The scenario, the symptoms seen (and how the user's words were read), a measured ranking."""
        yield Scenario(**{k: v for k, v in scenario.items() if k != "expect"})
        said, pairs = {}, set()
        for r in readings:
            for m in r.matches:
                prob = r.probability(m.pitfall) if hasattr(r, "probability") else None
                said.setdefault(m.symptom, {"reported": "by the user", "text": r.text, "read": m.method,
                                            **({"similarity": m.score} if m.method == "meaning" else {}),
                                            # the evidence counts as much as the reading is sure of it
                                            **({"probability": prob, "strength": prob} if prob is not None else {})})
            for amb in r.ambiguous:
                a, b = sorted(amb["pitfalls"])
                pairs.add((a, b))
                order = [amb["pitfalls"].index(a), amb["pitfalls"].index(b)]
                yield Ambiguity(text=r.text, a=a, b=b, symptoms=[amb["symptoms"][i] for i in order],
                                scores=[amb["scores"][i] for i in order])
        for did, d in self.kb.sections.get("distinctions", {}).items():
            a, b = sorted(p.value for p in d.pitfalls)
            if (a, b) in pairs:  # a distinction is asked about only for a description read both ways
                yield DistinctionFact(id=did, a=a, b=b)
        seen = set()
        for sid in scenario.get("symptoms") or ():
            seen.add(sid)
            yield SymptomSeen(id=sid, evidence=said.get(sid) or {"reported": "by the user"})
        for m in measured:
            if m["id"] not in seen:
                seen.add(m["id"])
                yield SymptomSeen(id=m["id"], evidence=m.get("evidence") or {})
        if ranking is not None:
            yield from ranking_facts(ranking, self.kb)

    def reset(self, **kwargs):
        """Working memory for one consultation: the static knowledge restored from its snapshot (declared
        and propagated the first time), then the scenario's facts declared and propagated; the agenda holds
        every activation, as experta's reset leaves it. With a matcher watcher on, experta's own reset runs
        (its log lines are the point)."""
        if watched():
            return super().reset(**kwargs)
        self.new_trace()
        scenario = kwargs["scenario"]
        key = self.static_key(scenario)
        snap = self._snapshots.get(key)
        if snap is None:
            from experta.agenda import Agenda
            from experta.fact import InitialFact
            from experta.factlist import FactList

            self.agenda, self.facts = Agenda(), FactList()
            self.matcher.reset()
            for fact in (InitialFact(), *self.static_facts(scenario)):
                self.facts.declare(fact)
            for fact in self.facts.changes[0]:
                self.matcher.root_node.add(fact)  # propagated; its activations stay pending in the network
            snap = self._snapshots[key] = Snapshot(self)
        snap.restore(self)
        for fact in self.scenario_facts(scenario, kwargs.get("measured") or (), kwargs.get("readings") or (),
                                        kwargs.get("ranking")):
            self.facts.declare(fact)
        added, removed = self.get_activations()
        self.strategy.update_agenda(self.agenda, added, removed)
        self.running = False

    def consult(self, scenario: dict, measured: Optional[Iterable[dict]] = None,
                trace: bool = True, readings: Optional[Iterable] = None,
                ranking: Optional[dict] = None) -> "Plan":
        """One consultation: the plan for ``scenario`` (with diagnoses of any symptoms).

        ``readings`` (``rules.reader.symptoms.Reading``) say how free-text symptoms were read;
        they add the user's words to the evidence and the ambiguities to ask about.
        Returns the typed, validated ``rules.contract.Plan`` (its JSON form: ``plan.to_dict()``).
        ``trace=False`` leaves the rule trace out (``plan.trace == []``), for batches.
        ``ranking``: a measured ranking (``harness.ranking.rank.rank_models``' result) to weigh
        against the catalog's order; the plan then has ``empirical_ranking``."""
        readings = list(readings or ())
        self.reset(scenario=scenario, measured=list(measured or ()), readings=readings, ranking=ranking)
        self.run()
        return build_plan(self, scenario, trace, readings, ranking)


def ranking_facts(ranking: dict, kb):
    """Facts from a measured ranking: a score per scored catalog model, and the agreement."""
    rows = [r for r in ranking.get("rows", []) if r.get("status") == "ok" and r.get("rank") is not None]
    for r in rows:
        mid = r.get("catalog_id")
        if mid and mid in kb.models:
            yield EmpiricalScore(model=mid, rank=int(r["rank"]), mean_rank=float(r["mean_rank"]),
                                 scores=dict(r.get("scores") or {}))
    agreement = ranking.get("agreement") or {}
    w = agreement.get("kendall_w")
    yield EmpiricalAgreement(kendall_w=None if w is None else float(w),
                             estimators=list(agreement.get("estimators") or []))


_ENGINES: dict[int, TransferEngine] = {}


def get_engine(kb) -> TransferEngine:
    """One engine per knowledge base per process (building it compiles the Rete network)."""
    eng = _ENGINES.get(id(kb))
    if eng is None:
        eng = _ENGINES[id(kb)] = TransferEngine(kb)
    return eng
