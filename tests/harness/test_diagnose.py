"""`tlexpert diagnose`: synthetic logs in every supported format, each symptom, healthy runs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from harness.troubleshooting import curves
from harness.troubleshooting.locate import read_logs
from harness.troubleshooting.logs import LogError

# --- synthetic curves: (epoch, train_loss, val_loss, val_acc, source_acc)


def healthy(n=8):  # converged: losses and accuracy level off (a curve still rising at the end stopped early)
    return [(e, 1.0 / e ** 2 + 0.1, 1.0 / e ** 2 + 0.2, 0.85 - 0.3 * math.exp(-e), 0.9) for e in range(1, n + 1)]


def still_improving(n=12):  # validation accuracy and loss still improving steadily at the last epoch
    return [(e, 1.0 / e + 0.1, 1.2 - 0.06 * e, 0.5 + 0.03 * e + wobble(e) / 5, 0.9) for e in range(1, n + 1)]


def wobble(e):  # an accuracy that moves between evaluations (a constant one is a failed run)
    return 0.01 * (e % 3)


def diverging(n=10):
    return [(e, 1.1 * 1.4 ** e, 1.2 * 1.4 ** e, 0.45 + wobble(e), 0.9) for e in range(1, n + 1)]


def nan_loss(n=8):
    return [(e, 1.0 / e if e < 5 else float("nan"), 1.0, 0.5 + wobble(e), 0.9) for e in range(1, n + 1)]


def overfitting(n=10):
    return [(e, 1.0 / e, 0.9 - 0.075 * e if e <= 4 else 0.6 + 0.05 * (e - 4) ** 2 / 4, 0.8 + wobble(e), 0.9)
            for e in range(1, n + 1)]


def underfitting(n=8):  # learned a little in the first epochs, then levelled off high (one that never moved
    # from its first evaluation is a run that never started: a failed run)
    return [(e, 1.05 - 0.005 * e, 1.06, 0.25 + 0.15 * (1 - math.exp(-e / 1.5)) + wobble(e), 0.9)
            for e in range(1, n + 1)]


def chance(n=8):
    return [(e, math.log(3) + 0.001 * (-1) ** e, math.log(3), 0.33, 0.9) for e in range(1, n + 1)]


def forgetting(n=6):
    return [(e, 1.0 / e, 1.0 / e + 0.1, 0.6 + 0.05 * e, 0.9 - 0.06 * e) for e in range(1, n + 1)]


CASES = {
    "healthy": (healthy, set()),
    "divergence": (diverging, {"divergence"}),
    "nan": (nan_loss, {"divergence"}),
    "overfitting": (overfitting, {"overfitting"}),
    "underfitting": (underfitting, {"underfitting"}),
    "chance": (chance, {"failed_run", "underfitting"}),
    "forgetting": (forgetting, {"catastrophic_forgetting"}),
    "still_improving": (still_improving, {"stopped_early"}),
}


def write_hf(rows, d: Path) -> Path:
    hist = []
    for e, tl, vl, acc, src in rows:
        hist.append({"loss": tl, "learning_rate": 5e-5, "epoch": float(e), "step": e * 10})
        hist.append({"eval_loss": vl, "eval_accuracy": acc, "eval_source_accuracy": src, "epoch": float(e),
                     "step": e * 10})
    hist.append({"train_runtime": 1.0, "train_loss": 0.5, "epoch": float(len(rows)), "step": len(rows) * 10})
    ck = d / "checkpoint-10"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text(json.dumps({"log_history": hist[:2]}))
    ck = d / f"checkpoint-{len(rows) * 10}"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text(json.dumps({"log_history": hist}))
    return d


def write_lightning(rows, d: Path) -> Path:
    f = d / "lightning_logs" / "version_0" / "metrics.csv"
    f.parent.mkdir(parents=True)
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "step", "train_loss", "val_loss", "val_acc", "source_acc"])
        for e, tl, vl, acc, src in rows:  # Lightning writes train and val metrics on separate rows
            w.writerow([e - 1, e * 10, tl, "", "", ""])
            w.writerow([e - 1, e * 10, "", vl, acc, src])
    return d


def write_csv(rows, d: Path) -> Path:
    f = d / "metrics_plain.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "train_loss", "val_loss", "accuracy", "source_accuracy"])
        w.writerows(rows)
    return f


def write_jsonl(rows, d: Path) -> Path:
    f = d / "log.jsonl"
    f.write_text("\n".join(json.dumps({"epoch": e, "loss": tl, "val_loss": vl, "val_accuracy": acc,
                                       "retention_accuracy": src}) for e, tl, vl, acc, src in rows) + "\n")
    return f


def write_json(rows, d: Path) -> Path:
    f = d / "history.json"
    f.write_text(json.dumps({"history": [{"epoch": e, "train_loss": tl, "val_loss": vl, "val_acc": acc,
                                          "source_acc": src} for e, tl, vl, acc, src in rows]}))
    return f


WRITERS = {"hf": write_hf, "lightning": write_lightning, "csv": write_csv, "jsonl": write_jsonl,
           "json": write_json}


def sub(root: Path, name: str) -> Path:
    (root / name).mkdir()
    return root / name


def run_diagnose(*args):
    return CliRunner().invoke(main, ["diagnose", *map(str, args), "--format", "json", "--num-classes", "3"])


@pytest.mark.parametrize("fmt", WRITERS)
@pytest.mark.parametrize("case", CASES)
def test_each_symptom_in_each_format(tmp_path, fmt, case):
    make, expected = CASES[case]
    path = WRITERS[fmt](make(), tmp_path)
    r = run_diagnose(path)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    found = {d["pitfall"] for d in report["diagnoses"]}
    assert found == expected, (case, fmt, report["symptoms"])
    assert report["healthy"] == (not expected)
    for d in report["diagnoses"]:
        assert d["evidence"] and d["fixes"], d
        for f in d["fixes"]:  # these logs record the epochs and (Trainer) the learning rate, nothing else
            for ch in f["changes"]:
                if ch["field"] == "learning_rate" and fmt == "hf":
                    assert ch["from"] == 5e-05, f
                elif ch["field"] == "epochs":
                    assert ch["from"] == len(make()), f
                else:
                    assert ch["from"] is None and "not in the log" in f["summary"], f


def test_learning_rate_from_the_log_makes_fixes_concrete(tmp_path):
    r = run_diagnose(write_hf(diverging(), tmp_path))
    fixes = json.loads(r.stdout)["diagnoses"][0]["fixes"]
    # a 10x cut, stopped at the knowledge base's learning_rate_floor (1e-5)
    assert fixes[0]["changes"][0] == {"field": "learning_rate", "from": 5e-05, "to": 1e-05}


def test_seeds_and_baseline_negative_transfer(tmp_path):
    runs, bases = [], []
    for i, (acc, base) in enumerate([(0.61, 0.70), (0.60, 0.72), (0.62, 0.71)]):
        runs.append(write_jsonl([(e, 1.0 / e, 1.0 / e + 0.1, acc, 0.9) for e in range(1, 5)], sub(tmp_path, f"r{i}")))
        bases.append(write_jsonl([(e, 1.0 / e, 1.0 / e + 0.1, base, 0.9) for e in range(1, 5)], sub(tmp_path, f"b{i}")))
    args = [*runs]
    for b in bases:
        args += ["--baseline", b]
    r = run_diagnose(*args)
    report = json.loads(r.stdout)
    assert report["diagnoses"][0]["pitfall"] == "negative_transfer"
    assert report["tests"]["negative_transfer"]["significant"] is True
    ev = report["diagnoses"][0]["evidence"][0]
    assert ev["ntg"] > 0 and ev["p_value"] < 0.05


def test_high_seed_variance(tmp_path):
    paths = []
    for i, acc in enumerate([0.40, 0.75, 0.55]):
        paths.append(write_csv([(e, 1.0 / e, 1.0 / e + 0.1, acc, 0.9) for e in range(1, 5)], sub(tmp_path, f"s{i}")))
    report = json.loads(run_diagnose(*paths).stdout)
    assert "high_seed_variance" in {s["id"] for s in report["symptoms"]}


def test_fail_on_exit_codes(tmp_path):
    div = write_jsonl(diverging(), tmp_path)
    over = write_csv(overfitting(), sub(tmp_path, "o"))
    ok = write_csv(healthy(), sub(tmp_path, "h"))
    inv = lambda p, level: CliRunner().invoke(main, ["diagnose", str(p), "--fail-on", level])
    assert inv(div, "error").exit_code == 1  # divergence is an error
    assert inv(over, "error").exit_code == 0  # overfitting is a warning
    assert inv(over, "warning").exit_code == 1
    assert inv(ok, "warning").exit_code == 0


def test_own_run_directory(tmp_path):
    d = tmp_path / "run"
    (d / "seeds").mkdir(parents=True)
    rec = {"plan": {"technique": {"choice": "fine_tuning"}, "scenario": {"task": "text_classification",
                                                                          "modality": "text", "dataset_size": 90}},
           "config": {"hyperparameters": {"fine_tuning": {"learning_rate": 2e-4}}, "classes": ["a", "b", "c"]},
           "results": {"fine_tuning": [{"seed": s, "accuracy": 0.33, "curves": [
               {"epoch": e, "train_loss": math.log(3), "val_macro_f1": 0.2} for e in range(1, 5)]} for s in range(2)]}}
    (d / "run.json").write_text(json.dumps(rec))
    report = json.loads(run_diagnose(d).stdout)
    assert {x["pitfall"] for x in report["diagnoses"]} >= {"failed_run"}
    assert report["config"]["known"]["learning_rate"]["value"] == 2e-4


@pytest.mark.parametrize("edit,field", [
    (lambda r: r["results"]["fine_tuning"][0].update(seed={"a": 1}), "results.fine_tuning[0].seed"),
    (lambda r: r["results"]["fine_tuning"][0].update(curves="abc"), "results.fine_tuning[0].curves"),
    (lambda r: r.update(baseline=[{"seed": 0, "technique": ["x"]}]), "baseline[0].technique"),
    (lambda r: r.update(tests="x"), "tests"),
    (lambda r: r.update(tests={"t": {"significant": True, "effect": "big", "p_value": 0.01}}), "tests"),
    (lambda r: r.update(symptoms=[3]), "symptoms"),
    (lambda r: r.update(diagnoses={"a": 1}), "diagnoses"),
    (lambda r: r["config"]["hyperparameters"]["fine_tuning"].update(learning_rate="fast"),
     "config.hyperparameters.fine_tuning.learning_rate"),
    (lambda r: r["config"]["hyperparameters"]["fine_tuning"].update(batch_size=-5),
     "config.hyperparameters.fine_tuning.batch_size"),
    (lambda r: r["plan"].update(hyperparameters={"frozen_layers": {"x": 1}}), "plan.hyperparameters.frozen_layers"),
])
def test_a_run_record_with_a_wrong_typed_field_is_refused_by_name(tmp_path, edit, field):
    """run.json is read as tlexpert writes it: a field of another type names itself and what was expected
    (exit 2), never a traceback and never a value taken into the diagnosis."""
    d = tmp_path / "run"
    d.mkdir()
    rec = {"plan": {"technique": {"choice": "fine_tuning"}, "scenario": {"task": "text_classification",
                                                                          "modality": "text", "dataset_size": 90}},
           "config": {"hyperparameters": {"fine_tuning": {"learning_rate": 2e-4}}, "classes": ["a", "b"]},
           "results": {"fine_tuning": [{"seed": 0, "accuracy": 0.5, "curves": [
               {"epoch": e, "train_loss": 0.7, "val_macro_f1": 0.4} for e in range(1, 4)]}]}}
    edit(rec)
    (d / "run.json").write_text(json.dumps(rec))
    r = CliRunner().invoke(main, ["diagnose", str(d)])
    assert r.exit_code == 2 and f"The '{field}' field of" in r.output and "Traceback" not in r.output, r.output


@pytest.mark.parametrize("content,message", [
    ('{"log_history": [{"loss": 1.0, "step": 1}, {"loss": 0.9', "malformed or truncated JSON"),
    ('{"log_history": []}', "no metrics"),
    ('{"global_step": 3}', "'log_history' field"),
])
def test_broken_trainer_state(tmp_path, content, message):
    f = tmp_path / "trainer_state.json"
    f.write_text(content)
    r = CliRunner().invoke(main, ["diagnose", str(f)])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_partial_logs_are_read_as_far_as_they_go(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("epoch,loss\n1,1.0\n2,nan\n3,\n")  # NaN cell, empty cell, no validation columns
    report = json.loads(run_diagnose(f).stdout)
    assert set(report["missing"]) >= {"val_loss", "target"}
    assert report["diagnoses"][0]["pitfall"] == "divergence"
    f2 = tmp_path / "t.jsonl"
    f2.write_text('{"epoch": 1, "loss": 1.0}\n{"epoch": 2, "loss": 0.8}\n{"epoch": 3, "lo')  # cut by a crash
    assert run_diagnose(f2).exit_code == 0


def test_missing_columns_and_files(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("when,how_much\n1,2\n")
    r = CliRunner().invoke(main, ["diagnose", str(f)])
    assert r.exit_code == 2 and "none of the known metric columns" in r.output
    r = CliRunner().invoke(main, ["diagnose", str(f), "--loss", "nope"])
    assert r.exit_code == 2 and "'nope' column" in r.output
    r = CliRunner().invoke(main, ["diagnose", str(tmp_path / "absent.json")])
    assert r.exit_code == 2 and "no such file" in r.output
    r = CliRunner().invoke(main, ["diagnose", str(tmp_path)])
    assert r.exit_code == 2 and "no log found. Looked for: a tlexpert run folder" in r.output


def test_named_columns(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("t,L,V\n" + "".join(f"{e},{1.1 * 1.5 ** e},{1.0}\n" for e in range(1, 8)))
    r = run_diagnose(f, "--loss", "L", "--val-loss", "V")
    assert json.loads(r.stdout)["diagnoses"][0]["pitfall"] == "divergence"


def test_curve_detectors_on_hand_checkable_inputs():
    th = {"divergence_loss_ratio": 1.5, "spike_factor": 3.0, "overfit_val_rise": 0.1}
    assert curves.divergence([1, 2, 3], [1.0, 1.0, 1.0], th) == []
    spikes = curves.divergence(range(10), [1, 1, 1, 1, 1, 1, 5, 1, 1, 1], th)
    assert [s["id"] for s in spikes] == ["loss_spikes"] and spikes[0]["evidence"]["steps"] == [6.0]
    assert curves.overfitting([1, 2, 3], [1, 0.5, 0.2], [1, 2, 3], [1, 0.5, 0.52], th) is None  # < 10% rise
    assert curves.failed_run(0.5, 0.5)["id"] == "majority_class_collapse"
    assert curves.failed_run(0.51, 0.5) is None
    with pytest.raises(LogError):
        read_logs("/nonexistent/path")


def test_training_and_validation_loss_rising_together_is_divergence_not_overfitting(kb):
    """A learning rate too high: after the validation best both losses climb (the optimisation goes the
    wrong way), read as divergence; the validation loss rising while training falls stays overfitting.
    Curves shaped as the Trainer logs them (a Whisper fine-tune in the fifth batch of real logs)."""
    from harness.troubleshooting import curves
    from harness.troubleshooting.diagnose import CURVE_THRESHOLDS

    th = {t: kb.threshold(t) for t in CURVE_THRESHOLDS}
    ts = list(range(1, 41))
    rising = [0.8, 0.5, 0.16, 0.12] + [0.12 + 0.0055 * i + 0.004 * (-1) ** i for i in range(36)]
    vs, vl = [10, 20, 30, 40], [0.22, 0.42, 0.43, 0.45]
    s = curves.rising_together(ts, rising, vs, vl, th)
    assert s is not None and s["id"] == "loss_exploding" and "together" in s["evidence"]["reading"]
    assert s["evidence"]["ratio"] > 1.5
    falling = [1.0 * 0.93 ** i for i in range(40)]
    assert curves.rising_together(ts, falling, vs, vl, th) is None
    assert curves.overfitting(ts, falling, vs, vl, th)["id"] == "val_loss_rising"


def test_losses_that_both_rose_are_no_plateau(kb):
    """A training loss logged a few times that ends well above its start, beside a validation loss that
    also ends above its start, is not underfitting (whose fix raises the learning rate): it is read as
    divergence. A high, flat pair stays underfitting."""
    from harness.troubleshooting import curves
    from harness.troubleshooting.diagnose import CURVE_THRESHOLDS

    th = {t: kb.threshold(t) for t in CURVE_THRESHOLDS}
    rose = curves.underfitting([1.24, 2.03, 2.16, 1.98, 1.79], [2.55, 3.62, 3.49, 3.19, 3.42], None, th)
    assert [s["id"] for s in rose] == ["loss_exploding"] and "rose" in rose[0]["evidence"]["reading"]
    flat = curves.underfitting([1.52, 1.49, 1.51, 1.5, 1.5], [1.6, 1.58, 1.61, 1.59, 1.6], None, th)
    assert [s["id"] for s in flat] == ["high_train_loss"]
