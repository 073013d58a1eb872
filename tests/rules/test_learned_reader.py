"""The calibrated reader (rules.reader.learned): a probability per reading, a classifier for what the
patterns read by meaning or missed, and abstention; the general readings added beside it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from knowledge import get_kb
from rules.reader import learned
from rules.reader.symptoms import SymptomMatchError, match_symptoms, read_symptoms


@pytest.fixture(scope="module")
def kb():
    return get_kb()


def read(text, kb):
    sink: list = []
    match_symptoms(text, kb, reading_sink=sink)
    return sink[0]


def test_the_shipped_model_was_fitted_on_the_corpus_as_it_is():
    """Editing a corpus file without refitting (python -m rules.reader.fit) leaves a model that no
    longer says what it was measured on."""
    m = learned.Model.load()
    assert m is not None
    assert m.meta["corpus"] == learned.corpus_digest()
    assert m.meta["items"] == len(learned.load_corpus())
    assert 0.0 < m.abstain_below < 1.0 and m.temperature > 0
    assert {"name", "numbers", "words", "meaning"} <= set(m.certain)


@pytest.mark.parametrize("text, path, pitfall", [
    ("the loss went from 2.3 to about 96", "numbers", "divergence"),
    ("many of the labels in my dataset are wrong", "words", "label_noise"),
])
def test_a_certain_path_prints_its_precision_on_fresh_descriptions(kb, text, path, pitfall):
    """No model runs for a reading by numbers or words; it carries its path's precision counted on
    descriptions the patterns were not written against, not the 0.99 of the corpus they were written on."""
    j = read(text, kb).judgement
    assert j["by"] == f"path:{path}" and not j["abstain"]
    want = learned.get_model().certain[path]
    assert j["candidates"][0] == {"pitfall": pitfall, "probability": round(want["p"], 3)}
    assert want["counted_on"] == "fresh" and want["p"] < 0.9


@pytest.mark.parametrize("text,pitfall", [
    ("Starting from the ImageNet checkpoint gives 71% but a randomly initialised ResNet reaches 78%",
     "negative_transfer"),
    ("Every single test image gets labelled as 'cat'", "failed_run"),
    ("the loss shoots up and keeps climbing", "divergence"),
    ("the loss plateaus at a high value", "underfitting"),
    ("the gap between training and validation accuracy slowly widens", "overfitting"),
    ("I keep getting 'gradient exploded' errors", "divergence"),
    ("the loss went from 2.3 to about 96", "divergence"),
    ("loss: 0.0213 - accuracy: 0.9921 - val_loss: 1.8 - val_accuracy: 0.5912", "overfitting"),
    ("After fine-tuning on my hospital's X-rays the model is great on them but the accuracy on the original test "
     "photos dropped from 90% to 60%", "catastrophic_forgetting"),
])
def test_real_phrasings_are_read_as_an_engineer_would(kb, text, pitfall):
    """The issue's examples: the right pitfall first, answered (not abstained), with the calibrated probability
    ranking it first (how sure is measured, not set: a text like the 'slowly widens' one is right about half the
    time on fresh descriptions, and says so)."""
    r = read(text, kb)
    assert r.pitfalls[0] == pitfall
    j = r.judgement
    assert j and not j["abstain"] and j["candidates"][0]["pitfall"] == pitfall
    assert 0.0 < j["candidates"][0]["probability"] <= 1.0
    assert all(c["probability"] <= j["candidates"][0]["probability"] for c in j["candidates"][1:])


def test_words_scattered_over_a_sentence_are_not_a_short_phrasing(kb):
    """"training ... slowly" is not "training is slow" when the words lie apart and say something else."""
    assert "slow_training" not in read_symptoms("the gap between training and validation accuracy slowly widens",
                                                kb).pitfalls
    assert read_symptoms("training has been extremely slow", kb).pitfalls == ["slow_training"]


def test_a_question_alone_is_not_an_observation(kb):
    with pytest.raises(SymptomMatchError, match="only asks whether"):
        match_symptoms("is my model overfitting?", kb)
    # beside what was seen, the question's suspicion still counts
    r = read("the validation loss rises after epoch 3 while the training loss keeps falling. Is it overfitting?", kb)
    assert r.pitfalls[0] == "overfitting"


def test_a_description_in_another_script_is_told_which_language_is_read(kb):
    # Chinese with no term of the field's glossary, and a script the glossary does not cover
    with pytest.raises(SymptomMatchError, match="CJK script.*English.*glossary"):
        match_symptoms("这是一个完全无关的句子", kb)
    with pytest.raises(SymptomMatchError, match="Cyrillic script"):
        match_symptoms("потеря на валидации растёт", kb)


@pytest.mark.parametrize("text, pitfall", [
    # "in the results the training loss falls steadily but the evaluation loss keeps rising: how do I fix it?"
    ("实验结果中，训练的loss是稳步下降的，但是评估loss会不断上升，这种情况应该怎么解决呢？", "overfitting"),
    # "while training the CPU is at 100% and the GPU utilisation is low: why?"
    ("训练时，cpu 占用100%，gpu占用较低是什么原因？", "slow_training"),
    # "CUDA out of memory on a 16 GB T4 while fine-tuning"
    ("我在 16GB 的 T4 上微调，一直显存不足", "out_of_memory"),
])
def test_a_chinese_description_is_read_through_the_glossary(kb, text, pitfall):
    r = read(text, kb)
    assert r.read_as and r.text == text
    assert r.pitfalls and r.pitfalls[0] == pitfall, (r.read_as, r.pitfalls)


def test_the_glossary_is_knowledge_an_overlay_extends(kb, tmp_path):
    from rules.reader.numbers import glossed

    text = "出现了模式崩溃"  # "mode collapse appeared": no term of the shipped glossary
    assert glossed(text, kb) is None
    (tmp_path / "vocabulary.yaml").write_text(
        'vocabulary:\n  - {id: zh_mode_collapse, gloss: "it predicts one class for every input", words: ["模式崩溃"], '
        "sources: [goodfellow2016dl_zh]}\n", encoding="utf-8")
    overlaid = get_kb([tmp_path])
    assert glossed(text, overlaid) == "it predicts one class for every input"


def test_nonsense_still_names_nothing_rather_than_a_guess(kb):
    with pytest.raises(SymptomMatchError, match="names no symptom"):
        match_symptoms("xyzzy plugh", kb)


def test_below_the_threshold_the_reader_says_it_is_not_sure(kb, monkeypatch):
    """A reading by meaning whose calibrated probability is under the model's abstention threshold is
    refused with its candidates and what would settle it, not turned into a diagnosis."""
    m = learned.get_model()
    strict = dataclasses.replace(m, abstain_below=0.999)
    monkeypatch.setitem(learned._MODEL, "m", strict)
    text = "the model trained on studio photos fails on phone pictures taken outside"
    assert read_symptoms(text, kb).matches[0].method == "meaning"
    with pytest.raises(SymptomMatchError) as exc:
        match_symptoms(text, kb)
    msg = str(exc.value)
    assert msg.startswith("Not sure what --symptom") and "domain shift (" in msg and "which split" in msg


def test_the_probability_reaches_the_plan_and_weighs_the_evidence(kb):
    from click.testing import CliRunner

    from cli import main

    r = CliRunner().invoke(main, ["consult", "--task", "image_classification", "--dataset-size", "2000",
                                  "--no-input", "--format", "json", "--symptom",
                                  "the model trained on studio photos fails on phone pictures taken outside"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    [reading] = plan["symptom_readings"]
    p = reading["judgement"]["candidates"][0]["probability"]
    assert reading["judgement"]["candidates"][0]["pitfall"] == "domain_shift" and 0.5 < p <= 1.0
    diag = next(d for d in plan["diagnoses"] if d["pitfall"] == "domain_shift")
    assert diag["confidence"] <= p + 1e-9  # the evidence counts as much as the reading is sure of it


def test_refitting_on_a_corpus_gives_a_model_that_judges(kb):
    """fit_arrays on a small corpus with made-up embeddings: a usable model, routes fitted or left out."""
    import numpy as np

    items = learned.load_corpus()[::4]
    outs = [learned.reader_output(read_symptoms(it["text"], kb)) for it in items]
    x = np.random.default_rng(0).normal(size=(len(items), 8))
    content = learned.fit_arrays(items, outs, x)
    m = learned.Model.from_content(content)
    j = learned.judge_output({"pitfalls": [], "methods": []}, lambda: x[0], m)
    assert j.by == "route:nothing" and j.candidates[0][0] in m.classes
    assert all(0.0 <= p <= 1.0 for _, p in j.candidates) and sum(p for _, p in j.candidates) <= 1.0 + 1e-6
    assert j.candidates[0][1] >= max(p for _, p in j.candidates[1:])  # the answer given is the most probable
    with pytest.raises(ValueError, match="two sources"):
        learned.fit_arrays([dict(it, group="one") for it in items[:10]], outs[:10], x[:10])


# --- what the text says is already in place shapes the fixes


def test_settings_the_text_states_are_read_and_negations_are_not():
    from rules.reader.numbers import stated_settings

    assert stated_settings("I already use batch size 1, lr=3e-5 and fp16, max_length 512") == {
        "batch_size": 1, "learning_rate": 3e-5, "precision": "bf16-mixed", "max_length": 512}
    assert stated_settings("trained without fp16, batches of 16") == {"batch_size": 16}
    assert stated_settings("the loss explodes") == {}


def _fixes(text):
    from click.testing import CliRunner

    from cli import main

    r = CliRunner().invoke(main, ["consult", "--task", "text_classification", "--dataset-size", "5000",
                                  "--compute", "consumer_gpu", "--no-input", "--format", "json", "--symptom", text])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    return plan, [f["fix"] for d in plan["diagnoses"] for f in d["fixes"]]


def test_a_fix_the_user_already_applied_is_not_offered():
    plan, fixes = _fixes("I already use batch size 1 and fp16 and still run out of memory")
    assert "smaller_batch_gradient_accumulation" not in fixes and "mixed_precision" not in fixes
    assert fixes[0] == "gradient_checkpointing"
    assert plan["diagnoses"][0]["stated"] == {"batch_size": 1, "precision": "bf16-mixed"}
    _, plain = _fixes("training runs out of memory")
    assert plain[0] == "smaller_batch_gradient_accumulation"


def test_an_idle_gpu_points_at_the_input_pipeline_first():
    plan, fixes = _fixes("the GPU is nearly idle during training")
    assert plan["diagnoses"][0]["pitfall"] == "slow_training" and fixes[0] == "faster_input_pipeline"


def test_a_plain_loss_going_up_is_asked_about_and_a_steep_one_is_divergence():
    """"The loss goes up" fits divergence and overfitting (the knowledge base's distinction asks which loss);
    the training loss going up, or any loss shooting up, is divergence."""
    from click.testing import CliRunner

    from cli import main

    def consult(text):
        r = CliRunner().invoke(main, ["consult", "--task", "text_classification", "--dataset-size", "5000",
                                      "--no-input", "--format", "json", "--symptom", text])
        assert r.exit_code == 0, r.output
        return json.loads(r.output)

    plan = consult("the loss goes up")
    assert [c["distinction"] for c in plan["clarify"]] == ["divergence_vs_overfitting"]
    for text in ("the loss shoots up and keeps climbing", "the training loss keeps increasing"):
        plan = consult(text)
        assert not plan["clarify"] and plan["diagnoses"][0]["pitfall"] == "divergence", text


def test_the_extractors_words_come_from_the_knowledge_base_and_an_overlay_extends_them(tmp_path):
    """knowledge/data/vocabulary.yaml holds the extractors' words; a team's overlay adds its own."""
    from click.testing import CliRunner

    from cli import main
    from rules.reader.words import word_pattern

    assert word_pattern("go up") == r"go\s+up" and word_pattern("increas*") == r"increas\w*"
    (tmp_path / "vocab.yaml").write_text(
        'vocabulary:\n  - id: steep\n    words: ["shoot up", "shoots up", "blow up", "blew up", "explod*", "balloon*"]\n'
        '    reason: "our team says a loss balloons"\n')

    def read_with(*extra):
        r = CliRunner().invoke(main, [*extra, "consult", "--task", "text_classification", "--dataset-size", "5000",
                                      "--no-input", "--format", "json", "--symptom", "the loss balloons after epoch 2"])
        assert r.exit_code == 0, r.output
        (reading,) = json.loads(r.output)["symptom_readings"]
        return reading

    assert read_with()["judgement"]["by"] != "path:numbers"  # the built-in words do not know it
    reading = read_with("--knowledge", str(tmp_path))
    assert reading["symptoms"] == ["loss_exploding"] and reading["judgement"]["by"] == "path:numbers"
    # the built-in knowledge base reads as before once the overlay is gone
    assert read_symptoms("the loss shoots up", get_kb(), semantic=False).pitfalls == ["divergence"]

