"""Tuning rules (rules/tuning.py): hyperparameters from the technique and the data."""

from __future__ import annotations

import math

import pytest
from ruletools import RuleCase

from rules.base import Hyper, Protocol, Recipe, RunModel, Seeds, TaskFact

BASE = dict(task="text_classification", dataset_size=5000)


def case(rule, fires, expect, silent):
    return RuleCase(rule, fires, Hyper, expect, silent)


CASES = [
    case("tuning.freeze_backbone", dict(dataset_size=500), {"name": "frozen_layers", "value": "all"},
             dict(dataset_size=5000)),
    case("tuning.lora_adapters", dict(compute="cpu"), {"name": "lora"}, dict(compute="consumer_gpu")),
    case("tuning.freeze_early_layers", dict(dataset_size=5000), {"name": "unfreeze", "value": "gradual"},
             dict(dataset_size=5000, domain_similarity="low")),
    case("tuning.adapt_all_layers_dissimilar", dict(dataset_size=5000, domain_similarity="low"),
             {"name": "frozen_layers", "value": 0}, dict(dataset_size=5000, domain_similarity="medium")),
    case("tuning.stay_near_source_dissimilar", dict(domain_similarity="low", retain_source="yes"),
             {"name": "l2_sp", "value": 0.01}, dict(domain_similarity="low", retain_source="no")),
    case("tuning.tune_all_layers", dict(dataset_size=50_000), {"name": "frozen_layers", "value": 0},
             dict(dataset_size=5000)),
    case("tuning.train_all_layers",
             dict(task="image_classification", dataset_size=2_000_000, task_similarity="different",
                  domain_similarity="low", compute="datacenter_gpu"),
             {"name": "frozen_layers", "value": 0}, dict(dataset_size=5000)),
    case("tuning.augment_images", dict(task="image_classification"),
             {"name": "augmentation", "value": ["standard"]},
             dict(task="image_classification", dataset_size=500)),
    case("tuning.no_augmentation_cached_features", dict(task="image_classification", dataset_size=500),
             {"name": "augmentation", "value": []}, dict(task="image_classification", dataset_size=5000)),
    case("tuning.early_stopping", dict(dataset_size=5000), {"name": "early_stopping_patience", "value": 2},
             dict(dataset_size=500)),  # feature extraction: its head's own patience (technique defaults)
    # a 560M multilingual encoder on 3,000 Italian texts: the stable end of a large encoder's rate range;
    # the base-size English encoder of the same scenario keeps the default
    case("tuning.large_encoder_rate", dict(dataset_size=3000, language="italian", compute="consumer_gpu",
                                               gpu_memory_gb=16),
             {"name": "learning_rate", "value": 1e-5}, dict(dataset_size=3000, compute="consumer_gpu", gpu_memory_gb=16)),
    # a 7B language model with LoRA: the QLoRA paper's recipe for that size, not the encoder defaults
    case("tuning.recipe_by_model_size", dict(task="text_generation", dataset_size=60_000, gpu_memory_gb=24),
             {"name": "learning_rate", "value": 2e-4}, dict(dataset_size=60_000, gpu_memory_gb=24)),
    case("tuning.dense_all_layers", dict(task="semantic_segmentation", dataset_size=3000),
             {"name": "frozen_layers", "value": 0}, dict(task="image_classification", dataset_size=3000)),
    case("tuning.augment_audio", dict(task="audio_classification", dataset_size=5000),
             {"name": "augmentation", "value": ["standard"]}, dict(task="audio_classification", dataset_size=500)),
    case("tuning.no_text_augmentation", dict(domain_similarity="low"),
             {"name": "augmentation", "value": []}, dict(task="image_classification")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires(case, rule_fires):
    plan, engine = rule_fires(case.rule, {**BASE, **case.fires}, Hyper, **case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent(case, rule_silent):
    plan, engine = rule_silent(case.rule, {**BASE, **case.silent})


# --- tuning.technique_defaults: fires whenever a technique is chosen


def _default_lr(kb, technique, family):
    lr = kb.techniques[technique].defaults["learning_rate"]
    return lr.get(family, lr.get("default")) if isinstance(lr, dict) else lr


@pytest.mark.parametrize("fields, technique, family", [
    (dict(task="text_classification", dataset_size=5000), "fine_tuning", "nlp_transformer"),
    (dict(task="image_classification", dataset_size=5000), "fine_tuning", "cnn"),
    (dict(task="image_captioning", dataset_size=5000), "fine_tuning", "multimodal"),
    (dict(task="text_classification", dataset_size=500), "feature_extraction", "nlp_transformer"),
    (dict(task="text_classification", dataset_size=5000, compute="cpu"), "lora", "nlp_transformer"),
    (dict(task="image_classification", dataset_size=2_000_000, compute="tpu", task_similarity="different"),
     "from_scratch", "cnn"),
    (dict(task="text_generation", dataset_size=2_000_000, compute="tpu", task_similarity="different"),
     "from_scratch", "nlp_transformer"),
])
def test_technique_defaults_fires(fields, technique, family, kb, consult, facts_matching, facts_dump, fired):
    plan, engine = consult(**fields)
    assert plan["technique"]["choice"] == technique, facts_dump(engine)
    lr = _default_lr(kb, technique, family)
    assert lr is not None
    hyper = [f for f in facts_matching(engine, Hyper, name="learning_rate")
             if f["rule"] == "tuning.technique_defaults"]
    assert [f["value"] for f in hyper] == [lr], facts_dump(engine)
    assert "tuning.technique_defaults" in fired(plan)
    # the default stands unless a recipe for the scale (tuning.recipe_by_model_size) replaced it
    assert (plan["hyperparameters"]["learning_rate"] == lr
            or plan["hyperparameters_why"]["learning_rate"]["rule"] == "tuning.recipe_by_model_size")


def test_technique_defaults_silent_without_a_family(run_without, facts_dump):
    engine = run_without(BASE, TaskFact)
    assert not engine.facts_of(Hyper) or all(
        f["rule"] != "tuning.technique_defaults" for f in engine.facts_of(Hyper)), facts_dump(engine)
    assert "tuning.technique_defaults" not in [t["rule"] for t in engine.trace]


# --- details


def test_freeze_early_layers_freezes_the_configured_share_of_the_model_that_runs(consult, kb, facts_matching,
                                                                                 facts_dump):
    plan, engine = consult(**BASE)
    top = plan["model"]["id"]
    k = math.floor(kb.models[top].layers * kb.threshold("freeze_fraction_medium_data"))
    frozen = facts_matching(engine, Hyper, name="frozen_layers")
    assert [f["value"] for f in frozen] == [k], facts_dump(engine)
    assert plan["hyperparameters"]["frozen_layers"] == k
    assert plan["hyperparameters"]["unfreeze"] == "gradual"


def test_lora_targets_come_from_the_model_that_runs(consult, kb, facts_dump):
    plan, engine = consult(**BASE, compute="cpu")
    assert plan["technique"]["choice"] == "lora", facts_dump(engine)
    lora = plan["hyperparameters"]["lora"]
    top = plan["model"]["id"]
    assert lora["target_modules"] == (list(kb.models[top].lora_targets) or ["all-linear"])
    defaults = kb.techniques["lora"].defaults["lora"]
    assert {k: lora[k] for k in defaults} == defaults
    assert plan["hyperparameters"]["frozen_layers"] == "all"


@pytest.mark.parametrize("fields", [
    dict(dataset_size=500), dict(dataset_size=5000), dict(dataset_size=50_000),
    dict(dataset_size=5000, compute="cpu"),
    dict(dataset_size=2_000_000, compute="tpu", task_similarity="different"),
    dict(task="image_classification", dataset_size=5000),
])
def test_one_hyperparameter_fact_per_name_and_contract_keys_set(fields, consult, facts_dump):
    plan, engine = consult(**{**BASE, **fields})
    # one deciding fact per setting; a technique's default may stand beside it (the decision wins)
    deciding = [f["name"] for f in engine.facts_of(Hyper) if not f.get("default")]
    defaults = [f["name"] for f in engine.facts_of(Hyper) if f.get("default")]
    assert len(deciding) == len(set(deciding)) and len(defaults) == len(set(defaults)), facts_dump(engine)
    for name in set(deciding) & set(defaults):
        assert plan["hyperparameters_why"][name].get("default") is None, name
    hp = plan["hyperparameters"]
    for key in ("learning_rate", "frozen_layers", "unfreeze", "weight_decay", "dropout",
                "augmentation", "epochs"):
        assert hp[key] is not None, f"{key} unset\n" + facts_dump(engine)
    assert (hp["lora"] is not None) == (plan["technique"]["choice"] == "lora")


# --- the model to run and the other techniques' recipes


def test_run_model_prefers_a_candidate_available_offline(rule_fires, kb):
    plan, engine = rule_fires("selection.run_model", dict(BASE, compute="cpu"), RunModel,
                              model="all-MiniLM-L6-v2", available=True)
    assert plan["model"]["id"] == "all-MiniLM-L6-v2" and plan["model"]["layers"] == 6
    assert plan["candidates"][0]["model"] != "all-MiniLM-L6-v2"  # ranked lower, but the one that runs here
    assert "--model" in plan["model"]["why"]["text"]


def test_run_model_names_the_top_candidate_when_none_is_installed(consult):
    plan, _ = consult(task="image_classification", dataset_size=5000)
    assert plan["model"]["id"] == plan["candidates"][0]["model"]
    assert plan["model"]["available"] is False and "--weights" in plan["model"]["why"]["text"]


def test_freezing_is_sized_on_the_model_that_runs(consult, kb):
    """bert-base ranks first (12 layers) but MiniLM (6 layers) runs: the plan freezes half of 6."""
    plan, _ = consult(**dict(BASE, compute="consumer_gpu", dataset_size=5000))
    assert plan["technique"]["choice"] == "fine_tuning"
    layers = kb.models[plan["model"]["id"]].layers
    assert plan["hyperparameters"]["frozen_layers"] == math.floor(
        layers * kb.threshold("freeze_fraction_medium_data"))


def test_alternative_recipes_are_each_techniques_own(rule_fires, kb):
    plan, engine = rule_fires("tuning.alternative_recipes", dict(BASE, compute="cpu"), Recipe,
                              technique="feature_extraction")
    assert plan["technique"]["choice"] == "lora"
    core = {t for t, e in kb.techniques.items() if e.kind == "core"}
    assert set(plan["recipes"]) == core - {"lora"}
    fe, ft = plan["recipes"]["feature_extraction"], plan["recipes"]["fine_tuning"]
    assert fe["learning_rate"] == kb.techniques["feature_extraction"].defaults["learning_rate"]
    assert fe["frozen_layers"] == "all" and fe["head"] == "linear"
    assert ft["learning_rate"] == _default_lr(kb, "fine_tuning", "nlp_transformer") != fe["learning_rate"]
    assert plan["hyperparameters"]["learning_rate"] == kb.techniques["lora"].defaults["learning_rate"]


@pytest.mark.parametrize("scenario,seeds", [
    (dict(task="text_classification", dataset_size=5000, compute="consumer_gpu"), 5),
    (dict(task="text_generation", dataset_size=20000, compute="consumer_gpu", gpu_memory_gb=24), 3),
    (dict(task="text_generation", dataset_size=20000, compute="datacenter_gpu", gpu_memory_gb=640,
          latency_ms=0), None),
], ids=["small-encoder", "7b-lora", "datacenter"])
def test_seeds_follow_the_cost_of_one_run(scenario, seeds, rule_fires):
    """evaluation.seeds_by_cost: five seeds for a cheap run, three for a billion-parameter model, one
    from ten billion; the plan carries the count, its reason and the task's metrics."""
    plan, engine = rule_fires("evaluation.seeds_by_cost", scenario, Seeds)
    params = next(c["params"] for c in plan["candidates"] if c["model"] == plan["model"]["id"])
    want = seeds if seeds is not None else (1 if params >= 1e10 else 3 if params >= 1e9 else 5)
    assert plan["evaluation"]["seeds"] == want and plan["evaluation"]["why"]
    if scenario["task"] == "text_generation":
        assert "macro-F1" not in " ".join(plan["evaluation"]["metrics"]) + plan["evaluation"]["stop_on"]
        assert "loss" in plan["evaluation"]["stop_on"]


def test_a_large_language_model_gets_the_recipe_for_its_size(consult):
    """LoRA on a 7B over 60k pairs: 2e-4, 3 epochs, batch 16, warm-up 3%; one epoch from 200k examples;
    the memory fit is computed at that batch; an encoder keeps the encoder recipe."""
    plan, _ = consult(task="text_generation", dataset_size=60_000, compute="consumer_gpu", gpu_memory_gb=24)
    h = plan["hyperparameters"]
    assert plan["technique"]["choice"] == "lora"
    assert (h["learning_rate"], h["epochs"], h["batch_size"], h["warmup_ratio"]) == (2e-4, 3, 16, 0.03)
    assert "at batch 16 of" in plan["technique"]["why"]["text"]
    big, _ = consult(task="text_generation", dataset_size=300_000, compute="consumer_gpu", gpu_memory_gb=12)
    assert big["hyperparameters"]["epochs"] == 1
    enc, _ = consult(task="text_classification", dataset_size=5000, compute="cpu")
    assert enc["hyperparameters"]["learning_rate"] == 5e-4 and enc["hyperparameters"]["epochs"] == 10


@pytest.mark.parametrize("n,k,few", [(40, 8, True), (5000, 8, False), (500, None, False)])
def test_a_few_shot_scenario_is_judged_by_cross_validation(n, k, few, rule_fires):
    """evaluation.protocol: five examples per class get cross-validation, a test set to label and
    few-shot methods; a normal scenario a stratified 60/20/20 split."""
    scenario = dict(task="text_classification", dataset_size=n, compute="cpu", **({"num_classes": k} if k else {}))
    plan, _ = rule_fires("evaluation.protocol", scenario, Protocol)
    text = plan["evaluation"]["protocol"]
    assert ("cross-validation" in text and "SetFit" in text) == few
    assert ("60% training" in text) == (not few)


def test_large_batches_on_a_tpu(consult):
    plan, _ = consult(task="image_classification", dataset_size=2_000_000, compute="tpu",
                      task_similarity="different", domain_similarity="low")
    h = plan["hyperparameters"]
    assert plan["technique"]["choice"] == "from_scratch" and h["batch_size"] == 1024 and h["warmup_ratio"] > 0
    small, _ = consult(task="image_classification", dataset_size=2_000_000, compute="consumer_gpu",
                       task_similarity="different", domain_similarity="low")
    assert small["hyperparameters"]["batch_size"] != 1024


@pytest.mark.parametrize("task,domain,present,absent", [
    ("keyword_spotting", None, "false alarms per hour", "UAR"),
    ("audio_classification", "speech,emotion", "UAR", "false alarms"),
    ("document_classification", None, "document types", "extracted fields"),
    ("semantic_segmentation", "steel,defects", "foreground", "Dice"),
    ("semantic_segmentation", "ct,liver", "Dice", None),
])
def test_a_metric_for_one_kind_of_problem_is_reported_only_there(task, domain, present, absent, consult):
    plan, _ = consult(task=task, dataset_size=3000, **({"target_domain": domain.split(",")} if domain else {}))
    text = "; ".join(plan["evaluation"]["metrics"])
    assert present in text and (absent is None or absent not in text), text


def test_cost_decides_seeds_and_large_data_keeps_its_labels(consult):
    """Three million images: three seeds (cost = parameters x examples) and 10,000-example validation and
    test sets instead of 20% shares; a billion-parameter LM's LoRA adapts every linear layer."""
    big, _ = consult(task="image_classification", dataset_size=3_000_000, compute="datacenter_gpu", gpu_memory_gb=80)
    assert big["evaluation"]["seeds"] == 3 and "10,000 examples each" in big["evaluation"]["protocol"]
    lm, _ = consult(task="text_generation", dataset_size=60_000, compute="consumer_gpu", gpu_memory_gb=24)
    assert lm["technique"]["choice"] == "lora" and lm["hyperparameters"]["lora"]["target_modules"] == ["all-linear"]
    enc, _ = consult(task="text_classification", dataset_size=5000, compute="cpu")
    assert enc["hyperparameters"]["lora"]["target_modules"] != ["all-linear"]


def test_a_dense_task_trains_for_iterations(consult):
    """800 segmentation images at batch 8: the epochs rise until the plan has at least dense_min_steps
    steps, and the plan says how many steps an epoch has."""
    plan, _ = consult(task="semantic_segmentation", dataset_size=800, compute="consumer_gpu", gpu_memory_gb=12)
    h = plan["hyperparameters"]
    steps = -(-int(800 * 0.6) // h["batch_size"]) * h["epochs"]
    assert h["batch_size"] == 8 and steps >= 1000 and "dense_min_steps" in plan["hyperparameters_why"]["epochs"]["text"]
    big, _ = consult(task="semantic_segmentation", dataset_size=20000, compute="consumer_gpu", gpu_memory_gb=12)
    assert "dense_min_steps" not in big["hyperparameters_why"]["epochs"]["text"]  # enough steps already
