import json

import pytest

from harness.training.data import DataError, check_trainable, has_emoji, load_text, make_reviews, stratified_split


def test_load_csv_and_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text('text,label\n"good, really",pos\nbad,neg\n')
    d = load_text(tmp_path / "a.csv")
    assert d.texts == ["good, really", "bad"] and d.classes == ["neg", "pos"] and d.y == [1, 0]
    (tmp_path / "b.jsonl").write_text(json.dumps({"t": "x", "l": "a"}) + "\n" + json.dumps({"t": "y", "l": "b"}) + "\n")
    d = load_text(tmp_path / "b.jsonl", "t", "l")
    assert d.labels == ["a", "b"]


def test_missing_column_names_file_and_columns(tmp_path):
    (tmp_path / "a.csv").write_text("sentence,label\nhi,pos\n")
    with pytest.raises(DataError, match=r"'text' column of .*a.csv is missing. Got columns sentence, label"):
        load_text(tmp_path / "a.csv")


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        load_text(tmp_path / "nope.csv")
    (tmp_path / "b.jsonl").write_text('{"text": "a", "label": "x"}\n{oops\n')
    with pytest.raises(DataError, match=r"b.jsonl:2: malformed JSON"):
        load_text(tmp_path / "b.jsonl")


def test_single_class_refused(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\na,pos\nb,pos\n")
    with pytest.raises(DataError, match="single class"):
        check_trainable(load_text(tmp_path / "a.csv"), "--train")


def test_unknown_label_in_test_file(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\na,zzz\n")
    with pytest.raises(DataError, match="not among the training classes"):
        load_text(tmp_path / "t.csv", classes=["neg", "pos"])


def test_reviews_generator_is_deterministic_balanced_and_has_emoji():
    a, b = make_reviews(300, seed=1), make_reviews(300, seed=1)
    assert a.texts == b.texts and a.labels == b.labels
    assert a.classes == ["negative", "neutral", "positive"]
    share = sum(map(has_emoji, a.texts)) / len(a)
    assert 0.25 < share < 0.45
    assert min(a.labels.count(c) for c in a.classes) > 70


def test_stratified_split_keeps_class_shares():
    d = make_reviews(300)
    tr, te = stratified_split(d, 0.2, seed=0)
    assert len(te) == 60 and len(tr) == 240
    assert set(tr.texts).isdisjoint(set(te.texts)) or len(set(tr.texts) & set(te.texts)) < 20
    assert abs(te.labels.count("positive") / 60 - d.labels.count("positive") / 300) < 0.05


def test_numeric_labels_are_one_class_per_number_and_missing_labels_are_refused(tmp_path):
    """1, 1.0 and "1" are one class (pandas writes integer labels as 1.0 once a column holds a NaN); "nan",
    "NaN", "null" mark a missing label and are refused by line, never taken as a class."""
    from harness.training.data import DataError, load_text

    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 1.0}\n{"text": "c", "label": "0"}\n'
                 '{"text": "d", "label": "0.0"}\n')
    d = load_text(f)
    assert d.classes == ["0", "1"] and d.labels == ["1", "1", "0", "0"]
    g = tmp_path / "g.csv"
    g.write_text("text,label\na,pos\nb,1\n")  # a column with words keeps its labels as written
    assert sorted(load_text(g).classes) == ["1", "pos"]
    for missing in ("nan", "NaN", "null"):
        h = tmp_path / "h.csv"
        h.write_text(f"text,label\na,pos\nb,{missing}\n")
        with pytest.raises(DataError, match=r"h.csv:3: .*missing label"):
            load_text(h)


def test_the_run_holds_out_what_the_plan_states(kb):
    """The plan's protocol shares are what the run splits: 60/20/20 for a classifier (whatever is not
    given as a file), a cap for large data, 80/10/10 for a causal LM; the time estimate counts the same."""
    from harness.training.common import held_out
    from harness.training.lm_run import split_examples
    from knowledge.estimates import holdout_counts
    from rules.engine import get_engine
    from rules.scenario import normalize

    plan = get_engine(kb).consult(normalize({"task": "text_classification", "dataset_size": 1000}, kb))
    ev = plan.evaluation
    assert (ev.validation_share, ev.test_share, ev.holdout_max) == (0.2, 0.2, 0) and "60% training" in ev.protocol

    def split(data, fraction, seed):
        k = round(len(data) * fraction)
        return data[k:], data[:k]

    train, val, test = held_out(list(range(1000)), None, None, ev, split)
    assert (len(train), len(val), len(test)) == (600, 200, 200)
    train, val, test = held_out(list(range(1000)), None, ["given"], ev, split)  # a --test file: only validation
    assert (len(train), len(val), test) == (800, 200, ["given"])

    big = get_engine(kb).consult(normalize({"task": "text_classification", "dataset_size": 200_000}, kb))
    assert big.evaluation.holdout_max == kb.threshold("large_holdout_examples")
    assert holdout_counts(200_000, 0.2, 0.2, big.evaluation.holdout_max) == (180_000, 10_000, 10_000)

    lm = get_engine(kb).consult(normalize({"task": "text_generation", "dataset_size": 1000}, kb))
    shares = (lm.evaluation.validation_share, lm.evaluation.test_share)
    assert shares == (0.1, 0.1)
    tr, va, te = split_examples(list(range(100)), shares)
    assert (len(tr), len(va), len(te)) == (80, 10, 10)


def test_the_run_truncates_text_where_the_plan_estimated_it(kb):
    """A run's tokens per input are what the plan's memory estimate assumed: the scenario's sequence_length,
    else the knowledge base's default for the task (a plan file without it: the classifier default)."""
    from harness.commands import run_max_length
    from rules.engine import get_engine
    from rules.scenario import normalize

    def plan(**fields):
        return get_engine(kb).consult(normalize({"dataset_size": 2000, **fields}, kb))

    assert run_max_length(kb, plan(task="text_classification")) == kb.threshold("sequence_tokens")
    assert run_max_length(kb, plan(task="text_classification", sequence_length=300)) == 300
    assert run_max_length(kb, plan(task="text_generation")) == kb.threshold("generation_sequence_tokens")
    older = plan(task="text_classification").changed({"memory": {"gb": 8}})
    assert run_max_length(kb, older) == kb.threshold("sequence_tokens")
