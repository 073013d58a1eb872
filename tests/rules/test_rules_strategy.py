"""Strategy rules (rules/strategy.py): architecture family, approach, technique."""

from __future__ import annotations

import pytest
from ruletools import RuleCase

from rules.base import Approach, Family, Preferred, TaskFact, Technique  # noqa: F401

BASE = dict(task="text_classification", dataset_size=5000)
SCRATCH = dict(dataset_size=2_000_000, compute="datacenter_gpu", task_similarity="different")


CASES = [
    RuleCase("approach.full_training", SCRATCH, Approach, {"value": "full_training"},
             {**SCRATCH, "compute": "consumer_gpu"}),
    RuleCase("approach.transfer", dict(dataset_size=5000), Approach, {"value": "transfer"}, SCRATCH),
    RuleCase("technique.from_scratch", SCRATCH, Preferred, {"value": "from_scratch"},
             dict(dataset_size=2_000_000, compute="datacenter_gpu", task_similarity="same")),
    RuleCase("technique.feature_extraction", dict(dataset_size=500), Preferred,
             {"value": "feature_extraction"}, dict(dataset_size=5000)),
    RuleCase("technique.lora", dict(compute="cpu"), Preferred, {"value": "lora"},
             dict(compute="consumer_gpu")),
    RuleCase("technique.fine_tuning", dict(compute="consumer_gpu"), Preferred,
             {"value": "fine_tuning"}, dict(compute="cpu")),
    RuleCase("technique.fine_tuning_small_dense", dict(task="semantic_segmentation", dataset_size=500), Preferred,
             {"value": "fine_tuning"}, dict(task="image_classification", dataset_size=500)),
    RuleCase("technique.lora_small_generative", dict(task="text_generation", dataset_size=500), Preferred,
             {"value": "lora"}, dict(dataset_size=500)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires(case, rule_fires):
    plan, engine = rule_fires(case.rule, {**BASE, **case.fires}, case.cls, **case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent(case, rule_silent):
    plan, engine = rule_silent(case.rule, {**BASE, **case.silent})


# --- architecture.family_from_task fires for every task; it is silent only
# when working memory holds no task entry.


@pytest.mark.parametrize("task, family", [
    ("image_classification", "cnn"), ("object_detection", "cnn"),
    ("text_classification", "nlp_transformer"), ("text_generation", "nlp_transformer"),
    ("question_answering", "nlp_transformer"), ("image_captioning", "multimodal"),
    ("vision_language", "multimodal"),
])
def test_architecture_family_from_task_fires(task, family, consult, facts_dump, fired):
    plan, engine = consult(task=task, dataset_size=5000)
    families = [(f["value"], f["rule"]) for f in engine.facts_of(Family)]
    assert families == [(family, "architecture.family_from_task")], facts_dump(engine)
    assert "architecture.family_from_task" in fired(plan)
    assert plan["architecture"]["family"] == family


def test_architecture_family_from_task_silent_without_a_task_entry(run_without, facts_dump):
    engine = run_without(BASE, TaskFact)
    assert not engine.facts_of(Family), facts_dump(engine)
    assert "architecture.family_from_task" not in [t["rule"] for t in engine.trace]


# --- the course's technique table, cell by cell


@pytest.mark.parametrize("fields, technique", [
    (dict(dataset_size=200, task_similarity="same"), "feature_extraction"),      # limited data, similar task
    (dict(dataset_size=200, task_similarity="different"), "feature_extraction"),
    (dict(dataset_size=20_000, task_similarity="related"), "fine_tuning"),       # moderately different, enough data
    (dict(dataset_size=20_000, compute="cpu"), "lora"),                           # adaptation, limited compute
    (dict(dataset_size=20_000, compute="consumer_gpu", gpu_memory_gb=6), "lora"),
    (dict(dataset_size=2_000_000, compute="tpu", domain_similarity="low"), "from_scratch"),
    (dict(dataset_size=2_000_000, compute="tpu", task_similarity="same", domain_similarity="high"),
     "fine_tuning"),
    (dict(dataset_size=2_000_000, compute="consumer_gpu", task_similarity="different"), "fine_tuning"),
])
def test_technique_table(fields, technique, consult, facts_dump):
    plan, engine = consult(task="text_classification", **fields)
    assert [f["value"] for f in engine.facts_of(Technique)] == [technique], facts_dump(engine)
    assert plan["technique"]["choice"] == technique
    expected_approach = "full_training" if technique == "from_scratch" else "transfer"
    assert [f["value"] for f in engine.facts_of(Approach)] == [expected_approach], facts_dump(engine)
