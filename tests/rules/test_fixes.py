"""Fixes as concrete plan edits (rules/fixes.py), on values small enough to check by hand."""

from __future__ import annotations

import pytest

from knowledge.schema import Change, Fix
from rules.fixes import apply_changes, concrete_fixes, fix_changes, format_change


def fix(*changes, applies_to=()):
    return Fix(id="f", description="d", changes=[Change(*c) for c in changes], sources=["x"],
               applies_to=list(applies_to))


@pytest.mark.parametrize("change, hyper, expected", [
    (("learning_rate", "scale", 0.1), {"learning_rate": 2e-5}, 2e-6),
    (("learning_rate", "at_most", 1e-5), {"learning_rate": 2e-5}, 1e-5),
    (("weight_decay", "at_least", 0.01), {"weight_decay": 1e-4}, 0.01),
    (("weight_decay", "at_least", 0.01), {}, 0.01),
    (("unfreeze", "set", "gradual"), {"unfreeze": "none"}, "gradual"),
    (("augmentation", "append", "emoji"), {"augmentation": ["standard"]}, ["standard", "emoji"]),
    (("augmentation", "append", "emoji"), {}, ["emoji"]),
    (("frozen_layers", "freeze_fraction", 0.5), {"frozen_layers": 0}, 6),
    (("frozen_layers", "freeze_fraction", 0.5), {"frozen_layers": 6}, 9),   # already half: half the rest
])
def test_ops(change, hyper, expected):
    (ch,) = fix_changes(fix(change), hyper, "fine_tuning", layers=12)
    assert ch == {"field": change[0], "from": hyper.get(change[0]), "to": expected}


@pytest.mark.parametrize("change, hyper", [
    (("learning_rate", "at_most", 1e-3), {"learning_rate": 2e-5}),
    (("augmentation", "append", "emoji"), {"augmentation": ["emoji"]}),
    (("frozen_layers", "freeze_fraction", 0.5), {"frozen_layers": 11}),  # one layer must keep training
    (("learning_rate", "scale", 0.1), {}),
])
def test_a_fix_that_changes_nothing_yields_no_edit(change, hyper):
    assert fix_changes(fix(change), hyper, "fine_tuning", layers=12) == []


def test_applies_to_limits_the_techniques():
    f = fix(("technique", "set", "lora"), applies_to=["fine_tuning"])
    assert fix_changes(f, {}, "feature_extraction") == []
    assert fix_changes(f, {}, "fine_tuning") == [{"field": "technique", "from": "fine_tuning", "to": "lora"}]


def test_apply_changes_returns_a_copy():
    hyper = {"learning_rate": 2e-5}
    new, tech = apply_changes(hyper, "fine_tuning", [{"field": "learning_rate", "from": 2e-5, "to": 2e-6},
                                                     {"field": "technique", "from": "fine_tuning", "to": "lora"}])
    assert new == {"learning_rate": 2e-6} and tech == "lora" and hyper == {"learning_rate": 2e-5}


def test_format_change():
    assert format_change({"field": "frozen_layers", "from": 6, "to": 9}, 12) == \
        "freeze: first 6 of 12 layers → first 9 of 12 layers"
    assert format_change({"field": "learning_rate", "from": 2e-5, "to": 2e-6}) == "learning_rate: 2e-05 → 2e-06"


def test_concrete_fixes_skip_no_ops_and_keep_order(kb):
    hyper = {"learning_rate": 2e-5, "frozen_layers": 0, "augmentation": ["standard"]}
    out = concrete_fixes(kb, ["add_weight_decay", "lower_learning_rate", "lower_learning_rate",
                              "data_augmentation", "freeze_early_layers"], hyper, "fine_tuning", 12, limit=3)
    assert [f["fix"] for f in out] == ["add_weight_decay", "lower_learning_rate", "freeze_early_layers"]
    assert all(f["sources"] and f["summary"] for f in out)


def test_scaling_an_integer_hyperparameter_keeps_it_an_integer(kb):
    (ch,) = fix_changes(kb.fixes["more_epochs"], {"epochs": 10}, "fine_tuning", 12)
    assert ch["to"] == 20 and isinstance(ch["to"], int)


def test_emoji_fixes_are_for_text_only(consult):
    plan, _ = consult(task="image_classification", dataset_size=3000, symptoms=["unknown_tokens"])
    offered = {f["fix"] for d in plan["diagnoses"] for f in d["fixes"]}
    offered |= {m["fix"] for r in plan["risks"] for m in r["mitigations"]}
    assert not offered & {"emoji_tokenization", "emoji_to_text", "augment_with_emoji"}
    plan, _ = consult(task="text_classification", dataset_size=3000, symptoms=["unknown_tokens"])
    assert plan["diagnoses"][0]["fixes"][0]["fix"] == "emoji_tokenization"


def test_an_adapters_rate_is_never_cut_below_its_own_floor(consult):
    """LoRA trains at ~10x full fine-tuning's rate: a 10x cut from 2e-4 stops at 1e-4, not 2e-5; full
    fine-tuning keeps the course's 1e-5 floor."""
    lm, _ = consult(task="text_generation", dataset_size=60000, compute="consumer_gpu", gpu_memory_gb=24,
                    retain_source="yes")
    cuts = [c for r in lm["risks"] for m in r["mitigations"] for c in m["changes"] if c["field"] == "learning_rate"]
    assert lm["technique"]["choice"] == "lora" and cuts and all(c["to"] >= 1e-4 for c in cuts), cuts


def test_the_informal_text_stage_is_offered_only_for_informal_text(consult):
    legal, _ = consult(task="ner", language="german", dataset_size=3000, domain_similarity="low",
                       target_domain=["legal", "contracts"])
    tweets, _ = consult(task="text_classification", dataset_size=3000, domain_similarity="low",
                        target_domain=["tweets", "informal"])

    def offered(plan):
        return {m["fix"] for r in plan["risks"] for m in r["mitigations"]}
    assert "domain_adaptive_finetuning" not in offered(legal)
    assert "domain_adaptive_finetuning" in offered(tweets)
