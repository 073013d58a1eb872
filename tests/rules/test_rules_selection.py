"""Selection rules (rules/selection.py): criteria, rejections, ranking."""

from __future__ import annotations

import pytest
from ruletools import RuleCase

from knowledge.schema import SPEED_ORDER
from rules.base import Candidate, Criterion, Rejected, TaskFact

BASE = dict(task="text_classification", dataset_size=5000)
IMAGE = dict(task="image_classification", dataset_size=5000)


CASES = [
    RuleCase("selection.criteria_latency_first", {**IMAGE, "deployment": "mobile"}, Criterion,
             {"rank": 1, "name": "model size and inference latency"}, {**IMAGE, "deployment": "server"}),
    RuleCase("selection.criteria_fit_first", {**IMAGE, "deployment": "server"}, Criterion,
             {"rank": 1, "name": "architecture and task fit"}, {**IMAGE, "deployment": "mobile"}),
    RuleCase("selection.reject_closed_weights", BASE, Rejected, {"model": "gpt-4"}, IMAGE),
    RuleCase("selection.reject_too_large_for_device", {**IMAGE, "deployment": "mobile"}, Rejected,
             {"model": "vit-large"}, {**IMAGE, "deployment": "server"}),
    RuleCase("selection.reject_too_slow", {**IMAGE, "device_class": "raspberry_pi_cpu", "latency_ms": 200},
             Rejected, {"model": "vit-base-16"}, {**IMAGE, "device_class": "raspberry_pi_cpu"}),

    RuleCase("selection.reject_cpu_training", {**BASE, "compute": "cpu"}, Rejected,
             {"model": "bert-large"}, {**BASE, "compute": "cpu", "dataset_size": 500}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires(case, rule_fires):
    plan, engine = rule_fires(case.rule, case.fires, case.cls, **case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent(case, rule_silent):
    plan, engine = rule_silent(case.rule, case.silent)


# --- selection.fit_memory: fires for every model with a preferred technique


def test_fit_memory_fires_and_rejects_what_no_technique_fits(consult, facts_dump):
    from rules.base import Fit

    plan, engine = consult(**BASE, compute="consumer_gpu")
    rej = [f for f in engine.facts_of(Rejected) if f["rule"] == "selection.fit_memory"]
    assert any(f["model"] == "mistral-large-2" for f in rej), facts_dump(engine)
    fits = {f["model"] for f in engine.facts_of(Fit) if f["rule"] == "selection.fit_memory"}
    assert "bert-base" in fits and "mistral-large-2" not in fits, facts_dump(engine)


def test_fit_memory_silent_without_models(run_without, facts_dump):
    from rules.base import Fit, ModelFact

    engine = run_without(BASE, ModelFact)
    assert not engine.facts_of(Fit), facts_dump(engine)
    assert "selection.fit_memory" not in [t["rule"] for t in engine.trace]


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
    bench = kb.tasks["image_classification"].benchmark
    q = [kb.models[m].quality["image_classification"].value for m in cnn
         if kb.models[m].quality.get("image_classification") and
         kb.models[m].quality["image_classification"].metric == bench]
    assert len(q) >= 5 and q == sorted(q, reverse=True), facts_dump(engine)


def test_nothing_fits_offers_the_smallest_model_flagged(consult, kb, facts_dump):
    # 1 ms on a datacenter GPU: a call's own overhead is over budget
    plan, engine = consult(**IMAGE, latency_ms=1)
    cands = engine.facts_of(Candidate)
    assert len(cands) == 1 and cands[0]["meets_constraints"] is False, facts_dump(engine)
    from knowledge.estimates import latency_ms

    dev = kb.devices[plan["device"]["class"]]
    fastest = min((m for m in kb.models.values() if "image_classification" in m.tasks),
                  key=lambda m: (latency_ms(m, dev), m.params))
    assert plan["candidates"][0]["model"] == fastest.id
    assert plan["candidates"][0]["meets_constraints"] is False


@pytest.mark.parametrize("deployment, latency", [("mobile", None), ("mobile", 30), ("edge", 20), ("server", 40)])
def test_candidates_respect_size_and_latency_limits(deployment, latency, consult, kb, facts_dump):
    plan, engine = consult(**IMAGE, deployment=deployment, latency_ms=latency)
    limit = kb.threshold("max_params_by_deployment")[deployment]
    budget = latency if latency is not None else kb.threshold("default_latency_ms")[deployment]
    for c in plan["candidates"]:
        assert c["meets_constraints"], facts_dump(engine)
        if limit is not None:
            assert c["params"] <= limit, facts_dump(engine)
        if budget is not None:
            assert c["latency_ms"] <= budget, facts_dump(engine)
    speeds = [SPEED_ORDER[c["speed"]] for c in plan["candidates"]]
    assert speeds, facts_dump(engine)


def test_candidate_why_names_rule_and_model_entry(consult):
    plan, _ = consult(**BASE)
    for c in plan["candidates"]:
        assert c["why"]["rule"] == "selection.rank_candidates"
        assert f"models:{c['model']}" in c["why"]["knowledge"]


def test_an_instruction_tuned_variant_is_ranked_by_its_base_and_first_for_chat(consult):
    """No MMLU figure of its own no longer sends Qwen2.5-7B-Instruct to the bottom: it is ranked by its
    base model's figure, after the base for plain generation and before it when the target is a chat."""
    plain, _ = consult(task="text_generation", dataset_size=20000, compute="consumer_gpu", gpu_memory_gb=24)
    chat, _ = consult(task="chatbot", dataset_size=20000, compute="consumer_gpu", gpu_memory_gb=24)
    order = [c["model"] for c in plain["candidates"]]
    assert order.index("qwen2.5-7b-instruct") == order.index("qwen2.5-7b") + 1
    assert "base model's" in next(c for c in plain["candidates"] if c["model"] == "qwen2.5-7b-instruct")["why"]["text"]
    assert chat["candidates"][0]["model"] == "qwen2.5-7b-instruct"


def test_a_small_model_on_a_cpu_trains_in_full(consult):
    """LoRA on a CPU saves time; under cpu_full_training_params a model trains in full in minutes, so the
    plan fine-tunes it (and says why); larger models keep LoRA."""
    small, _ = consult(task="text_classification", dataset_size=3000, compute="cpu", latency_ms=30)
    assert small["candidates"][0]["params"] <= 30_000_000 and small["technique"]["choice"] == "fine_tuning"
    assert "trains in full on a CPU" in small["technique"]["why"]["text"]
    large, _ = consult(task="text_classification", dataset_size=3000, compute="cpu")
    assert large["candidates"][0]["params"] > 30_000_000 and large["technique"]["choice"] == "lora"


def test_a_language_the_catalog_has_no_dedicated_model_for_is_said_once(consult):
    ja, _ = consult(task="ner", language="japanese", dataset_size=5000)
    en, _ = consult(task="ner", dataset_size=5000)
    assert len(ja["notes"]) == 1 and "japanese" in ja["notes"][0]
    assert en["notes"] == []


def test_a_domain_the_catalog_has_no_pretrained_backbone_for_is_said_once(consult):
    xray, _ = consult(task="image_classification", dataset_size=400, target_domain=["chest_xray"])
    photos, _ = consult(task="image_classification", dataset_size=400)
    assert len(xray["notes"]) == 1 and "medical" in xray["notes"][0]
    assert photos["notes"] == []
