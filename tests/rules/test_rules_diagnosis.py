"""Diagnosis rules (rules/diagnosis.py) and free-text symptom matching (rules/reader/symptoms.py)."""

from __future__ import annotations

import pytest
from ruletools import RuleCase

from knowledge import KnowledgeError, get_kb, load
from rules.base import Diagnosis, Evidence
from rules.engine import TransferEngine
from rules.scenario import normalize
from rules.reader.symptoms import SymptomMatchError, match_symptom

BASE = dict(task="text_classification", dataset_size=5000)
KB = get_kb()
W_NAN = KB.symptoms["loss_nan"].indicates["divergence"]


def noisy_or(*symptom_pitfall):
    miss = 1.0
    for sid, pit in symptom_pitfall:
        miss *= 1.0 - KB.symptoms[sid].indicates[pit]
    return round(1.0 - miss, 3)


CASES = [
    RuleCase("diagnosis.symptom_evidence", dict(symptoms=["loss_nan"]), Evidence,
             {"pitfall": "divergence", "symptom": "loss_nan", "weight": W_NAN}, dict(symptoms=[])),
    RuleCase("diagnosis.combine_evidence", dict(symptoms=["loss_nan"]), Diagnosis,
             {"pitfall": "divergence", "confidence": W_NAN}, dict(symptoms=[])),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires(case, rule_fires):
    plan, engine = rule_fires(case.rule, {**BASE, **case.fires}, case.cls, **case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent(case, rule_silent):
    plan, engine = rule_silent(case.rule, {**BASE, **case.silent})
    assert plan["diagnoses"] == []


# --- combining evidence


def test_two_symptoms_of_one_pitfall_combine_as_noisy_or(consult, facts_dump):
    plan, engine = consult(**BASE, symptoms=["val_loss_rising", "train_val_gap"])
    diags = engine.facts_of(Diagnosis)
    expected = noisy_or(("val_loss_rising", "overfitting"), ("train_val_gap", "overfitting"))
    assert [(d["pitfall"], d["confidence"]) for d in diags] == [("overfitting", expected)], facts_dump(engine)
    assert [e["symptom"] for e in plan["diagnoses"][0]["evidence"]] == ["val_loss_rising", "train_val_gap"]


def test_one_symptom_can_support_two_pitfalls(consult, facts_dump):
    plan, engine = consult(**BASE, symptoms=["loss_at_chance"])
    got = sorted((d["pitfall"], d["confidence"]) for d in engine.facts_of(Diagnosis))
    assert got == [("failed_run", noisy_or(("loss_at_chance", "failed_run"))),
                   ("underfitting", noisy_or(("loss_at_chance", "underfitting")))], facts_dump(engine)
    assert [d["pitfall"] for d in plan["diagnoses"]] == ["failed_run", "underfitting"]  # most confident first


def test_combine_evidence_fires_once_per_pitfall(consult, fired, facts_dump):
    plan, engine = consult(**BASE, symptoms=["loss_nan", "loss_exploding", "loss_spikes"])
    assert fired(plan).count("diagnosis.combine_evidence") == 1
    (d,) = engine.facts_of(Diagnosis)
    assert d["confidence"] == noisy_or(("loss_nan", "divergence"), ("loss_exploding", "divergence"),
                                       ("loss_spikes", "divergence")), facts_dump(engine)


def test_diagnosis_below_the_floor_is_left_out(tmp_path):
    (tmp_path / "floor.yaml").write_text(
        "thresholds:\n  - id: diagnosis_min_confidence\n    value: 0.99\n", encoding="utf-8")
    kb2 = load([tmp_path])
    eng = TransferEngine(kb2)
    plan = eng.consult(normalize({**BASE, "symptoms": ["loss_nan"]}, kb2)).to_dict()
    assert eng.facts_of(Evidence) and not eng.facts_of(Diagnosis)
    assert "diagnosis.combine_evidence" in [t["rule"] for t in plan["trace"]]
    assert plan["diagnoses"] == []


def test_measured_symptoms_carry_their_evidence(engine, kb):
    scenario = normalize({**BASE, "symptoms": ["loss_nan"]}, kb)
    plan = engine.consult(scenario, measured=[
        {"id": "unknown_tokens", "evidence": {"unk_rate": 0.4}},
        {"id": "loss_nan", "evidence": {"step": 7}},  # also reported: counted once
    ]).to_dict()
    by_pitfall = {d["pitfall"]: d for d in plan["diagnoses"]}
    assert set(by_pitfall) == {"divergence", "domain_shift"}
    assert by_pitfall["domain_shift"]["evidence"][0]["unk_rate"] == 0.4
    assert [e["symptom"] for e in by_pitfall["divergence"]["evidence"]] == ["loss_nan"]
    assert by_pitfall["divergence"]["evidence"][0]["reported"] == "by the user"


def test_diagnosis_fixes_prefer_the_symptoms_preferred_fixes(consult, kb):
    plan, _ = consult(**BASE, symptoms=["unknown_tokens"])
    (d,) = plan["diagnoses"]
    fixes = [f["fix"] for f in d["fixes"]]
    assert fixes[:2] == kb.symptoms["unknown_tokens"].preferred_fixes
    assert 1 <= len(fixes) <= 4 and len(set(fixes)) == len(fixes)
    assert all(f in kb.symptoms["unknown_tokens"].preferred_fixes + kb.pitfalls["domain_shift"].fixes
               for f in fixes)


# --- free-text symptoms


@pytest.mark.parametrize("text, sid", [
    ("loss_nan", "loss_nan"),
    ("loss nan", "loss_nan"),
    ("Loss-NaN", "loss_nan"),
    ("the loss is nan", "loss_nan"),
    ("the model lost its grasp of general sentence structure after fine-tuning", "general_language_loss"),
    ("the model struggles with slang and informal language", "slang_informal_errors"),
    ("customer reviews contain emoji-based sentiment that the model struggles with", "emoji_sentiment_missed"),
    ("validation loss goes up", "val_loss_rising"),
])
def test_match_symptom(text, sid, kb):
    assert match_symptom(text, kb) == sid


def test_every_symptom_description_and_synonym_matches_its_own_symptom(kb):
    wrong = []
    for sid, s in kb.symptoms.items():
        for phrase in [s.description, *s.synonyms]:
            try:
                got = match_symptom(phrase, kb)
            except KnowledgeError as exc:
                got = f"error: {exc}"
            if got != sid:
                wrong.append((sid, phrase, got))
    assert not wrong


def test_unmatched_text_says_so_without_unrelated_ids(kb):
    with pytest.raises(SymptomMatchError) as info:
        match_symptom("xyzzy plugh", kb, "--symptom")
    msg = str(info.value)
    assert "--symptom" in msg and "names no symptom" in msg and "'xyzzy plugh'" in msg
    assert not any(sid in msg for sid in kb.symptoms)


def test_unknown_symptom_id_without_a_matcher_is_refused(kb):
    with pytest.raises(KnowledgeError, match="symptoms"):
        normalize({**BASE, "symptoms": ["no_such_symptom"]}, kb)


# --- ambiguity: the question that tells two pitfalls apart


def _ambiguous_reading(text="it got worse after fine-tuning"):
    from rules.reader.symptoms import Match, Reading

    r = Reading(text=text)
    r.matches = [Match("source_accuracy_drop", "catastrophic_forgetting", 0.7, "meaning", text),
                 Match("below_baseline", "negative_transfer", 0.69, "meaning", text)]
    r.ambiguous = [{"part": text, "symptoms": ["source_accuracy_drop", "below_baseline"],
                    "pitfalls": ["catastrophic_forgetting", "negative_transfer"], "scores": [0.7, 0.69],
                    "distinction": "forgetting_vs_negative_transfer"}]
    return r


def test_ask_to_distinguish_fires_on_an_ambiguous_reading(kb, facts_dump):
    from rules.base import Clarify
    from rules.engine import get_engine

    reading = _ambiguous_reading()
    scenario = normalize({**BASE, "symptoms": reading.symptoms}, kb)
    eng = get_engine(kb)
    plan = eng.consult(scenario, readings=[reading]).to_dict()
    (c,) = eng.facts_of(Clarify)
    assert c["rule"] == "diagnosis.ask_to_distinguish", facts_dump(eng)
    assert c["distinction"] == "forgetting_vs_negative_transfer"
    assert list(c["pitfalls"]) == ["catastrophic_forgetting", "negative_transfer"]
    (q,) = plan["clarify"]
    assert q["question"] == kb.sections["distinctions"]["forgetting_vs_negative_transfer"].question
    assert [x["symptom"] for x in q["candidates"]] == ["source_accuracy_drop", "below_baseline"]
    ev = {e["symptom"]: e for d in plan["diagnoses"] for e in d["evidence"]}
    assert ev["below_baseline"]["text"] == "it got worse after fine-tuning" and ev["below_baseline"]["read"] == "meaning"


def test_ask_to_distinguish_is_silent_when_both_symptoms_are_stated_plainly(kb, facts_dump):
    from rules.base import Clarify
    from rules.engine import get_engine

    scenario = normalize({**BASE, "symptoms": ["source_accuracy_drop", "below_baseline"]}, kb)
    eng = get_engine(kb)
    plan = eng.consult(scenario).to_dict()
    assert eng.facts_of(Clarify) == [] and plan["clarify"] == [], facts_dump(eng)
    assert "diagnosis.ask_to_distinguish" not in [t["rule"] for t in plan["trace"]]
    assert {d["pitfall"] for d in plan["diagnoses"]} == {"catastrophic_forgetting", "negative_transfer"}
