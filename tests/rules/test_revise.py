"""The seam from measurements back to the rules (rules/revise.py), unit by unit."""

from __future__ import annotations

import pytest

from rules.fixes import apply_changes, fix_changes
from rules.revise import revise, weigh_fixes

SCENARIO = {"task": "text_classification", "dataset_size": 5000, "compute": "consumer_gpu"}


def _fix(fid, changes):
    return {"fix": fid, "description": fid, "changes": changes, "summary": ""}


def test_weigh_fixes_moves_a_switch_to_a_measured_worse_technique_last():
    d = {"pitfall": "negative_transfer", "fixes": [
        _fix("switch_to_feature_extraction", [{"field": "technique", "from": "fine_tuning",
                                               "to": "feature_extraction"}]),
        _fix("lower_learning_rate", [{"field": "learning_rate", "from": 2e-5, "to": 6.7e-6}])]}
    out = weigh_fixes([d], {"fine_tuning": 0.67, "feature_extraction": 0.52}, "fine_tuning")
    assert [f["fix"] for f in out[0]["fixes"]] == ["lower_learning_rate", "switch_to_feature_extraction"]
    assert "0.520 vs fine_tuning 0.670" in out[0]["fixes"][1]["measured"]
    better = weigh_fixes([d], {"fine_tuning": 0.5, "feature_extraction": 0.6}, "fine_tuning")
    assert better[0]["fixes"] == d["fixes"]  # measured better: nothing moves
    assert weigh_fixes([d], {}, "fine_tuning") == [d]  # nothing measured: nothing to weigh


def test_fix_concretisation_against_current_values(kb):
    lower = kb.fixes["lower_learning_rate"]
    ch = fix_changes(lower, {"learning_rate": 5e-4}, "fine_tuning", 6)
    assert ch and ch[0]["field"] == "learning_rate" and ch[0]["from"] == 5e-4 and ch[0]["to"] < 5e-4
    freeze = kb.fixes["freeze_early_layers"]
    ch = fix_changes(freeze, {"frozen_layers": 0}, "fine_tuning", 6)
    assert ch[0]["from"] == 0 and 0 < ch[0]["to"] < 6
    seeds = kb.fixes["more_seeds"]
    assert fix_changes(seeds, {"seeds": 3}, "fine_tuning")[0] == {"field": "seeds", "from": 3, "to": 5}
    assert fix_changes(seeds, {"seeds": 8}, "fine_tuning") == []  # already enough: no change, no fix
    hyper, tech = apply_changes({"learning_rate": 5e-4}, "fine_tuning",
                                [{"field": "technique", "from": "fine_tuning", "to": "lora"}])
    assert tech == "lora" and hyper == {"learning_rate": 5e-4}


def test_revise_makes_fixes_concrete_against_what_ran(kb):
    from rules.engine import get_engine
    from rules.scenario import normalize

    plan = get_engine(kb).consult(normalize(SCENARIO, kb))
    symptoms = [{"id": "loss_nan", "evidence": {"epoch": 2}}]
    out = revise(plan, {"symptoms": symptoms, "technique": "fine_tuning",
                        "hyperparameters": {"learning_rate": 0.1}, "layers": 6}, kb)
    div = next(d for d in out["diagnoses"] if d["pitfall"] == "divergence")
    lr = [c for f in div["fixes"] for c in f["changes"] if c["field"] == "learning_rate"]
    assert lr and all(c["from"] == 0.1 for c in lr)  # what ran, not the plan's 2e-05
    assert all(t["rule"].startswith("diagnosis.") for t in out["trace"])
    # the more-seeds fix is made concrete against the plan's evaluation.seeds
    var = revise(plan, {"symptoms": [{"id": "high_seed_variance", "evidence": {}}]}, kb)
    seeds = [c for d in var["diagnoses"] for f in d["fixes"] for c in f["changes"] if c["field"] == "seeds"]
    assert all(c["from"] == plan["evaluation"]["seeds"] for c in seeds)


def test_revise_without_symptoms_diagnoses_nothing(kb):
    from rules.engine import get_engine
    from rules.scenario import normalize

    plan = get_engine(kb).consult(normalize(SCENARIO, kb))
    assert revise(plan, {"symptoms": []}, kb)["diagnoses"] == []


@pytest.mark.parametrize("sid", ["loss_nan", "below_baseline", "retention_drop", "unknown_tokens"])
def test_every_measured_symptom_gets_a_diagnosis(kb, sid):
    from rules.engine import get_engine
    from rules.scenario import normalize

    plan = get_engine(kb).consult(normalize(SCENARIO, kb))
    out = revise(plan, {"symptoms": [{"id": sid, "evidence": {}}]}, kb)
    assert {d["pitfall"] for d in out["diagnoses"]} & set(kb.symptoms[sid].indicates)


def test_one_report_never_advises_a_change_and_its_opposite():
    from rules.revise import without_contradictions

    down = {"fix": "lower_learning_rate", "changes": [{"field": "learning_rate", "from": 1e-3, "to": 1e-4}]}
    up = {"fix": "raise_learning_rate", "changes": [{"field": "learning_rate", "op": "scale", "factor": 3,
                                                      "from": None, "to": None, "current_unknown": True}]}
    other = {"fix": "more_data", "changes": [{"field": "dataset_size", "op": "scale", "factor": 2}]}
    out = without_contradictions([
        {"pitfall": "underfitting", "confidence": 0.5, "fixes": [up, other]},
        {"pitfall": "divergence", "confidence": 0.9, "fixes": [down]},
    ])
    assert [f["fix"] for f in out[1]["fixes"]] == ["lower_learning_rate"]  # the more confident one stays
    assert [f["fix"] for f in out[0]["fixes"]] == ["more_data"]
    assert out[0]["held_back"][0]["fix"] == "raise_learning_rate"
    assert "divergence" in out[0]["held_back"][0]["why"]


def test_a_log_that_does_not_say_the_run_type_gets_no_fine_tuning_advice(tmp_path):
    import json

    from click.testing import CliRunner

    from cli import main

    f = tmp_path / "metrics.csv"
    rows = ["epoch,loss,val_loss,val_acc"] + [f"{e},1.0986,1.0986,0.333" for e in range(8)]
    f.write_text("\n".join(rows) + "\n")
    r = CliRunner().invoke(main, ["diagnose", str(f), "--num-classes", "3", "--format", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    fixes = {f["fix"] for d in rep["diagnoses"] for f in d["fixes"]}
    assert "failed_run" in {d["pitfall"] for d in rep["diagnoses"]}
    assert "longer_training_small_lr" not in fixes and "check_labels_and_loss" in fixes
    [note] = rep["groups"][0]["notes"]
    assert "pre-trained" in note and "longer_training_small_lr" in note
