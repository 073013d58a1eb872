"""Auto-fix pieces without training: applying a fix to a plan, which fixes are carried, the verdict."""

from __future__ import annotations

from types import SimpleNamespace

from harness.troubleshooting.autofix import apply_fix, carried, judge
from rules.contract import Plan
from rules.engine import get_engine
from rules.scenario import normalize


def _plan(kb, **fields):
    sc = {"task": "text_classification", "dataset_size": 5000, "compute": "consumer_gpu", **fields}
    return get_engine(kb).consult(normalize(sc, kb))


def _test(significant):
    return SimpleNamespace(significant=significant)


def _rec(symptoms, diagnoses):
    return {"symptoms": [{"id": s} for s in symptoms], "diagnoses": [{"pitfall": p} for p in diagnoses]}


def test_more_seeds_changes_the_evaluation_not_the_hyperparameters(kb):
    plan = _plan(kb)
    new = apply_fix(plan, {"fix": "more_seeds", "description": "", "changes": [
        {"field": "seeds", "from": plan.evaluation.seeds, "to": plan.evaluation.seeds + 3}]})
    assert new.evaluation.seeds == plan.evaluation.seeds + 3
    assert "seeds" not in new.to_dict()["hyperparameters"] and new.applied_fixes == ["more_seeds"]
    assert plan.evaluation.seeds != new.evaluation.seeds  # the original is untouched


def test_switching_technique_takes_that_techniques_recipe(kb):
    plan = _plan(kb)
    assert plan.technique_id == "fine_tuning"
    new = apply_fix(plan, {"fix": "switch_to_feature_extraction", "description": "switch", "changes": [
        {"field": "technique", "from": "fine_tuning", "to": "feature_extraction"}]})
    assert new.technique_id == "feature_extraction"
    assert new.hyperparameters.learning_rate == plan.recipes["feature_extraction"].learning_rate
    assert new.hyperparameters.learning_rate != plan.hyperparameters.learning_rate  # never the backbone's recipe
    assert new.recipes["fine_tuning"].learning_rate == plan.hyperparameters.learning_rate


def test_only_fixes_whose_fields_the_technique_honours_are_carried(kb):
    l2 = {"fix": "l2_sp", "changes": [{"field": "l2_sp", "from": 0.0, "to": 0.01}]}
    assert carried(l2, "fine_tuning", "text", kb)
    assert not carried(l2, "lora", "text", kb)  # LoRA freezes the weights L2-SP would anchor
    freeze = {"fix": "freeze_early_layers", "changes": [{"field": "frozen_layers", "from": 0, "to": 3}]}
    assert carried(freeze, "fine_tuning", "image", kb) and not carried(freeze, "feature_extraction", "text", kb)
    demojize = {"fix": "emoji_to_text", "changes": [{"field": "preprocessing", "from": [], "to": ["demojize"]}]}
    assert carried(demojize, "fine_tuning", "text", kb) and not carried(demojize, "fine_tuning", "image", kb)


def test_a_symptom_of_an_already_diagnosed_pitfall_is_not_new(kb):
    """The 5-seed forgetting case: lowering the learning rate removed the forgetting symptoms, and the
    emoji-slice gap became significant; domain shift had been diagnosed before the fix (from [UNK])."""
    diag = {"pitfall": "catastrophic_forgetting",
            "evidence": [{"symptom": "retention_drop"}, {"symptom": "representation_drift"}]}
    before = _rec(["retention_drop", "representation_drift", "unknown_tokens"],
                  ["catastrophic_forgetting", "domain_shift"])
    after = _rec(["unknown_tokens", "slice_gap"], ["domain_shift"])
    keep, why, gone, new = judge(diag, before, after, _test(True), _test(False), kb)
    assert keep and new == [] and gone == ["representation_drift", "retention_drop"]
    assert "improved significantly" in why


def test_a_symptom_of_a_new_pitfall_or_a_significant_loss_reverts(kb):
    diag = {"pitfall": "catastrophic_forgetting", "evidence": [{"symptom": "retention_drop"}]}
    before = _rec(["retention_drop"], ["catastrophic_forgetting"])
    after = _rec(["majority_class_collapse"], ["failed_run"])
    keep, why, gone, new = judge(diag, before, after, _test(False), _test(False), kb)
    assert not keep and new == ["majority_class_collapse"] and "new symptom" in why
    keep, why, *_ = judge(diag, before, _rec([], []), _test(False), _test(True), kb)
    assert not keep and "significantly worse" in why
    keep, why, gone, _ = judge(diag, before, _rec([], []), _test(False), _test(False), kb)
    assert keep and gone == ["retention_drop"]  # the targeted symptom went, without a significant loss
    keep, why, *_ = judge(diag, before, before, _test(False), _test(False), kb)
    assert not keep and "remained" in why


def test_a_fix_to_a_setting_inside_a_block_halves_the_lora_rank(kb):
    """`lora.rank` is a field inside the recipe's LoRA block: the fix is computed from the plan's rank, applied
    to that block only, carried by the causal-LM harness (which honours `lora`), and absent for a technique
    without adapters."""
    from dataclasses import asdict

    from rules.fixes import concrete_fixes

    plan = _plan(kb, task="text_generation", compute="cpu")
    assert plan.technique_id == "lora"
    rank = plan.hyperparameters.lora.rank
    [fix] = concrete_fixes(kb, ["smaller_lora_rank"], asdict(plan.hyperparameters), "lora", 0)
    assert fix["changes"] == [{"field": "lora.rank", "from": rank, "to": max(1, round(rank / 2))}]
    assert carried(fix, "lora", "causal_lm", kb)
    new = apply_fix(plan, fix)
    assert new.hyperparameters.lora.rank == max(1, round(rank / 2)) and plan.hyperparameters.lora.rank == rank
    assert new.hyperparameters.lora.alpha == plan.hyperparameters.lora.alpha
    assert concrete_fixes(kb, ["smaller_lora_rank"], asdict(plan.recipes["fine_tuning"]), "fine_tuning", 0) == []
