import json

import pytest
from click.testing import CliRunner

from cli import main
from harness.training.run import RunConfig, execute
from knowledge import get_kb
from rules.engine import get_engine
from rules.scenario import normalize

SCENARIO = {"task": "text_classification", "dataset_size": 90, "num_classes": 3, "compute": "cpu"}


def _plan():
    kb = get_kb()
    return get_engine(kb).consult(normalize(SCENARIO, kb)).to_dict()


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


def test_consult_plan_file_then_run(tiny_bert, tmp_path):
    plan_file = tmp_path / "plan.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_classification", "--dataset-size", "90",
                                  "--compute", "cpu", "--format", "json", "-o", str(plan_file), "--no-input"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["run", str(plan_file), "--model", tiny_bert, "--technique", "lora",
                                  "--seeds", "2", "--epochs", "1", "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["summary"]["lora"]["seeds"] == 2


def test_image_run_measures_source_forgetting(tmp_path):
    kb = get_kb()
    plan = get_engine(kb).consult(normalize({"task": "image_classification", "dataset_size": 700,
                                             "compute": "cpu", "domain_similarity": "high"}, kb)).to_dict()
    rec = execute(plan, RunConfig(techniques=["feature_extraction", "fine_tuning"], seeds=2, out=str(tmp_path / "i"),
                                  overrides={"epochs": 3}), kb)
    assert rec["measurements"]["source_accuracy_before"] > 0.9  # the CNN learned digits 0-4
    fe = [r["extra"]["source_accuracy_after"] for r in rec["results"]["feature_extraction"]]
    assert all(a == rec["measurements"]["source_accuracy_before"] for a in fe)  # frozen: nothing forgotten
    assert "forgetting.source_accuracy.fine_tuning" in rec["tests"]
    assert set(rec["summary"]) >= {"feature_extraction", "fine_tuning"}
    assert "domain_shift.two_sample" in rec["tests"]


def test_image_folder_and_arrays(tmp_path):
    import numpy as np
    from PIL import Image

    from harness.training.vision import load_arrays, load_image_folder

    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((np.random.default_rng(i).random((10, 12)) * 255).astype("uint8")).save(
                tmp_path / "imgs" / c / f"{i}.png")
    d = load_image_folder(tmp_path / "imgs", size=8, grayscale=True)
    assert d.X.shape == (6, 1, 8, 8) and d.classes == ["cat", "dog"] and list(d.y) == [0, 0, 0, 1, 1, 1]
    np.savez(tmp_path / "a.npz", X=np.zeros((4, 8, 8)), y=np.array([3, 5, 3, 5]))
    a = load_arrays(tmp_path / "a.npz")
    assert a.X.shape == (4, 1, 8, 8) and a.classes == ["3", "5"]


def test_demo_quick(tmp_path):
    r = CliRunner().invoke(main, ["demo", "--size", "90", "--epochs", "1", "--seeds", "2",
                                  "--out", str(tmp_path / "d"), "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out["summary"]) == {"feature_extraction", "fine_tuning", "lora", "tfidf_baseline"}
    assert (tmp_path / "d" / "report.md").exists()


def test_auto_fix_repairs_a_planted_fault(tiny_bert, tmp_path):
    """A learning rate of 0.5 collapses fine-tuning; the loop must find and keep a fix that helps."""
    from harness.troubleshooting.autofix import auto_fix

    kb = get_kb()
    plan = get_engine(kb).consult(normalize({**SCENARIO, "dataset_size": 5000, "compute": "consumer_gpu",
                                             "domain_similarity": "high"}, kb)).to_dict()
    plan["hyperparameters"]["learning_rate"] = 0.5  # the planted fault
    cfg = RunConfig(techniques=["fine_tuning"], seeds=3, model=tiny_bert, out=str(tmp_path / "af"),
                    builtin_size=300, max_length=32, overrides={"epochs": 3})
    res = auto_fix(plan, cfg, kb, max_rounds=2)
    assert res["initial"]["symptoms"] and "majority_class_collapse" in res["initial"]["symptoms"]
    kept = [c for c in res["chain"] if c["kept"]]
    assert kept, res["chain"]
    assert any(ch["field"] == "learning_rate" and ch["to"] < 0.5 for c in kept for ch in c["changes"])
    for c in res["chain"]:
        assert c["p_improve"] is not None and c["why"]
        if c["kept"]:
            assert c["p_improve"] < 0.05 or c["symptoms_gone"]
            assert not c["symptoms_new"]
    assert res["final"]["accuracy"] > res["initial"]["accuracy"]
    assert (tmp_path / "af" / "autofix.md").read_text().startswith("# Fix and verify")
    on_disk = json.loads((tmp_path / "af" / "autofix.json").read_text())
    assert on_disk["final"]["applied_fixes"] == res["final"]["applied_fixes"]


def test_cli_auto_fix(tiny_bert, tmp_path):
    plan_file = tmp_path / "plan.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_classification", "--dataset-size", "5000",
                                  "--format", "json", "-o", str(plan_file), "--no-input"])
    assert r.exit_code == 0
    r = CliRunner().invoke(main, ["run", str(plan_file), "--model", tiny_bert, "--seeds", "2", "--epochs", "1",
                                  "--auto-fix", "--max-rounds", "1", "--out", str(tmp_path / "o"),
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) >= {"initial", "final", "chain"} and len(out["chain"]) <= 1


def test_mlp_head_option(tiny_bert, tmp_path):
    lin = execute(_plan(), _cfg(tiny_bert, tmp_path / "a", techniques=["feature_extraction"], baseline=False,
                                seeds=1), get_kb())
    mlp = execute(_plan(), _cfg(tiny_bert, tmp_path / "b", techniques=["feature_extraction"], baseline=False,
                                seeds=1, overrides={"head": "mlp", "epochs": 1}), get_kb())
    n_lin = lin["results"]["feature_extraction"][0]["trainable_params"]
    n_mlp = mlp["results"]["feature_extraction"][0]["trainable_params"]
    assert n_lin == 32 * 3 + 3 and n_mlp == 32 * 256 + 256 + 256 * 3 + 3


def test_slices_are_taken_from_the_raw_texts_when_a_fix_rewrites_them(tiny_bert, tmp_path):
    plan = _plan()
    plan["hyperparameters"]["preprocessing"] = ["demojize"]
    rec = execute(plan, _cfg(tiny_bert, tmp_path / "r", techniques=["feature_extraction"], baseline=False,
                             seeds=2), get_kb())
    assert rec["measurements"]["emoji_rows_test"] > 0  # the emoji are gone from the texts, not from the slice
    assert rec["config"]["data_level"]["preprocessing"] == ["demojize"]


def test_out_of_memory_is_a_clear_error_with_a_batch_size_to_try(tmp_path, monkeypatch):
    import harness.training.run

    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.7 GiB total capacity)")

    monkeypatch.setattr(harness.training.run, "execute", oom)
    sc = tmp_path / "s.yaml"
    sc.write_text("task: text_classification\ndataset_size: 90\ncompute: cpu\n")
    r = CliRunner().invoke(main, ["run", str(sc), "--batch-size", "64", "--seeds", "2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "out of memory: try --batch-size 32" in r.output and "Traceback" not in r.output


def test_image_lora_and_gradual_unfreezing_on_the_small_cnn(tmp_path):
    kb = get_kb()
    plan = get_engine(kb).consult(normalize({"task": "image_classification", "dataset_size": 700,
                                             "compute": "cpu"}, kb)).to_dict()
    rec = execute(plan, RunConfig(techniques=["lora", "fine_tuning"], seeds=2, out=str(tmp_path / "i"),
                                  baseline=False, overrides={"epochs": 2, "unfreeze": "gradual"}), kb)
    lora = rec["results"]["lora"][0]
    ft = rec["results"]["fine_tuning"][0]
    from harness.training.vision import small_cnn

    total = sum(p.numel() for p in small_cnn(1, 5).parameters())
    assert 0 < lora["trainable_params"] < ft["trainable_params"]  # adapters and head only
    assert ft["trainable_params"] < total  # gradual unfreezing: after 2 epochs, the head and the top block
    assert "forgetting.source_accuracy.lora" in rec["tests"]
    assert all(0 <= r["accuracy"] <= 1 for rs in rec["results"].values() for r in rs)


def test_weights_and_image_size_are_refused_for_text(tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text("task: text_classification\ndataset_size: 90\ncompute: cpu\n")
    r = CliRunner().invoke(main, ["run", str(sc), "--weights", "w.safetensors", "--seeds", "2",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--weights is for image tasks" in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_image_retention_data_gives_a_retention_probe(tmp_path):
    import numpy as np

    from harness.training.vision import digits

    src = digits(source=True)
    np.savez(tmp_path / "ret.npz", X=src.X[:300, 0], y=src.y[:300])
    kb = get_kb()
    plan = get_engine(kb).consult(normalize({"task": "image_classification", "dataset_size": 700,
                                             "compute": "cpu"}, kb)).to_dict()
    rec = execute(plan, RunConfig(techniques=["fine_tuning"], seeds=2, out=str(tmp_path / "i"), baseline=False,
                                  retention_data=str(tmp_path / "ret.npz"), overrides={"epochs": 1}), kb)
    assert 0.5 < rec["measurements"]["retention_before"] <= 1
    assert "forgetting.retention.fine_tuning" in rec["tests"]
    assert all(0 <= r["extra"]["retention_after"] <= 1 for r in rec["results"]["fine_tuning"])


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_a_model_folder_with_truncated_weights_is_one_error_and_leaves_no_folder(tiny_bert, tmp_path, weights):
    """Truncated or foreign weights (an interrupted copy) name the folder and the library's complaint (exit
    2); the --out folder the run would have made is not left behind empty."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert, broken)
    for f in broken.glob("*.safetensors"):
        f.unlink()
    (broken / weights).write_bytes(b"\x00\x01" * 100)
    plan = tmp_path / "plan.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_classification", "--dataset-size", "200", "--no-input",
                                  "-o", str(plan)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["run", str(plan), "--model", str(broken), "--out", str(tmp_path / "out"),
                                  "--seeds", "1"])
    assert r.exit_code == 2 and "broken: not a loadable model" in r.output and "complete" in r.output, r.output
    assert not (tmp_path / "out").exists()


def centroid_head(session, technique, seed):
    """A technique implemented outside the project: nearest class centroid on the frozen embeddings."""
    import numpy as np

    from harness.training.common import scores
    from harness.training.techniques import TrainResult

    X_tr, _, X_te = session.features
    y = np.asarray(session.train.y)
    centroids = np.stack([X_tr[y == k].mean(0) for k in range(len(session.classes))])
    pred = np.argmin(((X_te[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    acc, f1, per = scores(session.test.y, pred, session.classes)
    return TrainResult(technique, seed, acc, f1, per, pred.tolist(), extra={"centroids": len(centroids)}).to_dict()


def test_a_technique_is_a_registry_entry_plus_a_knowledge_entry(tiny_bert, tmp_path, monkeypatch):
    """Adding a technique: a knowledge-base entry (when the rules may choose it, its defaults) and a registry
    entry naming its implementation as "module:function"; `run` then trains it through the registry."""
    import dataclasses

    from harness.training import registry

    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "techniques.yaml").write_text(
        "techniques:\n  - id: centroid_probe\n    name: Nearest-centroid probe\n    kind: core\n    updates: head\n"
        "    trains_backbone: false\n    memory_bytes_per_param: 2\n"
        "    best_when: \"A baseline on frozen features.\"\n    description: \"Class means of the frozen embeddings.\"\n"
        "    defaults: {head: linear, frozen_layers: all, unfreeze: none, learning_rate: 1.0e-3, epochs: 1,\n"
        "               batch_size: 32, weight_decay: 0.0, dropout: 0.0, warmup_ratio: 0.0, max_grad_norm: 0.0,\n"
        "               l2_sp: 0.0}\n    sources: [tlexpert-heuristic]\n")
    spec = dataclasses.replace(registry.REGISTRY["feature_extraction"], id="centroid_probe",
                               runs={"text": f"{__name__}:centroid_head"})
    monkeypatch.setitem(registry.REGISTRY, "centroid_probe", spec)
    kb = get_kb([kb_dir])
    plan = get_engine(kb).consult(normalize(SCENARIO, kb))
    assert "centroid_probe" in plan.recipes  # the rules resolved a recipe for the new technique
    rec = execute(plan.to_dict(), _cfg(tiny_bert, tmp_path / "r", techniques=["centroid_probe"], baseline=False), kb)
    data = json.loads((tmp_path / "r" / "run.json").read_text())
    assert [r["extra"]["centroids"] for r in data["results"]["centroid_probe"]] == [3, 3]
    assert isinstance(rec["diagnoses"], list)
    # a core technique whose defaults cannot make a recipe is refused when the knowledge loads
    broken = tmp_path / "kb2"
    broken.mkdir()
    (broken / "techniques.yaml").write_text((kb_dir / "techniques.yaml").read_text().replace(" learning_rate: 1.0e-3,", ""))
    r = CliRunner().invoke(main, ["--knowledge", str(broken), "consult", "--task", "text_classification",
                                  "--dataset-size", "90", "--no-input"])
    assert r.exit_code == 2 and "techniques.yaml:" in r.output and "missing: learning_rate" in r.output


def test_every_registered_implementation_loads_and_an_unknown_modality_is_refused():
    from harness.training.registry import REGISTRY, NotExecutable

    for tid, spec in REGISTRY.items():
        assert set(spec.runs) == set(spec.honours), tid  # each modality it honours fields for, it runs
        for modality in spec.runs:
            assert callable(spec.implementation(modality))
    with pytest.raises(NotExecutable, match="no implementation for audio"):
        REGISTRY["fine_tuning"].implementation("audio")
