"""Selection rules (rules/selection.py): criteria, rejections, ranking."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from knowledge.schema import SPEED_ORDER
from rules.base import Candidate, Criterion, Rejected, TaskFact

BASE = dict(task="text_classification", dataset_size=5000)
IMAGE = dict(task="image_classification", dataset_size=5000)


@dataclass(frozen=True)
class RuleCase:
    rule: str
    fires: dict
    cls: type
    expect: dict
    silent: dict


CASES = [
    RuleCase("selection.criteria_latency_first", {**IMAGE, "deployment": "mobile"}, Criterion,
             {"rank": 1, "name": "model size and inference latency"}, {**IMAGE, "deployment": "server"}),
    RuleCase("selection.criteria_fit_first", {**IMAGE, "deployment": "server"}, Criterion,
             {"rank": 1, "name": "architecture and task fit"}, {**IMAGE, "deployment": "mobile"}),
    RuleCase("selection.reject_closed_weights", BASE, Rejected, {"model": "gpt-4"}, IMAGE),
    RuleCase("selection.reject_too_large_for_device", {**IMAGE, "deployment": "mobile"}, Rejected,
             {"model": "vit-large"}, {**IMAGE, "deployment": "server"}),
    RuleCase("selection.reject_too_slow", {**IMAGE, "deployment": "edge", "latency_ms": 100}, Rejected,
             {"model": "vit-base-16"}, {**IMAGE, "deployment": "edge"}),
    RuleCase("selection.reject_memory", {**BASE, "compute": "consumer_gpu"}, Rejected,
             {"model": "mistral-large-2"}, {**IMAGE, "compute": "consumer_gpu"}),
    RuleCase("selection.reject_cpu_training", {**BASE, "compute": "cpu"}, Rejected,
             {"model": "bert-large"}, {**BASE, "compute": "cpu", "dataset_size": 500}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires(case, rule_fires):
    plan, engine = rule_fires(case.rule, case.fires, case.cls, **case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent(case, rule_silent):
    plan, engine = rule_silent(case.rule, case.silent)


# --- selection.rank_candidates: fires once per consultation; silent without a family


def test_rank_candidates_fires(consult, facts_dump, fired):
    plan, engine = consult(**IMAGE)
    cands = sorted(engine.facts_of(Candidate), key=lambda f: f["rank"])
    assert cands and all(f["rule"] == "selection.rank_candidates" for f in cands), facts_dump(engine)
    assert [f["rank"] for f in cands] == list(range(1, len(cands) + 1)), facts_dump(engine)
    assert fired(plan).count("selection.rank_candidates") == 1
    assert [c["model"] for c in plan["candidates"]] == [f["model"] for f in cands]


def test_rank_candidates_silent_without_a_family(run_without, facts_dump):
    engine = run_without(IMAGE, TaskFact)
    assert not engine.facts_of(Candidate), facts_dump(engine)
    assert "selection.rank_candidates" not in [t["rule"] for t in engine.trace]


def test_rejected_models_are_never_candidates(consult, facts_dump):
    plan, engine = consult(**IMAGE, deployment="mobile", latency_ms=30)
    rejected = {f["model"] for f in engine.facts_of(Rejected)}
    candidates = {f["model"] for f in engine.facts_of(Candidate)}
    assert rejected and candidates and not rejected & candidates, facts_dump(engine)
    assert {r["model"] for r in plan["rejected"]} == rejected


def test_ranking_prefers_the_task_family_then_quality(consult, kb, facts_dump):
    plan, engine = consult(**IMAGE, compute="datacenter_gpu")
    fams = [c["family"] for c in plan["candidates"]]
    # the cnn family (the task's) comes first, other families after
    assert fams == sorted(fams, key=lambda f: f != "cnn"), facts_dump(engine)
    cnn = [c["model"] for c in plan["candidates"] if c["family"] == "cnn"]
    q = [kb.models[m].quality["image_classification"]["value"] for m in cnn]
    assert q == sorted(q, reverse=True), facts_dump(engine)


def test_nothing_fits_offers_the_smallest_model_flagged(consult, kb, facts_dump):
    # 1 ms on a server: every speed class is over budget
    plan, engine = consult(**IMAGE, latency_ms=1)
    cands = engine.facts_of(Candidate)
    assert len(cands) == 1 and cands[0]["meets_constraints"] is False, facts_dump(engine)
    smallest = min((m for m in kb.models.values() if "image_classification" in m.tasks),
                   key=lambda m: m.params)
    assert plan["candidates"][0]["model"] == smallest.id
    assert plan["candidates"][0]["meets_constraints"] is False


@pytest.mark.parametrize("deployment, latency", [("mobile", None), ("mobile", 30), ("edge", 20), ("server", 40)])
def test_candidates_respect_size_and_latency_limits(deployment, latency, consult, kb, facts_dump):
    plan, engine = consult(**IMAGE, deployment=deployment, latency_ms=latency)
    limit = kb.threshold("max_params_by_deployment")[deployment]
    table = kb.threshold("latency_by_speed_ms")[deployment]
    for c in plan["candidates"]:
        assert c["meets_constraints"], facts_dump(engine)
        if limit is not None:
            assert c["params"] <= limit, facts_dump(engine)
        if latency is not None:
            assert table[c["speed"]] <= latency, facts_dump(engine)
    speeds = [SPEED_ORDER[c["speed"]] for c in plan["candidates"]]
    assert speeds, facts_dump(engine)


def test_candidate_why_names_rule_and_model_entry(consult):
    plan, _ = consult(**BASE)
    for c in plan["candidates"]:
        assert c["why"]["rule"] == "selection.rank_candidates"
        assert f"models:{c['model']}" in c["why"]["knowledge"]
