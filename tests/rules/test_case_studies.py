"""The course's quiz and case studies as acceptance tests
("Evaluating and Optimizing Transfer Learning": Quick Quiz!, and
"Case Study: Adapting a Sentiment Analysis Model")."""

from __future__ import annotations

import pytest

from rules.base import Candidate, Criterion, Diagnosis, Rejected, SymptomSeen, Technique

LLMS = ("gpt-4", "mistral-large-2")

# A company fine-tunes BERT to classify customer reviews as positive, neutral or negative.
REVIEWS = dict(task="text_classification", num_classes=3, dataset_size=20_000, compute="consumer_gpu",
               source_domain=["wikipedia", "news"], target_domain=["customer reviews"])


# --- Quick Quiz! Question 1: a phone app, real-time image classification.
# Answer B: model size and inference speed (latency) matter most.


@pytest.mark.parametrize("latency_ms", [30, 33, 50, None])
def test_quiz_phone_app_realtime_image_classification(latency_ms, consult, kb, facts_dump):
    plan, engine = consult(task="image_classification", dataset_size=5000, deployment="mobile",
                           latency_ms=latency_ms)
    crit = sorted(engine.facts_of(Criterion), key=lambda f: f["rank"])
    assert crit[0]["name"] == "model size and inference latency", facts_dump(engine)
    assert plan["criteria"][0]["name"] == "model size and inference latency"

    cands = plan["candidates"]
    assert cands, facts_dump(engine)
    for c in cands:
        assert c["params"] <= 30_000_000, f"{c['model']} is too large for a phone\n" + facts_dump(engine)
        assert c["speed"] == "fast", f"{c['model']} is not fast\n" + facts_dump(engine)
        assert c["meets_constraints"]
    names = {f["model"] for f in engine.facts_of(Candidate)}
    assert "vit-large" not in names and not names & set(LLMS), facts_dump(engine)
    assert "vit-large" in {f["model"] for f in engine.facts_of(Rejected)}, facts_dump(engine)
    assert "vit-large" in {r["model"] for r in plan["rejected"]}
    # the course's small, fast model is among them
    assert "resnet-18" in names and any(m.startswith("mobilenet") for m in names)


def test_quiz_llms_never_candidates_for_text_on_a_phone(consult, facts_dump):
    plan, engine = consult(task="text_classification", dataset_size=5000, deployment="mobile", latency_ms=30)
    names = {c["model"] for c in plan["candidates"]}
    assert not names & set(LLMS), facts_dump(engine)
    assert set(LLMS) <= {r["model"] for r in plan["rejected"]}
    assert all(c["params"] <= 30_000_000 for c in plan["candidates"])


# --- Case study, issue 1: loses general sentence structure -> catastrophic forgetting;
# solution: lower the learning rate and freeze early transformer layers.


def test_case_study_forgetting(consult, facts_dump):
    plan, engine = consult(
        **REVIEWS, symptoms=["the model lost its grasp of general sentence structure after fine-tuning"])
    assert [f["value"] for f in engine.facts_of(Technique)] == ["fine_tuning"], facts_dump(engine)
    assert "bert-base" in [c["model"] for c in plan["candidates"]]
    assert [f["id"] for f in engine.facts_of(SymptomSeen)] == ["general_language_loss"], facts_dump(engine)
    top = plan["diagnoses"][0]
    assert top["pitfall"] == "catastrophic_forgetting", facts_dump(engine)
    assert [f["fix"] for f in top["fixes"]][:2] == ["lower_learning_rate", "freeze_early_layers"]
    lr = top["fixes"][0]["changes"][0]
    assert lr["field"] == "learning_rate" and lr["to"] < lr["from"]
    freeze = top["fixes"][1]["changes"][0]
    assert freeze["field"] == "frozen_layers" and freeze["to"] > (freeze["from"] or 0)


# --- Case study, issue 2: pre-trained on Wikipedia and news, reviews are slang and
# informal -> negative transfer; solution: domain adaptation on informal text first.


def test_case_study_negative_transfer(consult, facts_dump):
    plan, engine = consult(**REVIEWS, symptoms=["the model struggles with slang and informal language"])
    diags = sorted(engine.facts_of(Diagnosis), key=lambda f: -f["confidence"])
    assert diags and diags[0]["pitfall"] == "negative_transfer", facts_dump(engine)
    top = plan["diagnoses"][0]
    assert top["pitfall"] == "negative_transfer"
    assert top["fixes"][0]["fix"] == "domain_adaptive_finetuning"
    assert top["fixes"][0]["changes"][0]["to"] == ["intermediate_informal"]


# --- Case study, issue 3: emoji-based sentiment -> domain shift; solution: emoji
# tokenization and fine-tuning on augmented data that includes emoji.


def test_case_study_emoji_domain_shift(consult, facts_dump):
    plan, engine = consult(
        **REVIEWS, symptoms=["customer reviews contain emoji-based sentiment that the model struggles with"])
    top = plan["diagnoses"][0]
    assert top["pitfall"] == "domain_shift", facts_dump(engine)
    fixes = [f["fix"] for f in top["fixes"]]
    assert fixes[0] == "emoji_tokenization"
    assert "augment_with_emoji" in fixes


def test_case_study_all_three_issues_at_once(consult, kb, facts_dump):
    plan, engine = consult(**REVIEWS, symptoms=[
        "general_language_loss", "slang_informal_errors", "emoji_sentiment_missed"])
    pitfalls = [d["pitfall"] for d in plan["diagnoses"]]
    assert set(pitfalls) == {"catastrophic_forgetting", "negative_transfer", "domain_shift"}, facts_dump(engine)
    # domain shift: the emoji symptom's evidence combined with the slang symptom's
    ds = next(d for d in plan["diagnoses"] if d["pitfall"] == "domain_shift")
    w = [kb.symptoms[s].indicates["domain_shift"] for s in ("emoji_sentiment_missed", "slang_informal_errors")]
    assert ds["confidence"] == round(1 - (1 - w[0]) * (1 - w[1]), 3)
    assert ds["confidence"] > max(w)
