"""Plans that never contradict themselves (issue: advice that holds up on real scenarios).

What the source must keep decides forgetting; the data's similarity decides
freezing; mitigations agree with the plan's own hyperparameter lines and with
the knowledge base's measured findings; the ranking follows the criteria line;
every assumed value is named.
"""

from __future__ import annotations

import pytest

from knowledge.schema import SPEED_ORDER
from rules.base import Risk
from rules.fixes import concrete_fixes, fix_changes
from rules.lint import lint

BASE = dict(task="text_classification", dataset_size=5000)


def typed_lint(plan, kb):
    """``rules.lint.lint`` on a plan or its JSON form (tests edit the JSON form to break invariants)."""
    from rules.contract import Plan

    return lint(Plan.from_dict(plan, "the test's plan", kb) if isinstance(plan, dict) else plan, kb)


def all_fixes(plan):
    return [f for r in plan["risks"] for f in r["mitigations"]] + [f for d in plan["diagnoses"] for f in d["fixes"]]


def changes_of(plan, field):
    return [ch for f in all_fixes(plan) for ch in f["changes"] if ch["field"] == field]


# --- must the model keep its original abilities?


@pytest.mark.parametrize("rule, fields", [
    ("risk.forgetting_many_layers_small_data", dict(dataset_size=5000)),
    ("risk.forgetting_full_fine_tuning", dict(dataset_size=50_000)),
    ("risk.forgetting_lora", dict(compute="cpu")),
])
def test_forgetting_is_no_risk_when_the_source_abilities_need_not_be_kept(rule, fields, rule_fires, rule_silent,
                                                                         kb):
    rule_fires(rule, {**BASE, **fields, "retain_source": "yes"}, Risk, pitfall="catastrophic_forgetting")
    plan, _ = rule_silent(rule, {**BASE, **fields, "retain_source": "no"})
    assert "catastrophic_forgetting" not in [r["pitfall"] for r in plan["risks"]]
    assert "forgetting" not in plan["evaluation"]["probes"]
    assert typed_lint(plan, kb) == []


def test_unknown_retention_keeps_the_risk_and_says_the_probe_measures_it(consult):
    plan, _ = consult(**BASE)  # retain_source not given
    forgetting = next(r for r in plan["risks"] if r["pitfall"] == "catastrophic_forgetting")
    assert "forgetting probe measures it" in forgetting["why"]["text"]
    assert "forgetting" in plan["evaluation"]["probes"]
    assert {"field": "retain_source", "value": "unknown", "why": "not given: the default"} in plan["assumptions"]


@pytest.mark.parametrize("spelling, value", [("yes", "yes"), (True, "yes"), ("No", "no"), (False, "no"),
                                             ("not sure", "unknown"), ("y", "yes"), ("dunno", "unknown")])
def test_retain_source_spellings(spelling, value, consult):
    plan, _ = consult(**BASE, retain_source=spelling)
    assert plan["scenario"]["retain_source"] == value
    assert "retain_source" not in plan["scenario"]["assumed"]


def test_a_bad_retain_source_names_the_field(kb):
    from rules.scenario import ScenarioError, normalize

    with pytest.raises(ScenarioError, match=r"'retain_source' field .* must be one of no, unknown, yes\. "
                                            r"Got 'sometimes' instead"):
        normalize({**BASE, "retain_source": "sometimes"}, kb)


# --- freezing follows the evidence


def test_dissimilar_data_freezes_no_layer_and_says_why(consult):
    plan, engine = consult(**BASE, domain_similarity="low")
    hp = plan["hyperparameters"]
    assert hp["frozen_layers"] == 0 and hp["unfreeze"] == "none"
    why = plan["hyperparameters_why"]["frozen_layers"]
    assert why["rule"] == "tuning.adapt_all_layers_dissimilar"
    assert "Yosinski et al. 2014" in why["text"] and "sources:yosinski2014" in why["knowledge"]
    names = {f["fix"] for f in all_fixes(plan)}
    assert not names & {"freeze_early_layers", "gradual_unfreezing"}
    # frozen features are avoided on dissimilar data, except against negative transfer, where
    # the knowledge base measured them 8 points above fine-tuning a source that hurts
    by_pitfall = {r["pitfall"]: [m["fix"] for m in r["mitigations"]] for r in plan["risks"]}
    for pitfall, fixes in by_pitfall.items():
        assert ("switch_to_feature_extraction" in fixes) == (pitfall == "negative_transfer") or \
            "switch_to_feature_extraction" not in fixes, (pitfall, fixes)


def test_avoid_except_lets_a_fix_answer_the_pitfall_it_was_measured_on(kb):
    hyper = {"frozen_layers": 0, "unfreeze": "none", "learning_rate": 2e-5}
    low = {"domain_similarity": "low", "modality": "text"}
    ids = ["switch_to_feature_extraction"]
    assert concrete_fixes(kb, ids, hyper, "fine_tuning", 12, scenario=low) == []
    assert concrete_fixes(kb, ids, hyper, "fine_tuning", 12, scenario=low, pitfall="catastrophic_forgetting") == []
    got = concrete_fixes(kb, ids, hyper, "fine_tuning", 12, scenario=low, pitfall="negative_transfer")
    assert [f["fix"] for f in got] == ids and any("0.629" in x["text"] for x in got[0]["findings"])


def test_similar_data_freezes_the_early_layers_and_names_them(consult):
    plan, _ = consult(**BASE, domain_similarity="high")
    assert plan["model"]["layers"] == 6  # sized on the model that runs (all-MiniLM-L6-v2)
    assert plan["hyperparameters"]["frozen_layers"] == 3
    text = plan["hyperparameters_why"]["frozen_layers"]["text"]
    assert "layers 1-3 of 6" in text and "layers 4-6 and the head adapt" in text
    assert "Yosinski et al. 2014" in text


def test_forgetting_reported_on_dissimilar_data_is_fixed_without_freezing(consult):
    plan, _ = consult(**BASE, domain_similarity="low", retain_source="yes",
                      symptoms=["the model lost its grasp of general sentence structure after fine-tuning"])
    fixes = [f["fix"] for f in plan["diagnoses"][0]["fixes"]]
    assert plan["diagnoses"][0]["pitfall"] == "catastrophic_forgetting"
    assert "freeze_early_layers" not in fixes and "lower_learning_rate" in fixes
    assert plan["hyperparameters"]["l2_sp"] == 0.01  # kept near the source weights instead


# --- mitigations agree with the plan and the measured findings


def test_the_learning_rate_cut_never_goes_below_the_floor(consult, kb):
    plan, _ = consult(**BASE, domain_similarity="high", retain_source="yes")
    cuts = changes_of(plan, "learning_rate")
    assert cuts and all(ch["from"] == 2e-5 and ch["to"] == 1e-5 for ch in cuts), cuts  # never 2e-6
    cnn, _ = consult(task="image_classification", dataset_size=5000, retain_source="yes")
    assert [(ch["from"], ch["to"]) for ch in changes_of(cnn, "learning_rate")][:1] == [(1e-4, 1e-5)]
    fix = kb.fixes["lower_learning_rate"]
    assert fix_changes(fix, {"learning_rate": 5e-4}, "fine_tuning")[0]["to"] == 5e-5  # the measured good cut
    assert fix_changes(fix, {"learning_rate": 1e-5}, "fine_tuning") == []  # already at the floor
    assert fix_changes(fix, {"learning_rate": 3e-5}, "fine_tuning")[0]["to"] == 1e-5


def test_no_augmentation_for_cached_features_and_none_offered(consult):
    plan, _ = consult(task="image_classification", dataset_size=600, domain_similarity="low",
                      symptoms=["val_loss_rising", "input_conditions_differ"])
    assert plan["technique"]["choice"] == "feature_extraction"
    assert plan["hyperparameters"]["augmentation"] == []
    assert "cached" in plan["hyperparameters_why"]["augmentation"]["text"]
    assert "data_augmentation" not in [f["fix"] for f in all_fixes(plan)]


def test_text_plans_never_offer_the_augmentation_their_own_line_calls_useless(consult):
    plan, _ = consult(**BASE, symptoms=["val_loss_rising"], domain_similarity="low")
    assert "adds little" in plan["hyperparameters_why"]["augmentation"]["text"]
    assert "data_augmentation" not in [f["fix"] for f in all_fixes(plan)]
    fine_tuned_images, _ = consult(task="image_classification", dataset_size=5000, symptoms=["val_loss_rising"])
    assert fine_tuned_images["hyperparameters"]["augmentation"] == ["standard"]


def test_avoided_fixes_are_skipped_by_concrete_fixes(kb):
    hyper = {"frozen_layers": 0, "unfreeze": "none", "learning_rate": 2e-5}
    low = {"domain_similarity": "low", "modality": "text"}
    ids = ["freeze_early_layers", "gradual_unfreezing", "switch_to_feature_extraction", "l2_sp"]
    assert [f["fix"] for f in concrete_fixes(kb, ids, hyper, "fine_tuning", 12, scenario=low)] == ["l2_sp"]
    assert len(concrete_fixes(kb, ids, hyper, "fine_tuning", 12, scenario={**low, "domain_similarity": "high"})) == 4


# --- the ranking follows the criteria line


@pytest.mark.parametrize("fields", [
    dict(task="text_classification", dataset_size=5000, deployment="mobile"),
    dict(task="text_classification", dataset_size=50_000, deployment="server", latency_ms=50),
    dict(task="image_classification", dataset_size=5000, deployment="edge", latency_ms=100),
])
def test_size_and_latency_first_means_no_slower_model_ranks_above_a_faster_one(fields, consult):
    plan, _ = consult(**fields)
    assert plan["criteria"][0]["name"] == "model size and inference latency"
    speeds = [SPEED_ORDER[c["speed"]] for c in plan["candidates"]]
    assert speeds == sorted(speeds), [(c["model"], c["speed"]) for c in plan["candidates"]]
    models = [c["model"] for c in plan["candidates"]]
    if "bert-large" in models:
        assert models.index("bert-large") > models.index("all-MiniLM-L6-v2")


# --- assumed values are named


def test_assumed_memory_is_named_in_the_plan_and_in_rejections(consult):
    plan, engine = consult(**BASE)
    assumed = {a["field"]: a for a in plan["assumptions"]}
    assert assumed["gpu_memory_gb"]["value"] == 12 and "not given" in assumed["gpu_memory_gb"]["why"]
    assert {"task_similarity", "domain_similarity", "compute", "deployment", "retain_source"} <= set(assumed)
    memory = [r for rej in plan["rejected"] for r in rej["reasons"] if "GiB" in r]
    assert memory and all("assumed" in r for r in memory)
    given, _ = consult(**BASE, gpu_memory_gb=24, compute="consumer_gpu", task_similarity="related",
                       domain_similarity="medium", deployment="server", retain_source="no",
                       device_class="datacenter_gpu", language="english")
    assert given["assumptions"] == []
    assert all("assumed" not in r for rej in given["rejected"] for r in rej["reasons"])


def test_a_plan_file_read_again_keeps_its_assumptions(kb):
    from rules.scenario import normalize

    once = normalize(BASE, kb)
    again = normalize({k: v for k, v in once.items() if v is not None}, kb)
    assert again["assumed"] == once["assumed"] == ["task_similarity", "domain_similarity", "compute",
                                                    "deployment", "retain_source"]
