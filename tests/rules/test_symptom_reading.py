"""Reading free-text symptom descriptions: names, negation, several symptoms, ambiguity,
out-of-scope problems, the word-only path, and accuracy floors on the corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import cli
from knowledge import get_kb
from rules.reader import semantic
from rules.reader.numbers import going_well, pattern_symptoms, whole_text_symptoms
from rules.reader.symptoms import SymptomMatchError, match_symptoms, read_symptoms
from rules.reader.words import split_parts

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
CONSULT = ["consult", "--task", "text_classification", "--dataset-size", "2000", "--no-input"]


def has_semantic() -> bool:
    try:
        semantic.get_encoder()
        return True
    except semantic.SemanticUnavailable:
        return False


needs_semantic = pytest.mark.skipif(not has_semantic(), reason="the semantic matcher's packages are not installed")


@pytest.fixture(scope="module")
def kb():
    return get_kb()


def pitfalls(text, kb):
    return read_symptoms(text, kb).pitfalls


# --- names and common forms resolve directly


@pytest.mark.parametrize("text, sid", [
    ("overfitting", "train_val_gap"), ("Overfit", "train_val_gap"), ("over-fitting", "train_val_gap"),
    ("underfitting", "high_train_loss"), ("divergence", "loss_exploding"),
    ("catastrophic forgetting", "source_accuracy_drop"), ("Catastrophic Forgetting", "source_accuracy_drop"),
    ("negative_transfer", "below_baseline"), ("domain shift", "distribution_gap"),
    ("NaN loss", "loss_nan"), ("exploding gradients", "gradient_explosion"),
    ("CUDA out of memory", "gpu_out_of_memory"), ("OOM", "gpu_out_of_memory"),
    ("class imbalance", "minority_class_missed"), ("label noise", "noisy_labels"),
    ("val_loss_rising", "val_loss_rising"), ("overfiting", "train_val_gap"),
])
def test_names_and_aliases_resolve_without_a_model(text, sid, kb):
    r = read_symptoms(text, kb, semantic=False)
    assert r.symptoms == [sid] and r.matches[0].method == "name"


# --- negation and hedges


def test_a_negated_symptom_is_ruled_out_not_reported(kb):
    r = read_symptoms("the loss is NOT nan, it is fine", kb)
    assert r.symptoms == [] and [m.symptom for m in r.ruled_out] == ["loss_nan"]
    assert match_symptoms("the loss is NOT nan, it is fine", kb) == []


@pytest.mark.parametrize("text, want, ruled_out", [
    ("no OOM anymore after lowering batch size, but now the loss explodes", ["divergence"], "gpu_out_of_memory"),
    ("the loss is no longer nan, but now it predicts only one class", ["failed_run"], "loss_nan"),
    ("never had NaN, the training loss does not decrease", ["underfitting"], "loss_nan"),
])
def test_negation_rules_one_symptom_out_and_keeps_the_other(text, want, ruled_out, kb):
    r = read_symptoms(text, kb)
    assert r.pitfalls == want, r.as_dict()
    assert ruled_out in [m.symptom for m in r.ruled_out]


def test_a_negation_that_states_a_problem_reports_it(kb):
    assert pitfalls("the model does not learn", kb) == ["underfitting"]
    assert split_parts("the loss does not go down")[0][1] == "problem"
    assert split_parts("no nan")[0][1] == "denied"


def test_hedges_are_not_negations(kb):
    assert pitfalls("not sure if this is overfitting", kb) == ["overfitting"]
    assert pitfalls("I don't know why the loss becomes nan", kb) == ["divergence"]


# --- several symptoms


def test_every_symptom_of_a_description_counts(kb):
    assert pitfalls("loss spikes, then it predicts one class", kb) == ["divergence", "failed_run"]
    assert set(pitfalls("out of memory with batch 32, and with batch 4 the loss goes nan", kb)) == {
        "out_of_memory", "divergence"}


@needs_semantic
def test_several_symptoms_reach_the_diagnoses(kb):
    plan = json.loads(CliRunner().invoke(cli.main, [*CONSULT, "--format", "json", "--symptom",
                                                     "loss spikes, then it predicts one class"]).output)
    assert {d["pitfall"] for d in plan["diagnoses"]} == {"divergence", "failed_run"}
    (reading,) = plan["symptom_readings"]
    assert reading["symptoms"] == ["loss_spikes", "majority_class_collapse"]


# --- meaning


@needs_semantic
def test_the_course_domain_shift_example_is_read_by_meaning(kb):
    r = read_symptoms("images from a drone, but the validation set is satellite images", kb)
    assert r.pitfalls[0] == "domain_shift" and any(m.method == "meaning" for m in r.matches)


def test_unmatched_text_gets_an_honest_message(kb):
    with pytest.raises(SymptomMatchError, match="names no symptom this knowledge base knows") as info:
        match_symptoms("how do I install it on windows", kb)
    assert not any(sid in str(info.value) for sid in kb.symptoms)


# --- ambiguity


@needs_semantic
def test_an_ambiguous_description_lists_candidates_and_the_question():
    res = CliRunner().invoke(cli.main, [*CONSULT, "--format", "json", "--symptom", "it got worse after fine-tuning"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    (c,) = plan["clarify"]
    assert {x["pitfall"] for x in c["candidates"]} == {"catastrophic_forgetting", "negative_transfer"}
    assert "original task" in c["question"] and c["why"]["rule"] == "diagnosis.ask_to_distinguish"
    assert [a["symptoms"] for a in c["answers"]] == [["below_baseline"], ["source_accuracy_drop"]]
    assert {d["pitfall"] for d in plan["diagnoses"]} == {"catastrophic_forgetting", "negative_transfer"}


@needs_semantic
def test_a_terminal_consultation_asks_and_goes_on_with_the_answer(monkeypatch):
    monkeypatch.setattr(cli, "on_terminal", lambda: True)
    res = CliRunner().invoke(cli.main, ["consult", "--task", "text_classification", "--dataset-size", "2000",
                                        "--task-similarity", "related", "--domain-similarity", "medium",
                                        "--compute", "cpu", "--deployment", "server", "--latency-ms", "0", "--retain-source", "yes",
                                        "--symptom", "it got worse after fine-tuning"], input="2\n")
    assert res.exit_code == 0, res.output
    assert "worse on the original task" in res.output
    diag = res.output.split("Diagnoses:")[1]
    assert "Catastrophic forgetting" in diag and "Negative transfer" not in diag.split("How your")[0]


# --- out-of-scope problems


def test_out_of_memory_gets_concrete_cited_fixes(kb):
    plan = json.loads(CliRunner().invoke(cli.main, [*CONSULT, "--format", "json", "--symptom",
                                                     "RuntimeError: CUDA out of memory. Tried to allocate 20 MiB"]).output)
    (d,) = plan["diagnoses"]
    assert d["pitfall"] == "out_of_memory"
    fixes = {f["fix"]: f for f in d["fixes"]}
    assert "smaller_batch_gradient_accumulation" in fixes and "mixed_precision" in fixes
    assert fixes["smaller_batch_gradient_accumulation"]["changes"][1] == {
        "field": "gradient_accumulation_steps", "from": None, "to": 4}
    assert all(f["sources"] for f in d["fixes"])


@pytest.mark.parametrize("text, pitfall, fix", [
    ("training is super slow", "slow_training", "mixed_precision"),
    ("a lot of the labels are wrong", "label_noise", "find_label_errors"),
    ("95% of the examples are one class", "class_imbalance", "class_weights"),
])
def test_common_problems_outside_transfer_learning(text, pitfall, fix, kb):
    if not has_semantic() and read_symptoms(text, kb, semantic=False).pitfalls != [pitfall]:
        pytest.skip("needs the semantic matcher")
    assert read_symptoms(text, kb).pitfalls == [pitfall]
    assert fix in kb.pitfalls[pitfall].fixes and kb.pitfalls[pitfall].scope == "practical"


# --- the word-only path and the minimal install


def test_without_the_semantic_packages_the_word_path_answers_and_says_what_is_missing(monkeypatch):
    kb = get_kb()
    from rules.reader import index as mod

    def missing():
        raise semantic.SemanticUnavailable(f"the semantic matcher needs {semantic.NEEDS} (numpy is missing)")

    monkeypatch.setattr(semantic, "get_encoder", missing)
    monkeypatch.setattr(mod, "_INDEX", {})
    r = read_symptoms("the validation loss goes up while the training loss keeps falling", kb)
    assert r.pitfalls == ["overfitting"]
    r = read_symptoms("images from a drone, validation set from satellites", kb)
    assert "semantic matcher needs" in r.note and "tokenizers" in r.note
    with pytest.raises(SymptomMatchError, match="semantic matcher needs"):
        match_symptoms("qwerty asdf zxcv", kb)
    monkeypatch.setattr(mod, "_INDEX", {})


def test_a_consult_on_the_word_path_imports_no_numpy_or_torch():
    probe = ("import sys\nsys.argv=['tlexpert','consult','--task','text_classification','--dataset-size','3000',"
             "'--format','json','--no-input','--symptom','the validation loss goes up']\nimport cli\ntry:\n"
             "    cli.main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch','transformers','pandas','numpy') if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert json.loads(out.stdout)["scenario"]["symptoms"] == ["val_loss_rising"]
    assert out.stderr.strip().splitlines()[-1] == "[]"


@needs_semantic
def test_phrase_embeddings_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("TLEXPERT_CACHE_DIR", str(tmp_path))
    enc = semantic.get_encoder()
    a = semantic.phrase_embeddings(enc, ["loss is nan", "val loss rises"])
    b = semantic.phrase_embeddings(enc, ["loss is nan", "val loss rises", "an overlay phrase"])
    files = list((tmp_path / "symptom-embeddings").glob("*.npy"))
    assert len(files) == 2 and a.shape == (2, 384) and b.shape == (3, 384)
    assert abs(float(a[0] @ b[0]) - 1.0) < 1e-5
    again = semantic.phrase_embeddings(enc, ["loss is nan", "val loss rises"])
    assert (again == a).all()


# --- accuracy on the corpus (floors the current matcher meets; BENCHMARKS.md has the figures)


def corpus(split):
    return yaml.safe_load((DATA / f"symptom_corpus_{split}.yaml").read_text())["items"]


def top1(items, kb):
    right = 0
    for it in items:
        got = pitfalls(it["text"], kb) if it["text"] else []
        want = set(it["pitfalls"])
        right += (not want and not got) or (bool(got) and got[0] in want)
    return right / len(items)


def test_the_corpus_is_large_and_labelled_with_known_pitfalls(kb):
    pub, held = corpus("public"), corpus("heldout")
    assert len(pub) + len(held) >= 200 and len(held) >= 60
    assert {p for it in pub + held + corpus("field") for p in it["pitfalls"]} <= set(kb.pitfalls)


@needs_semantic
@pytest.mark.parametrize("split, floor", [("public", 0.95), ("heldout", 0.90), ("field", 0.64)])
def test_corpus_top1_accuracy_floor(split, floor, kb):
    assert top1(corpus(split), kb) >= floor


def test_word_gates_of_the_patterns_never_change_a_reading(kb, monkeypatch):
    """Each pattern's ``need`` words are a shortcut for speed only: with every gate open, every
    description of the corpus reads the same."""
    from rules.reader import symptoms, words

    texts = [it["text"] for split in ("public", "heldout", "field") for it in corpus(split)]
    gated = [symptoms.read_symptoms(t, kb, semantic=False).pitfalls for t in texts]
    monkeypatch.setattr(words._lazy, "_may_match", lambda self, text: True)
    assert [symptoms.read_symptoms(t, kb, semantic=False).pitfalls for t in texts] == gated


@pytest.mark.parametrize("text, sid", [
    ("training loss went from 0.7 to 1e6 within one epoch", "loss_exploding"),
    ("loss 2.3 -> 45000 after a few hundred steps", "loss_exploding"),
    ("loss only decreased from 0.7 to 0.6 after 5 epochs", "high_train_loss"),
    ("fraud is 0.17% of transactions and the model never flags it", "minority_class_missed"),
    ("95% of samples are negative", "minority_class_missed"),
    ("tr loss \u2193 val loss \u2191", "val_loss_rising"),
    ("val loss goes up while train loss goes down", "val_loss_rising"),
    ("no gap between train and val, both bad", "high_train_loss"),
    ("the acc is not change during training, always same", "metric_constant"),
    ("the loss jumps from ~.09 to ~.69 and then stays at ~.69", "loss_at_chance"),  # ln 2, two classes
    ("loss stuck at 1.0986 from epoch 2 on", "loss_at_chance"),  # ln 3
    ("validate accurancy dont't improve. always 50%", "metric_constant"),
    ("val acc plateaus at 0.333 on three classes", "metric_constant"),
    ("works great on our lab photos but accuracy tanks on customer phone pictures", "input_conditions_differ"),
    ("good on the validation set but bad on real-world data", "distribution_gap"),
    ("works great on the training set but tanks on the validation set", "train_val_gap"),
    ("after 3 epochs it outputs 'positive' for every single review", "majority_class_collapse"),
])
def test_numbers_and_shapes_state_symptoms_without_a_model(text, sid):
    assert sid in pattern_symptoms(text) + whole_text_symptoms(text), pattern_symptoms(text)


@pytest.mark.parametrize("text", [
    "loss stuck at 0.45 after epoch 3",        # not ln(k) for any class count
    "accuracy stays around 0.98 all training",  # high and steady: no chance level
    "the loss went from 0.7 to 0.3",            # a healthy decrease
])
def test_numbers_that_state_no_failure(text):
    assert not {"loss_at_chance", "metric_constant", "loss_exploding"} & set(pattern_symptoms(text) + whole_text_symptoms(text))


@pytest.mark.parametrize("text, well", [
    ("loss went down nicely and val acc 0.91, looks good", True),
    ("everything works fine on the dev set", True),
    ("looks good but the loss is nan", False),
    ("the loss looks fine, only the val accuracy drops", False),
])
def test_a_part_that_only_reports_progress_is_read_as_healthy_by_words(text, well):
    assert going_well(text) is well


def test_a_problem_described_as_fixed_leaves_nothing_to_diagnose(kb):
    text = "the loss became NaN after 200 steps. After lowering the learning rate it works fine."
    r = read_symptoms(text, kb, semantic=False)
    assert r.pitfalls == [] and "fixed" in r.note
    # the same problem, still there, is read
    assert read_symptoms("the loss became NaN after 200 steps. I tried lowering the learning rate.", kb,
                         semantic=False).pitfalls == ["divergence"]


@pytest.mark.parametrize("text, want, ruled_out", [
    # a fix that left another problem: the fixed one is ruled out, the other read
    ("fixed the nan by lowering lr to 1e-5, but now val acc stuck at 0.5 on my 2 classes", ["failed_run"], "loss_nan"),
    ("After switching to fp32 the NaNs went away but now it overfits after epoch 3", ["overfitting"], "loss_nan"),
    # "fixed the seed" holds a value constant; it fixes nothing
    ("I fixed the seed and the loss still goes nan", ["divergence"], None),
])
def test_a_part_that_says_a_symptom_went_away_rules_it_out(text, want, ruled_out, kb):
    r = read_symptoms(text, kb, semantic=False)
    assert r.pitfalls == want, r.as_dict()
    assert ruled_out is None or ruled_out in [m.symptom for m in r.ruled_out]


@pytest.mark.parametrize("text", [
    "change the batchsize fixed it. thanks.", "got rid of the OOM with gradient checkpointing",
    "Done. After I set different lr for vision_encoder and llm, the loss becomes normal.",
    "I restarted with a new command, and now we're good to go. Thank you.",
])
def test_a_description_of_a_fix_names_nothing_and_says_so(text, kb):
    r = read_symptoms(text, kb, semantic=False)
    assert r.pitfalls == [] and "fixed" in r.note
    with pytest.raises(SymptomMatchError, match="says the problem was fixed"):
        match_symptoms(text, kb)


@pytest.mark.parametrize("text, pitfall", [
    ("In the case of transfer learning I get 85%, and building the network from scratch I get 89%",
     "negative_transfer"),
    ("the performance is not so good comparing to rnn based models", "negative_transfer"),
    ("accuracy can reach 99.9% each epoch, however, AUC/ROC value will only 76%", "class_imbalance"),
    ("Epoch 39/400 ... loss: 2.3029 - acc: 0.0993 - val_loss: 2.3026 - val_acc: 0.1000", "failed_run"),
    ("It works excellently on test videos, but it does not work at all on random video", "domain_shift"),
    ("I usually trained with pics at daytime, but when I use that model to detect person at night, I got many "
     "undetected results", "domain_shift"),
    ("it can detect the new entity however it loses the ability to detect money and date", "catastrophic_forgetting"),
    ("I have tried early stopping to reduce overfilling", "overfitting"),
    ("the gpu utilization is not stable from 0% to 90%, most of the time it is 0%", "slow_training"),
    ("loss starts exploding after 2200 tokens", "divergence"),
])
def test_sentence_level_readings_of_real_descriptions(text, pitfall, kb):
    assert read_symptoms(text, kb, semantic=False).pitfalls[:1] == [pitfall]


def test_scores_beside_scratch_and_transfer_decide_negative_transfer(kb):
    worse = read_symptoms("pretrained resnet gets 71%, a small cnn from scratch gets 78%", kb)
    better = read_symptoms("pretrained resnet gets 78%, a small cnn from scratch gets 71%", kb)
    assert worse.pitfalls[:1] == ["negative_transfer"]
    assert "negative_transfer" not in better.pitfalls and "below_baseline" in [m.symptom for m in better.ruled_out]


def test_a_metrics_line_is_read_by_its_numbers_only(kb):
    r = read_symptoms("Epoch 5/5 loss: 0.3120 - accuracy: 0.8750 - val_loss: 0.4012 - val_accuracy: 0.8300", kb)
    assert r.pitfalls == [] and "diagnose" in r.note


@needs_semantic
def test_a_reading_by_meaning_needs_the_symptoms_evidence_words(kb):
    # "the performance gets worse" reads close to "training is slow", but says nothing of time
    r = read_symptoms("when I fine-tune the model, the performance gets worse", kb)
    assert "slow_training" not in r.pitfalls, r.as_dict()


@needs_semantic
def test_context_around_a_symptom_is_not_read_as_one(kb):
    r = read_symptoms("I'm trying to train using a pre-trained model on my own data ... but my validation "
                      "loss keeps going up for some reason", kb)
    assert r.pitfalls == ["overfitting"], r.as_dict()


@pytest.mark.parametrize("text", [
    "we use 90% of the data for training", "90% of the data is the train split", "50% of the data is positive",
    "val loss from 0.5 to 0.45", "accuracy went from 80% to 82%", "my accuracy is the same as yesterday",
    "Training loss becomes constant at around 12", "loss keeps decreasing",
])
def test_numbers_that_state_no_symptom_name_none(text):
    assert pattern_symptoms(text) == [], text


def test_a_loss_said_to_go_down_is_progress_not_a_symptom_read_by_meaning(kb):
    # sentence embeddings blur direction: "training loss goes down" lies near "training loss stays high"
    r = read_symptoms("training loss goes down, but evaluation loss goes up", kb)
    assert r.symptoms == ["val_loss_rising"], [(m.symptom, m.method) for m in r.matches]
    assert going_well("the training loss goes down") and not going_well("the training loss goes down very slowly")
