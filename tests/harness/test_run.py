import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from harness.run import RunConfig, execute
from knowledge import get_kb
from rules.engine import get_engine
from rules.scenario import normalize

SCENARIO = {"task": "text_classification", "dataset_size": 90, "num_classes": 3, "compute": "cpu"}


def _plan():
    kb = get_kb()
    return get_engine(kb).consult(normalize(SCENARIO, kb))


def _cfg(tiny_bert, out, **kw):
    base = dict(techniques=["feature_extraction", "fine_tuning"], seeds=2, model=tiny_bert, out=str(out),
                builtin_size=90, max_length=32, overrides={"epochs": 1, "learning_rate": 1e-3})
    base.update(kw)
    return RunConfig(**base)


def test_run_writes_record_report_and_plots(tiny_bert, tmp_path):
    rec = execute(_plan(), _cfg(tiny_bert, tmp_path / "r"), get_kb())
    out = tmp_path / "r"
    data = json.loads((out / "run.json").read_text())
    assert set(data["summary"]) == {"feature_extraction", "fine_tuning", "tfidf_baseline"}
    assert len(data["results"]["fine_tuning"]) == 2
    assert "negative_transfer.fine_tuning" in data["tests"]
    for t in data["tests"].values():
        assert set(t) >= {"statistic", "p_value", "effect", "ci_low", "ci_high", "significant", "method"}
        assert "Holm" in t["method"]
    assert (out / "report.md").read_text().startswith("# Run report")
    assert (out / "seeds.png").exists() and (out / "learning_curves.png").exists()
    assert isinstance(rec["symptoms"], list) and isinstance(rec["diagnoses"], list)
    ids = {s["id"] for s in rec["symptoms"]}
    assert {d["pitfall"] for d in rec["diagnoses"]} <= {p for s in ids for p in get_kb().symptoms[s].indicates}


def test_resume_reuses_finished_seeds_only(tiny_bert, tmp_path):
    out = tmp_path / "r"
    execute(_plan(), _cfg(tiny_bert, out), get_kb())
    first = json.loads((out / "run.json").read_text())
    (out / "run.json").unlink()  # as if killed before the end ...
    (out / "seeds" / "fine_tuning-1.json").unlink()  # ... and before this seed finished
    msgs = []
    execute(_plan(), _cfg(tiny_bert, out), get_kb(), msgs.append)
    reused = [m for m in msgs if "reused" in m]
    assert len(reused) == 2 + 1 + 2  # FE x2, fine-tuning seed 0, baseline x2 are not retrained ...
    assert any(m.startswith("fine_tuning seed 1:") and "reused" not in m for m in msgs)
    second = json.loads((out / "run.json").read_text())
    assert second["results"]["fine_tuning"][1]["accuracy"] == first["results"]["fine_tuning"][1]["accuracy"]
    assert not list(out.glob(".*tmp*")) and not list((out / "seeds").glob(".*tmp*"))


def test_changed_arguments_do_not_reuse_seeds(tiny_bert, tmp_path):
    out = tmp_path / "r"
    execute(_plan(), _cfg(tiny_bert, out, techniques=["feature_extraction"], baseline=False), get_kb())
    msgs = []
    execute(_plan(), _cfg(tiny_bert, out, techniques=["feature_extraction"], baseline=False,
                          overrides={"epochs": 2}), get_kb(), msgs.append)
    assert not [m for m in msgs if "reused" in m]


def test_cli_run_json_and_bad_inputs(tiny_bert, tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text("task: text_classification\ndataset_size: 90\ncompute: cpu\n")
    data = tmp_path / "d.csv"
    rows = ["text,label"] + [f"love it {i},pos" for i in range(15)] + [f"awful {i},neg" for i in range(15)]
    data.write_text("\n".join(rows) + "\n")
    r = CliRunner().invoke(main, ["run", str(sc), "--train", str(data), "--model", tiny_bert,
                                  "--technique", "feature_extraction", "--seeds", "2",
                                  "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["summary"]["feature_extraction"]["seeds"] == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,label\nhi,pos\nho,neg\n")
    cases = [
        (["--train", str(bad)], "'text' column of"),
        (["--model", str(tmp_path)], "not a model folder"),
        (["--device", "cuda"], "no CUDA device"),
    ]
    import torch

    for extra, msg in cases:
        if "cuda" in extra and torch.cuda.is_available():
            continue
        args = ["run", str(sc), "--model", tiny_bert, "--technique", "feature_extraction",
                "--seeds", "1", "--out", str(tmp_path / "x"), *extra]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, r.output
        assert msg in r.output and "Traceback" not in r.output
    one = tmp_path / "one.csv"
    one.write_text("text,label\na,pos\nb,pos\nc,pos\n")
    r = CliRunner().invoke(main, ["run", str(sc), "--train", str(one), "--model", tiny_bert, "--seeds", "1",
                                  "--out", str(tmp_path / "y")])
    assert r.exit_code == 2 and "single class" in r.output
