"""`tlexpert diagnose` on logs as users bring them: odd cells, collapsed runs without flags,
several runs and configurations, duplicates, baselines after one flag, unknown current values."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


def invoke(*args):
    return CliRunner().invoke(main, ["diagnose", *map(str, args)])


def report_of(*args):
    r = invoke(*args, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def pitfalls(rep):
    return [d["pitfall"] for d in rep["diagnoses"]]


def trainer_state(d: Path, losses, accs, lr=5e-5, epochs=None, batch=None, labels=None) -> Path:
    """A trainer_state.json as Trainer writes it: train rows (loss, grad_norm, learning_rate) and
    eval rows (eval_loss, eval_accuracy), the run summary last."""
    hist, step = [], 0
    per = max(1, len(losses) // max(1, len(accs)))
    for i, loss in enumerate(losses, 1):
        step += 5
        hist.append({"epoch": round(i / per, 2), "grad_norm": 1.0, "learning_rate": lr * (1 - i / (len(losses) + 1)),
                     "loss": loss, "step": step})
        if i % per == 0 and (i // per) <= len(accs):
            a = accs[i // per - 1]
            hist.append({"epoch": float(i // per), "eval_accuracy": a, "eval_loss": losses[i - 1] + 0.05,
                         "eval_runtime": 0.1, "eval_samples_per_second": 900.0, "eval_steps_per_second": 9.0,
                         "step": step})
    hist.append({"epoch": float(len(accs)), "step": step, "total_flos": 1.0, "train_loss": sum(losses) / len(losses),
                 "train_runtime": 3.2, "train_samples_per_second": 80.0, "train_steps_per_second": 5.0})
    state = {"best_metric": None, "epoch": float(len(accs)), "global_step": step, "log_history": hist,
             "logging_steps": 5, "max_steps": step, "num_train_epochs": epochs or len(accs),
             "train_batch_size": batch or 8}
    d.mkdir(parents=True, exist_ok=True)
    (d / "trainer_state.json").write_text(json.dumps(state, indent=2))
    if labels:
        (d / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                   "id2label": {str(i): l for i, l in enumerate(labels)},
                                                   "num_hidden_layers": 12}))
    return d


def falling(n=12, start=1.1, end=0.3):
    return [start + (end - start) * i / (n - 1) for i in range(n)]


def keras_log(path: Path, rows: list[dict]) -> Path:
    keys = sorted(rows[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["epoch", *keys], dialect=csv.excel)
        w.writeheader()
        for e, r in enumerate(rows):
            w.writerow({"epoch": e, **{k: r.get(k, "NA") for k in keys}})
    return path


# --- cells that are not numbers


def test_a_non_numeric_cell_is_a_data_warning_not_divergence(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("epoch,loss,val_loss,val_accuracy\n1,1.00,1.05,0.52\n2,n/a,0.90,0.61\n3,0.70,0.80,0.66\n"
                 "4,0.60,0.75,0.70\n5,,0.72,0.71\n")
    rep = report_of(f, "--fail-on", "error")
    assert "divergence" not in pitfalls(rep)
    assert any("1 cell(s) of 'loss' are not numbers ('n/a')" in w for w in rep["data_warnings"])
    r = invoke(f, "--fail-on", "error")
    assert r.exit_code == 0 and "Data warning:" in r.output


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_a_logged_nan_or_infinity_is_divergence(tmp_path, cell):
    f = tmp_path / "log.csv"
    f.write_text(f"epoch,loss\n1,1.0\n2,0.9\n3,{cell}\n4,{cell}\n")
    rep = report_of(f)
    assert pitfalls(rep)[0] == "divergence"
    assert not rep["data_warnings"]
    assert invoke(f, "--fail-on", "error").exit_code == 1


def test_trainer_nan_loss_in_json(tmp_path):
    d = trainer_state(tmp_path / "out", [1.1, 1.0, 0.9, float("nan"), float("nan")], [0.5, 0.4])
    assert "NaN" in (d / "trainer_state.json").read_text()  # json.dumps writes NaN, as Trainer does
    assert pitfalls(report_of(d))[0] == "divergence"


def _state_with_grad_norms(d: Path, rows) -> Path:
    """Trainer's log lines as issue reports show them: {'loss', 'grad_norm', 'learning_rate', 'epoch'}."""
    hist = [{"loss": loss, "grad_norm": g, "learning_rate": 5e-05, "epoch": round(0.01 * i, 2), "step": 10 * i}
            for i, (loss, g) in enumerate(rows, 1)]
    d.mkdir(parents=True)
    (d / "trainer_state.json").write_text(json.dumps({"log_history": hist, "train_batch_size": 4}))
    return d


def test_grad_norm_nan_to_the_end_is_divergence_though_the_loss_reads_0(tmp_path):
    rows = [(0.21 - 0.01 * i, 1.2) for i in range(5)] + [(0.0, float("nan"))] * 6
    rep = report_of(_state_with_grad_norms(tmp_path / "out", rows))
    assert pitfalls(rep)[0] == "divergence"
    ev = next(s for s in rep["symptoms"] if s["id"] == "loss_nan")["evidence"]
    assert ev["metric"] == "grad_norm" and ev["nonfinite_to_the_end"] == 6


def test_an_occasional_nan_grad_norm_is_a_skipped_mixed_precision_step(tmp_path):
    rows = [(1.0 / (i + 1) + 0.1, float("nan") if i in (0, 3) else 0.5) for i in range(12)]
    rep = report_of(_state_with_grad_norms(tmp_path / "out", rows))
    assert rep["healthy"], rep["symptoms"]


# --- a failed run, recognised without --num-classes or --majority-rate


def test_loss_flat_at_ln3_and_constant_accuracy_is_a_failed_run(tmp_path):
    losses = [math.log(3) + 0.0004 * (-1) ** i for i in range(15)]
    d = trainer_state(tmp_path / "collapsed", losses, [0.3333] * 5)
    rep = report_of(d)
    assert pitfalls(rep)[0] == "failed_run", rep["symptoms"]
    ids = {s["id"] for s in rep["symptoms"]}
    assert {"metric_constant", "loss_at_chance"} <= ids
    chance = next(s for s in rep["symptoms"] if s["id"] == "loss_at_chance")["evidence"]
    assert chance["classes"] == 3 and "inferred" in chance["classes_from"]
    assert "high_train_loss" not in ids  # not read as underfitting ("raise the learning rate")


def test_class_count_from_the_models_config(tmp_path):
    d = trainer_state(tmp_path / "out", [math.log(5) + 0.01 * (-1) ** i for i in range(12)], [0.2, 0.21, 0.19, 0.2],
                      labels=["a", "b", "c", "d", "e"])
    chance = next(s for s in report_of(d)["symptoms"] if s["id"] == "loss_at_chance")["evidence"]
    assert chance["classes"] == 5 and "classes_from" not in chance


def test_a_learning_run_is_not_a_failed_run(tmp_path):
    rep = report_of(trainer_state(tmp_path / "ok", falling(), [0.55, 0.62, 0.68, 0.71]))
    assert rep["healthy"], rep["symptoms"]


def test_a_flat_loss_away_from_any_ln_k_is_underfitting_not_chance(tmp_path):
    losses = [1.30 - 0.002 * i for i in range(12)]  # between ln 3 (1.10) and ln 4 (1.39)
    rep = report_of(trainer_state(tmp_path / "flat", losses, [0.41, 0.43, 0.42, 0.44]))
    assert pitfalls(rep) == ["underfitting"], rep["symptoms"]


def test_predictions_of_one_class_in_a_run_record(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    rec = {"plan": {"technique": {"choice": "fine_tuning"},
                    "scenario": {"task": "text_classification", "dataset_size": 300}},
           "config": {"hyperparameters": {"fine_tuning": {"learning_rate": 1e-3, "epochs": 3}},
                      "classes": ["neg", "neu", "pos"], "layers": 6},
           "results": {"fine_tuning": [{"seed": s, "accuracy": 0.4, "predictions": [2] * 50, "curves": [
               {"epoch": e, "train_loss": 1.0 - 0.1 * e, "val_loss": 1.0, "val_macro_f1": 0.19 + 0.01 * e}
               for e in range(1, 4)]} for s in range(2)]},
           "symptoms": [], "diagnoses": [], "tests": {}}
    (d / "run.json").write_text(json.dumps(rec))
    rep = report_of(d)
    ev = next(s for s in rep["symptoms"] if s["id"] == "majority_class_collapse")["evidence"]
    assert ev["predicted_classes"] == 1 and ev["class"] == "2"
    assert "failed_run" in pitfalls(rep)


# --- never an invented current value


def test_unknown_current_values_give_relative_fixes(tmp_path):
    rows = [{"loss": 1.1 * 1.5 ** e, "accuracy": 0.4 + 0.01 * (e % 2), "val_loss": 1.2 * 1.5 ** e,
             "val_accuracy": 0.35 + 0.01 * (e % 3)} for e in range(8)]
    rep = report_of(keras_log(tmp_path / "training.log", rows))
    d = rep["diagnoses"][0]
    assert d["pitfall"] == "divergence"
    lr_fix = next(f for f in d["fixes"] if any(c["field"] == "learning_rate" for c in f["changes"]))
    ch = next(c for c in lr_fix["changes"] if c["field"] == "learning_rate")
    assert ch["from"] is None and ch["current_unknown"]
    assert "lower about 10×" in lr_fix["summary"] and "not in the log" in lr_fix["summary"]
    assert "learning rate" in rep["config"]["not_in_log"]
    text = invoke(tmp_path / "training.log").output
    assert "2e-05" not in text and "first 6 of 12" not in text  # the old invented defaults


def test_the_logged_learning_rate_is_the_current_value(tmp_path):
    rows = [{"loss": 1.1 * 1.5 ** e, "accuracy": 0.4, "learning_rate": 0.1, "val_loss": 1.2 * 1.5 ** e,
             "val_accuracy": 0.35 + 0.01 * (e % 3)} for e in range(8)]
    rep = report_of(keras_log(tmp_path / "log.csv", rows))
    ch = next(c for f in rep["diagnoses"][0]["fixes"] for c in f["changes"] if c["field"] == "learning_rate")
    assert (ch["from"], ch["to"]) == (0.1, 0.01)
    assert rep["config"]["known"]["learning_rate"]["from"].startswith("the 'learning_rate' column")
    # --majority-rate does not change what the learning rate is
    rep2 = report_of(tmp_path / "log.csv", "--majority-rate", "0.4")
    ch2 = next(c for d in rep2["diagnoses"] for f in d["fixes"] for c in f["changes"] if c["field"] == "learning_rate")
    assert ch2["from"] == 0.1


def test_lightning_hparams_are_read(tmp_path):
    v = tmp_path / "lightning_logs" / "version_0"
    v.mkdir(parents=True)
    (v / "hparams.yaml").write_text("lr: 0.003\nbatch_size: 32\nmax_epochs: 6\nnum_classes: 4\n"
                                    "optimizer: !!python/name:torch.optim.adamw.AdamW ''\n")
    rows = ["epoch,step,train_loss,val_loss,val_acc"]
    for e in range(6):
        rows.append(f"{e},{(e + 1) * 10},{1.2 * 1.6 ** e},,")
        rows.append(f"{e},{(e + 1) * 10},,{1.3 * 1.6 ** e},{0.3 + 0.01 * (e % 2)}")
    (v / "metrics.csv").write_text("\n".join(rows) + "\n")
    rep = report_of(tmp_path / "lightning_logs")
    known = rep["config"]["known"]
    assert {k: known[k]["value"] for k in ("learning_rate", "batch_size", "epochs", "n_classes")} == \
        {"learning_rate": 0.003, "batch_size": 32, "epochs": 6, "n_classes": 4}
    assert known["learning_rate"]["from"] == "hparams.yaml (lr)"
    ch = next(c for f in rep["diagnoses"][0]["fixes"] for c in f["changes"] if c["field"] == "learning_rate")
    assert ch["from"] == 0.003


# --- several paths: groups, duplicates, baselines


def test_seed_folders_are_one_group_and_configurations_are_not_merged(tmp_path):
    for s, acc in enumerate([0.70, 0.71, 0.72]):
        trainer_state(tmp_path / f"seed{s}", falling(), [0.6, 0.65, acc], lr=2e-5)
    rep = report_of(*(tmp_path / f"seed{s}" for s in range(3)))
    assert len(rep["groups"]) == 1 and len(rep["groups"][0]["runs"]) == 3
    trainer_state(tmp_path / "seed3", falling(), [0.3, 0.35, 0.40], lr=1e-3)  # another configuration
    rep = report_of(*(tmp_path / f"seed{s}" for s in range(4)))
    assert sorted(len(g["runs"]) for g in rep["groups"]) == [1, 3]
    assert "high_seed_variance" not in {s["id"] for s in rep["symptoms"]}


def test_a_folder_of_unrelated_logs_is_not_one_configuration(tmp_path):
    trainer_state(tmp_path / "projects" / "bert-sentiment", falling(), [0.6, 0.7, 0.8])
    keras_log(tmp_path / "projects" / "old-cnn" / "training.log",
              [{"loss": 2.0 - 0.1 * e, "accuracy": 0.3 + 0.05 * e, "val_loss": 2.1 - 0.1 * e,
                "val_accuracy": 0.1 + 0.02 * e} for e in range(6)])
    (tmp_path / "projects" / "notes").mkdir()
    (tmp_path / "projects" / "notes" / "metrics.csv").write_text("name,value\nfoo,1\n")  # not a training log
    rep = report_of(tmp_path / "projects")
    assert len(rep["groups"]) == 2
    assert "high_seed_variance" not in {s["id"] for s in rep["symptoms"]}
    assert any("left out" in w and "notes" in w for w in rep["data_warnings"])


def test_identical_files_are_duplicates_not_seeds(tmp_path):
    src = trainer_state(tmp_path / "run", falling(), [0.6, 0.7, 0.8]) / "trainer_state.json"
    copies = []
    for i in range(10):
        d = tmp_path / f"copy{i}"
        d.mkdir()
        copies.append(shutil.copy(src, d / "trainer_state.json"))
    rep = report_of(*copies)
    assert len(rep["runs"]) == 1 and len(rep["duplicates"]) == 9
    assert sum("byte-identical" in w for w in rep["data_warnings"]) == 9


def _negative_transfer_tree(root: Path):
    for s, acc in enumerate([0.61, 0.60, 0.62]):
        trainer_state(root / f"seed{s}", falling(), [0.5, 0.55, acc])
    for s, acc in enumerate([0.70, 0.72, 0.71]):
        trainer_state(root / f"scratch{s}", falling(), [0.5, 0.6, acc])


@pytest.mark.parametrize("style", ["after_one_flag", "quoted_glob", "repeated_flag", "equals"])
def test_baselines_after_one_flag_and_globs(tmp_path, monkeypatch, style):
    _negative_transfer_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    runs = ["seed0/trainer_state.json", "seed1/trainer_state.json", "seed2/trainer_state.json"]
    bases = ["scratch0/trainer_state.json", "scratch1/trainer_state.json", "scratch2/trainer_state.json"]
    args = {"after_one_flag": [*runs, "--baseline", *bases],
            "quoted_glob": ["seed*/trainer_state.json", "--baseline", "scratch*/trainer_state.json"],
            "repeated_flag": [*runs, *[x for b in bases for x in ("--baseline", b)]],
            "equals": [*runs, *[f"--baseline={b}" for b in bases]]}[style]
    rep = report_of(*args)
    assert len(rep["runs"]) == 3 and len(rep["baseline_runs"]) == 3
    assert pitfalls(rep) == ["negative_transfer"]
    assert invoke(*args, "--fail-on", "error").exit_code == 1


# --- Keras logs


def test_keras_csvlogger_file_with_na_cells(tmp_path):
    rows = [{"accuracy": 0.7 - 0.3 * math.exp(-e), "loss": 0.5 + 0.5 * math.exp(-e),
             "val_accuracy": 0.68 - 0.3 * math.exp(-e), "val_loss": 0.55 + 0.5 * math.exp(-e)} for e in range(6)]
    f = keras_log(tmp_path / "training.log", rows)
    text = f.read_bytes()
    assert text.startswith(b"epoch,accuracy,loss,val_accuracy,val_loss\r\n0,")
    rep = report_of(f)
    assert rep["healthy"] and rep["runs"][0]["kind"] == "keras_csv"
    # resumed without validation data: Keras writes NA for the missing keys
    with f.open("a", newline="") as fh:
        fh.write("6,0.71,0.5,NA,NA\r\n7,0.73,0.48,NA,NA\r\n")
    rep = report_of(f)
    assert rep["healthy"] and any("'val_loss' are not numbers ('NA')" in w for w in rep["data_warnings"])


def test_keras_history_without_an_epoch_column(tmp_path):
    f = tmp_path / "history.csv"
    rows = [",loss,accuracy,val_loss,val_accuracy"]
    for e in range(10):
        rows.append(f"{e},{1.0 / (e + 1)},{0.5 + 0.04 * e},{0.5 + 0.08 * (e - 3) ** 2 / 4 if e > 3 else 0.9 - 0.1 * e},"
                    f"{0.6 + 0.01 * (e % 3)}")
    f.write_text("\n".join(rows) + "\n")
    rep = report_of(f)
    assert rep["runs"][0]["kind"] == "keras_history"
    assert pitfalls(rep) == ["overfitting"]


# --- bad input: one line, exit 2


@pytest.mark.parametrize("setup,args,message", [
    (lambda d: None, ["nope*/trainer_state.json"], "no file or folder matches this path pattern"),
    (lambda d: None, ["x.csv", "--baseline", "none*/x.csv"], "matches this baseline pattern"),
    (lambda d: (d / "run").mkdir() or (d / "run" / "run.json").write_text('{"plan": {}, "config": {}, "results": {}}'),
     ["run"], "The 'plan' field of run/run.json must hold the run's plan"),
    (lambda d: (d / "run").mkdir() or (d / "run" / "run.json").write_text('[1, 2]'),
     ["run"], "expected a run record"),
    (lambda d: (d / "l.jsonl").write_text('{"loss": 1}\n[1]\n{"loss": 2}\n'), ["l.jsonl"], "l.jsonl:2: expected a JSON object"),
    (lambda d: (d / "run").mkdir() or (d / "run" / "run.json").write_text(json.dumps(
        {"plan": {"scenario": {"task": "text_classification", "dataset_size": 9}, "technique": {"choice": "lora"}},
         "config": {"classes": 3}, "results": {"lora": [{"seed": 0, "accuracy": 0.5}]}})),
     ["run"], "The 'config.classes' field of run/run.json must be a list. Got int instead."),
    (lambda d: (d / "run").mkdir() or (d / "run" / "run.json").write_text(json.dumps(
        {"plan": {"scenario": {"task": "text_classification", "dataset_size": 9}, "technique": {"choice": "lora"}},
         "config": {}, "results": {"lora": [{"seed": 0, "accuracy": "high"}]}})),
     ["run"], "'results.lora[0].accuracy' field of run/run.json must be a number. Got 'high' instead."),
    (lambda d: (d / "run").mkdir() or (d / "run" / "run.json").write_text(json.dumps(
        {"plan": {"scenario": {"task": "translation", "dataset_size": 9}, "technique": {"choice": "lora"}},
         "config": {}, "results": {"lora": [{"seed": 0, "accuracy": 0.5}]}})),
     ["run"], "The 'task' field of run/run.json (plan.scenario) must be one of"),
    (lambda d: (d / "na.csv").write_text("epoch,loss\n1,n/a\n2,n/a\n"), ["na.csv"],
     "The 'loss' column of na.csv holds no numbers. Got 'n/a' instead."),
    (lambda d: (d / "b.csv").write_bytes(b"loss\n\xff\xfe\n"), ["b.csv"], "not UTF-8"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, setup, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("epoch,loss\n1,1.0\n2,0.9\n")
    setup(tmp_path)
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert message in r.output and r.output.startswith("Error:") and r.output.count("\n") == 1
    assert "Traceback" not in r.output


def test_semicolon_separated_log_with_decimal_commas(tmp_path):
    f = tmp_path / "log.csv"  # what a spreadsheet in a decimal-comma locale exports
    f.write_text("epoch;loss;val_loss;val_accuracy\n" + "".join(
        f"{e};{1.1 * 1.5 ** e:.3f};{1.2 * 1.5 ** e:.3f};0,3{e % 3}\n".replace(".", ",") for e in range(8)))
    rep = report_of(f)
    assert rep["runs"][0]["points"] == {"train_loss": 8, "val_loss": 8, "target": 8}
    assert pitfalls(rep)[0] == "divergence" and not rep["data_warnings"]


def test_unreadable_hparams_is_a_warning(tmp_path):
    v = tmp_path / "version_0"
    v.mkdir()
    (v / "hparams.yaml").write_text("lr: [unclosed\n")
    (v / "metrics.csv").write_text("epoch,step,train_loss\n0,1,1.0\n1,2,0.8\n2,3,0.6\n")
    rep = report_of(v / "metrics.csv")
    assert any("hparams.yaml: not readable YAML" in w for w in rep["data_warnings"])


def test_a_loss_that_learned_then_climbed_back_is_divergence(tmp_path):
    """A run that fell from 8.5 to 2.1 and climbed back to 8.5 (a constant rate too high once the easy part
    is learned) is divergence, though it ends where it started: the end is judged against the loss's own
    best, not only against its first value; its validation loss climbs back with it."""
    down = [8.5 - 6.4 * i / 11 for i in range(12)]
    up = [2.1 + 6.4 * i / 7 for i in range(8)]
    losses = [x * (1 + 0.02 * ((-1) ** i)) for i, x in enumerate(down + up + [8.5] * 6)]
    d = trainer_state(tmp_path / "run", losses, [0.3, 0.5, 0.6, 0.62, 0.4, 0.2, 0.2])
    rep = report_of(d)
    assert pitfalls(rep)[0] == "divergence"
    ev = next(s["evidence"] for s in rep["symptoms"] if s["id"] == "loss_exploding")
    assert ev["reading"] == "rose back above its own best" and ev["ratio"] > 3


def test_a_loss_that_falls_and_levels_off_is_not_read_as_climbing_back(tmp_path):
    losses = [1.1 * 0.8 ** i + 0.2 + 0.01 * ((-1) ** i) for i in range(26)]
    d = trainer_state(tmp_path / "run", losses, [0.5, 0.6, 0.7, 0.75, 0.78, 0.8, 0.8])
    assert "divergence" not in pitfalls(report_of(d))


def test_an_f1_column_is_found_by_its_name_whatever_it_is_called(tmp_path):
    """Keras' custom metrics are named by the user's function (``f1_metric``): accuracy at the majority
    share beside a validation F1 of 0 is class imbalance, whatever the column is called."""
    rows = [{"accuracy": 0.70 + 0.01 * (e % 3), "loss": 0.60 - 0.01 * e, "f1_metric": 0.05,
             "val_accuracy": 0.8095, "val_loss": 0.55 + 0.002 * e, "val_f1_metric": 0.0} for e in range(10)]
    f = keras_log(tmp_path / "training.log", rows)
    assert "class_imbalance" in pitfalls(report_of(f))
    from harness.troubleshooting.columns import f1_column

    assert f1_column(["f1_metric", "val_f1_metric", "loss"]) == "val_f1_metric"
    assert f1_column(["train/f1", "eval/f1-macro", "eval/f1"]) == "eval/f1-macro"
    assert f1_column(["loss", "fl1"]) is None


def test_column_names_match_however_a_logger_spelled_them(tmp_path):
    """camelCase (TrainLoss, ValAcc), Lightning's _epoch/_step suffixes (the per-epoch one preferred) and
    accuracies in percent on both sides: the same curves, and a train/validation gap on one scale."""
    from harness.troubleshooting.locate import read_logs

    f = tmp_path / "log.csv"
    rows = ["Epoch,TrainLoss,ValLoss,TrainAcc,ValAcc"]
    rows += [f"{e},{1.5 / e:.3f},{1.0 + 0.02 * e:.3f},{60 + 3 * e},{62 - 0.1 * e:.1f}" for e in range(1, 11)]
    f.write_text("\n".join(rows) + "\n")
    [log] = read_logs(f)
    assert {"train_loss", "val_loss", "target", "train_acc"} <= set(log.series)
    assert max(log.values("train_acc")) <= 1.0 and max(log.values("target")) <= 1.0
    g = tmp_path / "metrics.csv"
    g.write_text("epoch,step,train_loss_step,train_loss_epoch,val_loss_epoch\n"
                 + "".join(f"{e},{4 * e + 3},{9.0},{2.0 / (e + 1):.3f},{2.2 / (e + 1):.3f}\n" for e in range(6)))
    [log] = read_logs(g)
    assert log.values("train_loss")[0] == pytest.approx(2.0) and "val_loss" in log.series
    # printed logs: the same keys in camelCase
    h = tmp_path / "train.log"
    h.write_text("".join(f"Epoch [{e:03d}/10] TrainLoss={1.5 / e:.3f} TrainAcc={60 + 3 * e}% | ValLoss={1.0 + 0.02 * e:.3f} "
                         f"ValAcc={62 - 0.1 * e:.1f}%\n" for e in range(1, 11)))
    rep = report_of(h)
    assert "overfitting" in [d["pitfall"] for d in rep["diagnoses"]], rep["diagnoses"]



def test_columns_no_convention_names_are_recognised_by_their_words(tmp_path):
    """A validation loss called val_mse (a regression) or validation_loss_nats_per_byte (a byte-level LM),
    validation preferred to test and the measure's own word to another: read, and judged like any loss."""
    from harness.troubleshooting.locate import read_logs
    from harness.troubleshooting.columns import by_words, canonical_columns

    f = tmp_path / "history.csv"
    f.write_text("epoch,train_loss,val_mse,val_rmse\n" + "".join(
        f"{e},{1.0 / (e + 1):.4f},{0.5 + 0.04 * max(0, e - 2) ** 1.5:.4f},{0.7:.4f}\n" for e in range(12)))
    [log] = read_logs(f)
    assert log.values("val_loss")[-1] == pytest.approx(0.5 + 0.04 * 9 ** 1.5, rel=1e-3)  # val_mse, not val_rmse
    assert "overfitting" in pitfalls(report_of(f))
    cols = canonical_columns(["step", "train_bpb_estimate", "train_loss_nats_per_byte", "validation_bpb",
                              "validation_loss_nats_per_byte", "test_loss_nats_per_byte", "elapsed_seconds"])
    assert by_words("train_loss", cols) == "train_loss_nats_per_byte"
    assert by_words("val_loss", cols) == "validation_loss_nats_per_byte"
    assert by_words("val_loss", canonical_columns(["TrainingCost", "TestPerplexity"])) == "TestPerplexity"
    assert by_words("train_loss", canonical_columns(["elapsed_seconds", "learning_rate"])) is None


def test_a_csv_with_its_configuration_written_above_the_header(tmp_path):
    """Comment lines (#, %, //) and blank lines before the header are the run's notes, not the header."""
    from harness.troubleshooting.locate import read_logs

    f = tmp_path / "training_metrics.csv"
    f.write_text("# Training configuration\n# Layer Sizes: 784-128-10\n\nEpoch,Accuracy,Loss\n"
                 + "".join(f"{e},{99 - 9 * math.exp(-e):.3f},{0.05 + 0.3 * math.exp(-e):.4f}\n" for e in range(1, 16)))
    [log] = read_logs(f)
    assert log.values("train_loss")[0] == pytest.approx(0.05 + 0.3 * math.exp(-1), abs=1e-4)
    assert pitfalls(report_of(f)) == []

def test_a_sub_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch):
    import os

    from harness.troubleshooting import locate

    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "metrics.csv").write_text("epoch,train_loss,val_loss\n1,1.0,1.1\n2,0.8,0.9\n3,0.6,0.7\n")
    (tmp_path / "locked").mkdir()
    real = os.scandir

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found, notes = locate.discover(tmp_path)
    assert found == [tmp_path / "ok" / "metrics.csv"]
    assert any("locked: cannot be read (Permission denied)" in n for n in notes), notes
