"""Risk rules (rules/risks.py): the pitfalls a scenario runs into."""

from __future__ import annotations

import pytest
from ruletools import RuleCase

from rules.base import Risk

BASE = dict(task="text_classification", dataset_size=5000)
SCRATCH = dict(dataset_size=2_000_000, compute="datacenter_gpu", task_similarity="different")


def risk(pitfall, likelihood):
    return {"pitfall": pitfall, "likelihood": likelihood}


def case(rule, fires, expect, silent):
    return RuleCase(rule, fires, Risk, expect, silent)


CASES = [
    case("risk.forgetting_many_layers_small_data", dict(dataset_size=5000, retain_source="yes"),
             risk("catastrophic_forgetting", "high"), dict(dataset_size=50_000)),
    case("risk.forgetting_full_fine_tuning", dict(dataset_size=50_000, retain_source="yes"),
             risk("catastrophic_forgetting", "medium"), dict(dataset_size=5000)),
    case("risk.forgetting_lora", dict(compute="cpu"), risk("catastrophic_forgetting", "low"),
             dict(compute="consumer_gpu")),
    case("risk.negative_transfer_dissimilar", dict(task_similarity="different", domain_similarity="low"),
             risk("negative_transfer", "high"), dict(task_similarity="related", domain_similarity="medium")),
    case("risk.domain_shift_similarity", dict(domain_similarity="low"), risk("domain_shift", "high"),
             dict(domain_similarity="high")),
    case("risk.domain_shift_tags",
             dict(domain_similarity="high", source_domain="wikipedia,news", target_domain="reviews"),
             risk("domain_shift", "low"),
             dict(domain_similarity="high", source_domain="wikipedia,news", target_domain="News,reviews")),
    case("risk.overfitting_fine_tuning_little_data", dict(dataset_size=5000), risk("overfitting", "medium"),
             dict(dataset_size=50_000)),
    case("risk.overfitting_small_data", dict(dataset_size=500), risk("overfitting", "low"),
             dict(dataset_size=5000)),
    case("risk.underfitting_frozen_features", dict(dataset_size=500, task_similarity="different"),
             risk("underfitting", "medium"), dict(dataset_size=500, task_similarity="related")),
    case("risk.failed_run_small_transformer", dict(task="text_classification"), risk("failed_run", "medium"),
             dict(task="image_classification")),
    case("risk.divergence_from_scratch", SCRATCH, risk("divergence", "medium"), dict(dataset_size=5000)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires(case, rule_fires):
    plan, engine = rule_fires(case.rule, {**BASE, **case.fires}, Risk, **case.expect)
    assert case.expect in [{"pitfall": r["pitfall"], "likelihood": r["likelihood"]} for r in plan["risks"]]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent(case, rule_silent):
    plan, engine = rule_silent(case.rule, {**BASE, **case.silent})


@pytest.mark.parametrize("ts, ds, likelihood", [
    ("different", "medium", "medium"), ("related", "low", "medium"), ("different", "low", "high"),
])
def test_negative_transfer_likelihood(ts, ds, likelihood, consult, facts_dump):
    _, engine = consult(**BASE, task_similarity=ts, domain_similarity=ds)
    got = [f["likelihood"] for f in engine.facts_of(Risk) if f["pitfall"] == "negative_transfer"]
    assert got == [likelihood], facts_dump(engine)


def test_risks_are_ordered_and_mitigations_change_the_plan(consult, kb, facts_dump):
    plan, engine = consult(**BASE, domain_similarity="low", task_similarity="different")
    order = {"high": 0, "medium": 1, "low": 2}
    ranks = [order[r["likelihood"]] for r in plan["risks"]]
    assert ranks == sorted(ranks)
    assert len(plan["risks"]) == len(engine.facts_of(Risk)), facts_dump(engine)
    for r in plan["risks"]:
        assert 1 <= len(r["mitigations"]) <= 3
        for m in r["mitigations"]:
            assert m["fix"] in kb.pitfalls[r["pitfall"]].fixes
            assert m["changes"] and all(c["from"] != c["to"] for c in m["changes"])


@pytest.mark.parametrize("task,size,want", [("image_classification", 5000, "low"),
                                            ("text_classification", 50_000, "low"),
                                            ("text_generation", 20_000, None)])
def test_forgetting_unsaid_for_a_classifier_is_rated_low(task, size, want, consult):
    """Nobody said the source abilities must be kept: a classifier's new head replaces the source's, so
    forgetting is rated low (and says how to raise it); a generative model's rating stands."""
    plan, _ = consult(task=task, dataset_size=size, compute="consumer_gpu", gpu_memory_gb=24)
    said, _ = consult(task=task, dataset_size=size, compute="consumer_gpu", gpu_memory_gb=24, retain_source="yes")
    risk_of = {p["pitfall"]: p for p in plan["risks"]}
    told = {p["pitfall"]: p for p in said["risks"]}
    if want:
        assert risk_of["catastrophic_forgetting"]["likelihood"] == want
        assert "retain_source yes" in risk_of["catastrophic_forgetting"]["why"]["text"]
        if told["catastrophic_forgetting"]["likelihood"] != "low":
            assert "rated low" not in told["catastrophic_forgetting"]["why"]["text"]
    else:
        assert "rated low" not in risk_of["catastrophic_forgetting"]["why"]["text"]


def test_an_adapter_plan_is_not_told_it_trains_many_parameters(consult):
    lora, _ = consult(task="text_classification", dataset_size=3000, compute="cpu")
    ft, _ = consult(task="text_classification", dataset_size=3000, compute="consumer_gpu")
    over = {p["pitfall"]: p for p in lora["risks"]}["overfitting"]
    assert lora["technique"]["choice"] == "lora" and over["likelihood"] == "low"
    assert "many trained parameters" not in over["why"]["text"]
    assert ft["technique"]["choice"] == "fine_tuning"
    assert {p["pitfall"]: p for p in ft["risks"]}["overfitting"]["likelihood"] == "medium"


def test_a_linear_probe_is_never_told_to_raise_its_learning_rate(consult):
    """The probe is fit by L-BFGS: it has no learning rate or epochs to change (inert_fields)."""
    plan, _ = consult(task="text_classification", dataset_size=300, compute="cpu", symptoms=["high_train_loss"])
    assert plan["hyperparameters"]["head"] == "linear"
    fields = {c["field"] for d in plan["diagnoses"] for f in d["fixes"] for c in f["changes"]}
    assert not fields & {"learning_rate", "epochs", "batch_size"}, fields
