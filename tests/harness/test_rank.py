"""rank-models end to end on tiny real models: loading, scoring, unloadable candidates,
resume from finished candidates, the output formats and the plot, consult --data."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from harness.ranking.rank import RankError, class_warnings, rank_models, resolve_candidate
from harness.ranking.scoring import layer_features, result_file, score_layers
from harness.training.data import TextData
from knowledge import get_kb

POS = "love great awesome happy best good lit fire".split()
NEG = "broke worst awful bad junk waste trash mid".split()
NEU = "arrived box blue average ok works came today".split()


def reviews(n: int = 90, seed: int = 0) -> TextData:
    """Short review-like texts, the label carried by one sentiment word each (and typos in casing)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        lab, words = [("positive", POS), ("negative", NEG), ("neutral", NEU)][i % 3]
        t = f"the {rng.choice(['phone', 'case', 'blender', 'lamp'])} is {rng.choice(words)} lol"
        texts.append(t.upper() if i % 7 == 0 else t)
        labels.append(lab)
    return TextData(texts, labels, origin="reviews.csv")


def write(path: Path, data: TextData) -> str:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(zip(data.texts, data.labels))
    return str(path)


@pytest.fixture(scope="module")
def second_bert(tmp_path_factory, tiny_bert) -> str:
    """Another tiny model: the same vocabulary, one layer, other random weights."""
    import torch
    from transformers import BertConfig, BertModel

    d = tmp_path_factory.mktemp("tiny-bert-1layer")
    for f in Path(tiny_bert).iterdir():
        if "token" in f.name or f.name == "vocab.txt":
            shutil.copy(f, d / f.name)
    torch.manual_seed(1)
    cfg = BertConfig.from_pretrained(tiny_bert)
    cfg.num_hidden_layers = 1
    BertModel(cfg).save_pretrained(d)
    return str(d)


def test_layer_features_and_best_layer():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    H = rng.normal(size=(4, 60, 8))       # embeddings, then 3 layers
    H[2, :, 0] += y * 5                   # layer 2 carries the labels
    assert np.array_equal(layer_features(H, "last"), H[-1])
    assert np.allclose(layer_features(H, "mean"), H[1:].mean(0))
    scores, errors, per = score_layers(H, y, "best", ["knn", "hscore"], seed=0, k=5, folds=3)
    assert per["best"] == {"knn": 2, "hscore": 2} and not errors
    assert scores["knn"] == max(per["scores"]["knn"])


def test_class_warnings():
    with pytest.raises(RankError, match="single class"):
        class_warnings(["pos"] * 5, 5)
    (w,) = class_warnings(["pos"] * 9 + ["neg"] * 2, 5)
    assert "'neg' (2)" in w and "fewer than 5" in w
    assert class_warnings(["pos"] * 5 + ["neg"] * 5, 5) == []


def test_resolve_candidate_kinds(tmp_path, tiny_bert):
    kb = get_kb()
    assert resolve_candidate("all-minilm-l6-v2", kb).catalog_id == "all-MiniLM-L6-v2"
    assert "not on this machine" in resolve_candidate("bert-base", kb).error
    assert "Nearest catalog names" in resolve_candidate("bert-bse", kb).error
    run = tmp_path / "run"
    (run / "checkpoint-500").mkdir(parents=True)
    (run / "checkpoint-1000").mkdir()
    for c in ("checkpoint-500", "checkpoint-1000"):
        for f in Path(tiny_bert).iterdir():
            shutil.copy(f, run / c / f.name)
    c = resolve_candidate(str(run), kb)
    assert c.kind == "checkpoint" and c.path.endswith("checkpoint-1000") and not c.error
    (tmp_path / "empty").mkdir()
    assert "no model weights inside" in resolve_candidate(str(tmp_path / "empty"), kb).error


def test_rank_models_scores_the_loadable_and_explains_the_rest(tmp_path, tiny_bert, second_bert):
    kb = get_kb()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    data = reviews()
    res = rank_models([tiny_bert, second_bert, "bert-base", str(broken)], data, kb, max_length=16,
                      rejected={"bert-base": ["too large for mobile"]})
    rows = {r["candidate"]: r for r in res["rows"]}
    assert rows[tiny_bert]["status"] == rows[second_bert]["status"] == "ok"
    assert {rows[tiny_bert]["rank"], rows[second_bert]["rank"]} == {1, 2}
    assert set(rows[tiny_bert]["scores"]) == {"logme", "hscore", "knn", "linear_probe"}
    assert rows[tiny_bert]["layers"] == 2 and rows[second_bert]["layers"] == 1
    assert rows["bert-base"]["status"] == "error" and rows["bert-base"]["rejected"] == ["too large for mobile"]
    assert rows[str(broken)]["status"] == "error" and str(broken) in rows[str(broken)]["error"]
    assert res["agreement"]["n_candidates"] == 2 and res["agreement"]["kendall_w"] is not None
    assert any(w.startswith("bert-base: not scored") for w in res["warnings"])
    assert [r["rank"] for r in res["rows"]][:2] == [1, 2]  # ranked rows first

    # a second run (a killed ranking started again) takes finished candidates from disk
    again = rank_models([tiny_bert, second_bert], data, kb, max_length=16)
    assert all(r["resumed"] for r in again["rows"])
    assert {r["candidate"]: r["scores"] for r in again["rows"]} == {k: rows[k]["scores"]
                                                                    for k in (tiny_bert, second_bert)}
    # a damaged result file is recomputed, never fatal
    for f in result_file("x").parent.glob("*.json"):
        f.write_text("{")
    third = rank_models([tiny_bert], data, kb, max_length=16)
    assert not third["rows"][0]["resumed"] and third["rows"][0]["status"] == "ok"


def test_rank_models_on_parallel_workers(tiny_bert, second_bert):
    res = rank_models([tiny_bert, second_bert], reviews(60, seed=1), get_kb(), max_length=16, jobs=2,
                      estimators=["logme", "knn"])
    assert [r["status"] for r in res["rows"]] == ["ok", "ok"]


# --- the command


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_text_json_csv_plot(tmp_path, tiny_bert, second_bert):
    data = write(tmp_path / "reviews.csv", reviews())
    base = ["rank-models", "--data", data, "--candidates", f"{tiny_bert},{second_bert}",
            "--candidates", "distilbert-base", "--max-length", "16", "--deployment", "mobile"]
    r = invoke(base + ["--plot", tmp_path / "rank.png", "-o", tmp_path / "rank.csv"])
    assert r.exit_code == 0, r.output
    assert "Kendall's W" in r.output and "distilbert-base" in r.output
    assert "rejected by the plan" in r.output and "not on this machine" in r.output  # marked, not dropped
    assert "no verdict by itself" in r.output
    assert (tmp_path / "rank.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((tmp_path / "rank.csv").open()))
    assert [row["rank"] for row in rows] == ["1", "2", ""] and rows[2]["status"] == "error"

    js = invoke(base + ["--format", "json"])
    assert js.exit_code == 0, js.output
    out = json.loads(js.output)
    assert out["against_catalog"]["verdict"] in ("inconclusive", "overturns", "confirms")
    assert {r["model"] for r in out["rows"]} >= {"distilbert-base"}
    c = invoke(base + ["--format", "csv", "--estimators", "logme,knn", "--layer", "last"])
    assert c.exit_code == 0 and c.output.splitlines()[0].startswith("rank,model,mean_rank,logme")


def test_cli_all_candidates_unloadable_is_an_error(tmp_path):
    data = write(tmp_path / "reviews.csv", reviews())
    r = invoke(["rank-models", "--data", data, "--candidates", "bert-base,./nowhere"])
    assert r.exit_code == 2
    line = r.output.strip()
    assert line.startswith("Error: no candidate could be scored: bert-base:") and "\n" not in line


def test_consult_with_data_adds_the_measured_ranking(tmp_path, tiny_bert, second_bert):
    data = write(tmp_path / "reviews.csv", reviews())
    r = invoke(["consult", "--data", data, "--rank-candidates", f"{tiny_bert},all-MiniLM-L6-v2",
                "--compute", "cpu", "--format", "json", "--no-input"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["scenario"]["dataset_size"] == 90 and plan["scenario"]["num_classes"] == 3
    er = plan["empirical_ranking"]
    assert {row["status"] for row in er["rows"]} == {"ok"} and er["verdict"] == "inconclusive"
    assert er["why"]["rule"] == "selection.measured_too_few_scored"


# --- a wall-time budget


def slow_kb(tmp_path, overhead: float):
    """The knowledge base with the fixed cost per candidate set to ``overhead`` seconds."""
    d = tmp_path / f"kb-{overhead:g}"
    d.mkdir()
    (d / "t.yaml").write_text(f"thresholds: [{{id: rank_candidate_overhead_s, value: {overhead}}}]\n")
    return get_kb([d])


def test_plan_budget_cuts_examples_to_the_measured_rate_and_never_below_the_floor(tmp_path, tiny_bert):
    from harness.ranking.budget import plan_budget

    kb = get_kb()
    rate = next(t for t in kb.sections["throughput"].values() if t.technique == "ranking")
    minilm = resolve_candidate("all-MiniLM-L6-v2", kb).__dict__
    overhead = kb.threshold("rank_candidate_overhead_s")
    share = kb.threshold("rank_budget_share")
    # two MiniLM-sized candidates: n examples cost 2 * (overhead + n / rate)
    b = plan_budget([dict(minilm), dict(minilm)], 5000, 3, 5000, 60, kb, "cpu")
    expect = int((60 * share - 2 * overhead) * rate.examples_per_second / 2)
    assert abs(b["examples"] - expect) <= 1 and b["examples_without_budget"] == 5000
    assert f"{b['examples']:,} examples per candidate (of 5,000)" in b["text"]
    assert "throughput:" + rate.id in b["knowledge"]
    # a generous budget keeps every example; a tiny one stops at 20 per class
    assert plan_budget([dict(minilm)], 800, 3, 800, 3600, kb, "cpu")["examples"] == 800
    assert plan_budget([dict(minilm)], 5000, 4, 5000, 1, kb, "cpu")["examples"] == 4 * 20
    # two lanes (--jobs 2) score two candidates at once: the budget's time counts twice
    two = plan_budget([dict(minilm), dict(minilm)], 50000, 3, 50000, 60, kb, "cpu", lanes=2)["examples"]
    assert abs(two - int((2 * 60 * share - 2 * overhead) * rate.examples_per_second / 2)) <= 1
    # a tiny model costs a sliver of MiniLM per example; an unloadable one costs nothing
    tiny = resolve_candidate(tiny_bert, kb).__dict__
    broken = {**tiny, "error": "cannot load"}
    plan_budget([tiny, broken], 5000, 3, 5000, 60, kb, "cpu")
    assert tiny["budget_scale"] < 0.01 and broken["budget_estimate_s"] is None


def test_budget_skips_what_would_overrun_it_and_says_why(tmp_path, tiny_bert, second_bert):
    kb = slow_kb(tmp_path, 100.0)  # every candidate estimated at ~100 s
    data = reviews(60)
    # on two processes, the third candidate's estimate does not fit 150 s: skipped before scoring
    res = rank_models([tiny_bert, second_bert, tiny_bert + "/"], data, kb, max_length=16, jobs=2,
                      estimators=["logme", "knn"], budget_s=150)
    status = [r["status"] for r in res["rows"]]
    assert sorted(status) == ["ok", "ok", "skipped"]
    skipped = next(r for r in res["rows"] if r["status"] == "skipped")
    assert "2.5 min budget would run out (estimated 100 s, 50 s left)" in skipped["error"]
    assert res["budget"]["skipped"] == [skipped["candidate"]] and res["rows"][-1] is skipped
    assert any("not scored (the 2.5 min budget" in w for w in res["warnings"])
    # one at a time, the first candidate's real time (far under its 100 s estimate) corrects
    # the next estimate, so the second fits too
    res = rank_models([tiny_bert, second_bert], data, kb, max_length=16, estimators=["logme"], budget_s=150,
                      use_cache=False)
    assert [r["status"] for r in res["rows"]] == ["ok", "ok"] and res["budget"]["skipped"] == []
    assert res["budget"]["spent_seconds"] < 150


def test_rank_models_cli_budget(tmp_path, tiny_bert):
    data = write(tmp_path / "reviews.csv", reviews(60))
    r = invoke(["rank-models", "--data", data, "--candidates", tiny_bert, "--budget", "2m", "--max-length", "16",
                "--estimators", "logme,knn"])
    assert r.exit_code == 0, r.output
    assert "Budget: 2.0 min budget: 60 examples per candidate, estimated" in r.output
    for bad in ("0", "-5s", "ten minutes", "5d"):
        r = invoke(["rank-models", "--data", data, "--candidates", tiny_bert, "--budget", bad])
        assert r.exit_code == 2 and "expected a positive wall time such as 90s, 10m or 1.5h" in r.output, bad
    # a budget no candidate fits: exit 2, each candidate's reason named
    d = tmp_path / "kb"
    d.mkdir()
    (d / "t.yaml").write_text("thresholds: [{id: rank_candidate_overhead_s, value: 100}]\n")
    r = invoke(["--knowledge", str(d), "rank-models", "--data", data, "--candidates", tiny_bert,
                "--budget", "30s"])
    assert r.exit_code == 2 and "no candidate could be scored" in r.output
    assert "the 30 s budget would run out (estimated 100 s, 30 s left)" in r.output


@pytest.mark.parametrize("blob", [b"{}", b"[]", b"null", b"5", b'["status"]', b'{"status": "ok", "scores": {}}',
                                  b'{"status": "ok", "scores": {"logme": "high"}}', b"{not json"])
def test_a_cache_entry_that_is_not_a_finished_result_is_recomputed(blob):
    """Valid JSON that is not a result (or a damaged entry) is never taken as one: no empty ranking with
    exit 0, no traceback; the candidate is scored again."""
    from harness.ranking.scoring import _cached_result

    assert _cached_result(blob) is None
    assert _cached_result(b'{"status": "ok", "scores": {"logme": 1.5}}') is not None
