"""The plan linter (rules/lint.py): each invariant catches the contradiction it names,
and no plan of the generated grid breaks any."""

from __future__ import annotations

import copy
import json
import time

import pytest

from rules.lint import CHECKS, GRID_SIZE, grid, grid_values, lint
from rules.scenario import FIELDS

BASE = dict(task="text_classification", dataset_size=5000)


def typed_lint(plan, kb):
    """``rules.lint.lint`` on a plan or its JSON form (tests edit the JSON form to break invariants)."""
    from rules.contract import Plan

    return lint(Plan.from_dict(plan, "the test's plan", kb) if isinstance(plan, dict) else plan, kb)


def checks(plan, kb) -> set[str]:
    return {v["check"] for v in typed_lint(plan, kb)}


@pytest.fixture
def plan(consult):
    p, _ = consult(**BASE, domain_similarity="high", retain_source="yes")
    return p


def test_a_sound_plan_has_no_violation(plan, kb):
    assert typed_lint(plan, kb) == []


# The plans, rebuilt by editing a sound one: each contradiction is caught by its check.


def test_frozen_early_layers_with_dissimilar_data(plan, kb):
    bad = copy.deepcopy(plan)
    bad["scenario"]["domain_similarity"] = "low"
    assert {"freeze_dissimilar", "fix_avoided"} <= checks(bad, kb)


def test_a_deep_cut_below_the_floor_and_forgetting_not_needed(plan, kb):
    bad = copy.deepcopy(plan)
    bad["scenario"]["retain_source"] = "no"
    forgetting = next(r for r in bad["risks"] if r["pitfall"] == "catastrophic_forgetting")
    forgetting["mitigations"].insert(0, {"fix": "lower_learning_rate", "changes": [
        {"field": "learning_rate", "from": 2e-5, "to": 1e-6}]})
    got = [v for v in typed_lint(bad, kb) if v["check"] in ("learning_rate_cut", "forgetting_not_needed")]
    assert {v["check"] for v in got} == {"learning_rate_cut", "forgetting_not_needed"}
    assert any("below the 1e-05 floor" in v["message"] for v in got)
    assert any("more than 10x" in v["message"] for v in got)


def test_augmentation_on_cached_features_and_for_text(consult, kb):
    fe, _ = consult(task="image_classification", dataset_size=500)
    bad = copy.deepcopy(fe)
    bad["hyperparameters"]["augmentation"] = ["standard"]
    assert "augmentation_cached" in checks(bad, kb)
    text = copy.deepcopy(consult(**BASE)[0])
    text["risks"][0]["mitigations"].append({"fix": "data_augmentation", "changes": [
        {"field": "augmentation", "from": [], "to": ["standard"]}]})
    assert {"fix_contradicts_plan", "fix_modality"} <= checks(text, kb)


def test_latency_first_criteria_with_a_large_model_ranked_first(consult, kb):
    # speed classes are per device: on a Raspberry Pi the candidates under 100 ms differ in class
    p, _ = consult(**BASE, deployment="edge", device_class="raspberry_pi_cpu", latency_ms=100)
    assert p["criteria"][0]["name"] == "model size and inference latency"
    assert len({c["speed"] for c in p["candidates"]}) > 1
    bad = copy.deepcopy(p)
    bad["candidates"].reverse()
    assert "criteria_ranking" in checks(bad, kb)


def test_an_unmarked_assumed_memory(plan, kb):
    bad = copy.deepcopy(plan)
    bad["scenario"]["gpu_memory_gb"] = None
    bad["assumptions"] = [a for a in bad["assumptions"] if a["field"] != "gpu_memory_gb"]
    bad["rejected"].append({"model": "x", "reasons": ["fine tuning needs ~40 GiB, more than the 12 GiB available"]})
    assert "assumed_marked" in checks(bad, kb)
    bad["scenario"]["assumed"] = ["compute"]
    bad["assumptions"] = []
    assert sum(v["check"] == "assumed_marked" for v in typed_lint(bad, kb)) == 3


def test_candidates_over_the_budgets(consult, kb):
    p, _ = consult(**BASE, deployment="mobile", latency_ms=30, compute="cpu", gpu_memory_gb=4)
    bad = copy.deepcopy(p)
    big = {"model": "bert-large", "name": "BERT-large", "family": "nlp_transformer", "params": 335141888,
           "speed": "medium", "layers": 24, "offline": False, "meets_constraints": True, "why": {}}
    bad["candidates"].insert(0, big)
    bad["candidates"].append({**big, "model": "gpt-4", "params": 1.8e12})
    got = checks(bad, kb)
    assert {"latency_budget", "size_budget", "cpu_training", "criteria_ranking", "closed_weights",
            "candidate_rejected"} <= got
    bad["technique"]["choice"] = "fine_tuning"
    assert "memory_budget" in checks(bad, kb)


def test_every_check_id_is_used_by_lint():
    import inspect

    import rules.lint as mod

    body = inspect.getsource(mod.lint)
    for check in CHECKS:
        assert f'"{check}"' in body, check


# --- the grid


def test_the_grid_covers_every_scenario_field_and_value(kb):
    values = grid_values(kb)
    assert set(FIELDS) <= set(values)
    rows = grid(kb)
    assert len(rows) == GRID_SIZE >= 10_000
    for field, vals in values.items():
        seen = {json.dumps(r.get(field), sort_keys=True) for r in rows}
        for v in vals:
            want = json.dumps(None if v == [] else v, sort_keys=True)
            assert want in seen or (v in (None, []) and "null" in seen), (field, v)


@pytest.mark.slow
def test_no_plan_of_the_grid_contradicts_itself(kb, tmp_path):
    """Every scenario of the 10,080-scenario grid through the batch machinery (2 workers), linted."""
    from harness.scaleout.batch import run_batch
    from rules.conformance import consult_chunk, summarize

    items = [("grid", i, s) for i, s in enumerate(grid(kb))]
    t = time.perf_counter()
    rows = run_batch(items, consult_chunk, jobs=2, chunk_size=500)
    elapsed = time.perf_counter() - t
    summary = summarize(rows)
    assert summary["scenarios"] == len(items) and summary["errors"] == 0, \
        [r["error"] for r in rows if r["status"] == "error"][:3]
    assert summary["plans_with_violations"] == 0, (summary["violations"], summary["violation_examples"][:5])
    print(f"lint grid: {len(items)} scenarios in {elapsed:.1f} s")


def test_an_emoji_fix_for_data_without_emoji(consult, kb):
    """Italian legal documents from dissimilar data: domain shift is a risk, but emoji handling is not
    its mitigation; planted back into the plan, the linter names it."""
    legal, _ = consult(task="text_classification", dataset_size=3000, language="italian",
                       domain_similarity="low", target_domain=["legal contracts"])
    shift = next(r for r in legal["risks"] if r["pitfall"] == "domain_shift")
    assert not [m for m in shift["mitigations"] if "emoji" in m["fix"]]
    assert typed_lint(legal, kb) == []
    bad = copy.deepcopy(legal)
    next(r for r in bad["risks"] if r["pitfall"] == "domain_shift")["mitigations"].append(
        {"fix": "emoji_tokenization", "changes": [{"field": "tokenizer_extra_tokens", "from": None, "to": "emoji"}]})
    assert "fix_relevant" in checks(bad, kb)
    tweets, _ = consult(task="text_classification", dataset_size=3000, domain_similarity="low",
                        target_domain=["tweets"])
    shift = next(r for r in tweets["risks"] if r["pitfall"] == "domain_shift")
    assert [m for m in shift["mitigations"] if "emoji" in m["fix"]]


def test_the_plans_of_this_round_break_the_new_invariants_when_edited(consult, kb):
    """Each of the four invariants catches its contradiction: flips on documents, macro-F1 for
    generation, a datacenter GPU assumed for a CPU scenario, a model and technique whose batch cannot
    fit the memory even as accumulated micro-batches of 1 with checkpointing."""
    doc, _ = consult(task="image_classification", dataset_size=5000, compute="consumer_gpu",
                     target_domain=["scanned documents"])
    assert typed_lint(doc, kb) == []
    bad = copy.deepcopy(doc)
    bad["hyperparameters"]["augmentation"] = ["standard"]
    assert "augmentation_domain" in checks(bad, kb)

    gen, _ = consult(task="text_generation", dataset_size=20000, compute="consumer_gpu", gpu_memory_gb=24)
    assert typed_lint(gen, kb) == []
    bad = copy.deepcopy(gen)
    bad["evaluation"]["stop_on"] = "validation macro-F1"
    assert "metric_task" in checks(bad, kb)
    bad = copy.deepcopy(gen)
    bad["technique"]["choice"] = "fine_tuning"  # a 7B fully fine-tuned on 24 GB: no batch fits
    assert "memory_batch" in checks(bad, kb)

    cpu, _ = consult(task="text_classification", dataset_size=2000, compute="cpu")
    assert typed_lint(cpu, kb) == []
    bad = copy.deepcopy(cpu)
    bad["device"]["class"] = "datacenter_gpu"
    assert "device_compute" in checks(bad, kb)


def test_the_epoch_budget_bounds_patience_and_unfreezing(consult, kb):
    """Patience at or over the epochs never stops a run; gradual unfreezing needs several epochs. The plans
    cut both themselves (a 3-epoch recipe gets patience 2, a 1-epoch one no gradual unfreezing)."""
    plan, _ = consult(task="sentence_similarity", dataset_size=2000, compute="consumer_gpu", gpu_memory_gb=24,
                      language="german")
    assert plan["hyperparameters"]["epochs"] == 1 and plan["hyperparameters"]["unfreeze"] == "none"
    assert "epoch_budget" not in checks(plan, kb)
    bad = copy.deepcopy(plan)
    bad["hyperparameters"]["unfreeze"] = "gradual"
    assert "epoch_budget" in checks(bad, kb)
    bad = copy.deepcopy(plan)
    bad["hyperparameters"].update(epochs=3, early_stopping_patience=3)
    assert "epoch_budget" in checks(bad, kb)


def test_no_fix_goes_against_the_task_or_the_domain(consult, kb):
    """Photo augmentation is never a fix where the plan follows a domain's policy, and a head on frozen
    features is never a fix for masks."""
    sat, _ = consult(task="image_classification", dataset_size=27000, compute="consumer_gpu", gpu_memory_gb=16,
                     domain_similarity="low", target_domain=["satellite"])
    seg, _ = consult(task="semantic_segmentation", dataset_size=400, compute="consumer_gpu", gpu_memory_gb=6,
                     domain_similarity="low", symptoms=["below_baseline"])
    for plan in (sat, seg):
        changes = [c for r in plan["risks"] for m in r["mitigations"] for c in m["changes"]]
        changes += [c for d in plan["diagnoses"] for f in d["fixes"] for c in f["changes"]]
        assert not [c for c in changes if c["field"] == "augmentation" and "standard" in (c["to"] or [])]
        if plan is seg:
            assert not [c for c in changes if c["field"] == "technique" and c["to"] == "feature_extraction"]
