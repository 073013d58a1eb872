"""How a run ended: a run stopped inside its warm-up, a short validation curve still improving, a
validation AUC held at chance, a training accuracy that levelled off far below what a network can fit.
Read from real file formats through the command line."""

from __future__ import annotations

import csv
import json
import math

import pytest
from click.testing import CliRunner

from cli import main
from harness.troubleshooting import endings

TH = {"warmup_tail_points": 3, "short_curve_min_evals": 5, "short_curve_min_gain": 0.05,
      "still_improving_rate_ratio": 0.5, "constant_metric_min_evals": 3, "chance_metric_tolerance": 0.02,
      "underfit_max_train_accuracy": 0.6}


def diagnose(path):
    r = CliRunner().invoke(main, ["diagnose", str(path), "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def trainer_state(tmp_path, lrs, losses, evals):
    """A Trainer's trainer_state.json: a training record per learning rate, evaluations spread over the run."""
    hist = []
    n = len(lrs)
    for i, (lr, loss) in enumerate(zip(lrs, losses), 1):
        hist.append({"loss": loss, "learning_rate": lr, "epoch": i / n * 3, "step": i * 5})
        j = i * len(evals) // n
        if i * len(evals) % n == 0:
            hist.append({"eval_loss": evals[j - 1][0], "eval_accuracy": evals[j - 1][1], "epoch": i / n * 3,
                         "step": i * 5})
    p = tmp_path / "trainer_state.json"
    p.write_text(json.dumps({"global_step": n * 5, "log_history": hist}))
    return p


def test_a_run_that_ends_inside_its_warmup_stopped_early(tmp_path):
    lrs = [1e-6 * i for i in range(1, 7)]  # linear warm-up, never reached its peak
    p = trainer_state(tmp_path, lrs, [1.10, 1.09, 1.07, 1.06, 1.04, 1.03],
                      [(1.09, 0.45), (1.07, 0.52), (1.00, 0.74)])
    report = diagnose(p)
    assert report["diagnoses"][0]["pitfall"] == "stopped_early", report["symptoms"]
    ev = [e for d in report["diagnoses"] for e in d["evidence"] if e["symptom"] == "warmup_unfinished"]
    assert ev and ev[0]["last"] == pytest.approx(6e-6)
    # a run that never reached its learning rate shows no plateau: no capacity advice beside "train longer"
    assert "underfitting" not in {d["pitfall"] for d in report["diagnoses"]}


def test_a_finished_schedule_is_no_warmup(tmp_path):
    # warm-up then linear decay to zero: the schedule ran its course
    lrs = [2e-5, 4e-5, 6e-5, 5e-5, 4e-5, 3e-5, 2e-5, 1e-5]
    p = trainer_state(tmp_path, lrs, [1.0, 0.7, 0.5, 0.4, 0.35, 0.32, 0.31, 0.30],
                      [(0.5, 0.80), (0.42, 0.84), (0.41, 0.85), (0.41, 0.85)])
    report = diagnose(p)
    assert "warmup_unfinished" not in {s["id"] for s in report["symptoms"]}


def test_warmup_detector_needs_a_rise_to_the_end():
    assert endings.warmup_unfinished([1, 2, 3, 4], [1e-5, 2e-5, 3e-5, 4e-5], TH) is not None
    assert endings.warmup_unfinished([1, 2, 3, 4], [1e-5, 2e-5, 4e-5, 3e-5], TH) is None  # decaying
    assert endings.warmup_unfinished([1, 2, 3, 4], [5e-5] * 4, TH) is None  # constant
    assert endings.warmup_unfinished([1, 2], [1e-5, 2e-5], TH) is None  # too few to tell


def keras_csv(tmp_path, rows, header):
    p = tmp_path / "history.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return p


def test_validation_auc_at_chance_is_a_failed_run(tmp_path):
    rows = [(e, 0.69 - 0.01 * math.sin(e), 0.5 + 0.01 * math.sin(e), 26.7 + e, 0.5 + 0.001 * (e % 2))
            for e in range(10)]
    report = diagnose(keras_csv(tmp_path, rows, ["epoch", "loss", "auc", "val_loss", "val_auc"]))
    assert report["diagnoses"] and report["diagnoses"][0]["pitfall"] == "failed_run", report["symptoms"]
    ev = next(e for d in report["diagnoses"] for e in d["evidence"] if e["symptom"] == "metric_at_chance")
    assert ev["metric"] == "val_auc" and ev["chance_level"] == 0.5


def test_a_learning_auc_is_not_at_chance(tmp_path):
    rows = [(e, 0.69 * 0.8 ** e, 0.6 + 0.03 * e, 0.7 * 0.85 ** e, 0.6 + 0.03 * e) for e in range(10)]
    report = diagnose(keras_csv(tmp_path, rows, ["epoch", "loss", "auc", "val_loss", "val_auc"]))
    assert "metric_at_chance" not in {s["id"] for s in report["symptoms"]}


def test_chance_level_by_column_name():
    assert endings.chance_level("val_auc") == 0.5
    assert endings.chance_level("eval_roc_auc") == 0.5
    assert endings.chance_level("val_accuracy") is None  # depends on the classes
    assert endings.chance_level("val_auc_loss_ratio") is None


@pytest.mark.parametrize("curve, expected", [
    ([1.0, 0.9, 0.8, 0.72, 0.65], True),        # better at each evaluation, not slowing
    ([1.0, 0.8, 0.7, 0.66, 0.655], False),      # levelling off
    ([1.17, 1.165, 1.16, 1.15, 1.142], False),  # 2% of a high loss: too slow to call cut short
    ([1.0, 0.9, 0.95, 0.8, 0.7], False),        # one worse evaluation: no sign-test evidence
    ([1.0, 0.9, 0.8, 0.7], False),              # four evaluations: p = 1/8, too weak
])
def test_short_curve_still_improving(curve, expected):
    s = endings.short_still_improving(range(len(curve)), curve, TH, higher_is_better=False, metric="val_loss")
    assert (s is not None) == expected


def test_short_curve_still_improving_from_a_keras_log(tmp_path):
    rows = [(e, 1.2 - 0.05 * e, 1.06 - 0.027 * e - 0.001 * e * e, 0.50 + 0.02 * e) for e in range(5)]
    report = diagnose(keras_csv(tmp_path, rows, ["epoch", "loss", "val_loss", "val_accuracy"]))
    assert report["diagnoses"][0]["pitfall"] == "stopped_early", report["symptoms"]


def _saturating(start, level, n, tau):
    return [level - (level - start) * math.exp(-i / tau) for i in range(n)]


@pytest.mark.parametrize("curve, expected", [
    (_saturating(0.15, 0.53, 25, 5.0), "train_accuracy_low"),   # levelled off at 0.53: cannot fit its data
    (_saturating(0.15, 0.98, 25, 5.0), None),                   # levelled off near 1: fits its data
    ([0.15 + 0.015 * i for i in range(25)], None),               # still climbing at the end: cut short, not capacity
    ([0.5] * 25, None),                                          # never moved: a failed run, read elsewhere
    ([0.2, 0.4, 0.5, 0.5], None),                                # too few values to call a plateau
])
def test_training_accuracy_that_levelled_off_low(curve, expected):
    found = endings.train_accuracy_low(curve, TH)
    assert (found and found["id"]) == expected


def test_a_printed_training_accuracy_that_levelled_off_low_is_underfitting(tmp_path):
    """The only accuracy logged is the training one (a Torch7 optim.Logger file): a plateau at 53% reads as
    underfitting, with raising capacity or the rate among the fixes; the same file levelling off at 98% is healthy."""
    f = tmp_path / "train.log"
    f.write_text("% mean class accuracy (train set)\t\n" + "".join(
        f" {100 * v:.4e}\t\n" for v in _saturating(0.15, 0.53, 25, 5.0)))
    rep = diagnose(f)
    assert [d["pitfall"] for d in rep["diagnoses"]][:1] == ["underfitting"]
    f.write_text("% mean class accuracy (train set)\t\n" + "".join(
        f" {100 * v:.4e}\t\n" for v in _saturating(0.15, 0.98, 25, 5.0)))
    assert diagnose(f)["diagnoses"] == []


def test_accuracy_far_above_a_poor_auc_is_class_imbalance(tmp_path):
    """A Keras CSVLogger file of a multi-label model: binary accuracy 0.95 (the share of negative labels) while
    the validation AUC stays at 0.56-0.61: the accuracy comes from the class prior. A balanced run whose AUC
    is as poor but whose accuracy is as poor too, and an imbalanced one that ranks well, are not flagged."""
    def write(accs, aucs):
        f = tmp_path / "training_log.csv"
        with f.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["epoch", "accuracy", "auc", "loss", "val_accuracy", "val_auc", "val_loss"])
            for e, (a, r) in enumerate(zip(accs, aucs)):
                w.writerow([e, a - 0.01, r + 0.05, 0.04 - 0.002 * e, a, r, 0.19 - 0.001 * e])
        return f

    aucs = [0.574, 0.588, 0.566, 0.613, 0.560, 0.571, 0.565, 0.598]
    rep = diagnose(write([0.947, 0.948, 0.948, 0.949, 0.949, 0.949, 0.949, 0.949], aucs))
    assert [d["pitfall"] for d in rep["diagnoses"]][:1] == ["class_imbalance"]
    assert not any(d["pitfall"] == "class_imbalance"
                   for d in diagnose(write([0.55, 0.56, 0.57, 0.56, 0.58, 0.57, 0.58, 0.58], aucs))["diagnoses"])
    assert diagnose(write([0.90, 0.92, 0.93, 0.94, 0.945, 0.95, 0.952, 0.953], [0.80, 0.84, 0.86, 0.88, 0.89, 0.90, 0.90, 0.91]))["diagnoses"] == []
    th = {"poor_discrimination_auc": 0.7, "f1_gap_min": 0.25}
    assert endings.accuracy_without_ranking([0.95, 0.95], [0.6, 0.6], th)["id"] == "accuracy_without_ranking"
    assert endings.accuracy_without_ranking([95.0, 95.0], [0.6, 0.6], th) is None  # percent: not a fraction


def epochs_csv(tmp_path, rows, header="epoch,loss,accuracy,val_loss,val_accuracy"):
    p = tmp_path / "training.log"
    p.write_text(header + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    return p


def test_validation_an_order_of_magnitude_better_than_training_is_leakage(tmp_path):
    # validation near zero loss and perfect from the first epoch while training is still learning
    p = epochs_csv(tmp_path, [(0, 0.337, 0.828, 0.0156, 1.0), (1, 0.040, 0.975, 0.00136, 1.0),
                             (2, 0.034, 0.992, 0.0008, 1.0), (3, 0.0027, 1.0, 0.0006, 1.0)])
    report = diagnose(p)
    assert report["diagnoses"][0]["pitfall"] == "data_leakage", report["symptoms"]
    ev = [s for s in report["symptoms"] if s["id"] == "val_too_good"][0]["evidence"]
    # by accuracy: perfect at the first two epochs while training stood at 0.828 (by loss only the first epoch
    # counts: the training loss is below 0.1 by the second)
    assert ev["metric"] == "val_acc" and ev["training"] == pytest.approx(0.828)


@pytest.mark.parametrize("rows", [
    # dropout: validation about half the training loss, an ordinary healthy run
    [(0, 0.90, 0.70, 0.45, 0.86), (1, 0.50, 0.83, 0.30, 0.90), (2, 0.40, 0.87, 0.26, 0.91),
     (3, 0.35, 0.88, 0.25, 0.915), (4, 0.33, 0.89, 0.245, 0.917)],
    # a logging scale (gradient accumulation): a constant 16x ratio between two large losses
    [(0, 240.0, 0.5, 15.0, 0.6), (1, 40.0, 0.7, 2.5, 0.8), (2, 6.0, 0.8, 0.37, 0.85),
     (3, 5.2, 0.82, 0.32, 0.86), (4, 5.0, 0.83, 0.31, 0.86)],
])
def test_validation_somewhat_better_than_training_is_not_leakage(tmp_path, rows):
    report = diagnose(epochs_csv(tmp_path, rows))
    assert not [s for s in report["symptoms"] if s["id"] == "val_too_good"], report["symptoms"]


def test_validation_too_good_by_loss():
    th = {"leak_val_train_ratio": 10.0}
    hit = endings.validation_too_good([1, 2, 3], [0.9, 0.5, 0.3], [1, 2, 3], [0.05, 0.02, 0.01], None, None, th)
    assert hit["evidence"]["metric"] == "val_loss" and hit["evidence"]["evaluations_far_better"] == 3


def test_validation_too_good_by_accuracy_alone():
    th = {"leak_val_train_ratio": 10.0}
    hit = endings.validation_too_good([], [], [], [], [0.83, 0.97, 0.99], [1.0, 1.0, 1.0], th)
    assert hit["id"] == "val_too_good" and hit["evidence"]["metric"] == "val_acc"
    # a perfect validation score reached after training caught up is an easy task, not a leak
    assert endings.validation_too_good([], [], [], [], [0.83, 0.97, 0.99], [0.95, 1.0, 1.0], th) is None
    assert endings.validation_too_good([], [], [], [], [0.95, 0.97, 0.99], [1.0, 1.0, 1.0], th) is None


def test_a_short_validation_curve_that_stays_above_its_best_is_overfitting(tmp_path):
    # 7 epochs: validation at its best at epoch 1, then above it at every later epoch (the last dips back
    # to +10%) while the training loss keeps falling
    p = tmp_path / "history.csv"
    p.write_text("epoch,train_loss,val_mse\n0,0.805,0.718\n1,0.506,0.649\n2,0.425,0.684\n3,0.389,0.733\n"
                 "4,0.371,0.742\n5,0.359,0.747\n6,0.349,0.714\n")
    report = diagnose(p)
    assert report["diagnoses"][0]["pitfall"] == "overfitting", report["symptoms"]


def test_losses_rising_together_by_thousandths_near_zero_is_no_divergence(tmp_path):
    # both losses near zero: a rise from 0.0003 to 0.018 is a large ratio and no instability
    p = tmp_path / "train_log.csv"
    p.write_text("epoch,train_loss,val_loss\n1,0.575,0.138\n2,0.019,0.398\n3,0.0137,0.0824\n4,0.0096,0.00082\n"
                 "5,0.0080,0.00069\n6,0.00025,0.00017\n7,0.0179,0.0376\n")
    report = diagnose(p)
    assert "divergence" not in {d["pitfall"] for d in report["diagnoses"]}, report["symptoms"]


def test_a_run_that_never_learned_is_a_failed_run_with_a_label_check_first(tmp_path):
    # 9 classes: the loss stays at ln 9 and the accuracy near 1/9, wobbling, for 20 epochs (shuffled labels)
    rows = [(e, 2.20 - 0.002 * e + 0.01 * (e % 3), 0.11 + 0.01 * (e % 4), 2.19 + 0.02 * (e % 5),
             0.12 + 0.015 * ((e * 7) % 5)) for e in range(20)]
    report = diagnose(epochs_csv(tmp_path, rows))
    first = report["diagnoses"][0]
    assert first["pitfall"] == "failed_run", report["symptoms"]
    assert first["fixes"][0]["changes"][0]["field"] == "label_audit"


def test_nothing_learned_against_a_run_that_learned_and_levelled_off():
    th = {"short_curve_min_evals": 5, "underfit_flat_ratio": 0.9, "underfit_max_train_accuracy": 0.6}
    flat = [2.2, 2.19, 2.21, 2.18, 2.2, 2.19, 2.2, 2.18]
    assert endings.nothing_learned(flat, [0.11, 0.13, 0.1, 0.12, 0.11, 0.13, 0.12, 0.11], th)["id"] == "nothing_learned"
    # the accuracy rose beyond its noise: it learned something
    assert endings.nothing_learned(flat, [0.11, 0.2, 0.28, 0.33, 0.37, 0.39, 0.4, 0.4], th) is None
    # the loss fell: a plateau after learning is underfitting's to judge
    assert endings.nothing_learned([2.2, 1.8, 1.6, 1.5, 1.5, 1.5, 1.5, 1.5], [0.11] * 8, th) is None
    # a high accuracy that did not move is a run that started good (a pre-trained model), not one that never learned
    assert endings.nothing_learned(flat, [0.91, 0.92, 0.91, 0.92, 0.91, 0.92, 0.91, 0.92], th) is None


@pytest.mark.parametrize("max_steps, cut", [(300, True), (120, False)])
def test_a_trainer_checkpoint_taken_mid_run_at_its_best_was_cut_short(tmp_path, max_steps, cut):
    # evaluations that flatten (the slope test alone would not call the run cut short), the last the best
    hist = []
    evals = [0.9, 0.7, 0.62, 0.60, 0.597, 0.596]
    for i, (step, ev) in enumerate(zip(range(20, 121, 20), evals), 1):
        hist.append({"loss": 0.9 / i ** 0.5, "learning_rate": 2e-5, "epoch": step / 100, "step": step})
        hist.append({"eval_loss": ev, "eval_accuracy": 1.1 - ev, "epoch": step / 100, "step": step})
    p = tmp_path / "checkpoint-120" / "trainer_state.json"
    p.parent.mkdir()
    p.write_text(json.dumps({"global_step": 120, "max_steps": max_steps, "num_train_epochs": 3,
                             "log_history": hist}))
    report = diagnose(p)
    readings = [s["evidence"].get("reading", "") for s in report["symptoms"] if s["id"] == "still_improving"]
    assert any("step 120 of the 300 planned" in r for r in readings) == cut, report["symptoms"]
    if cut:
        assert report["diagnoses"][0]["pitfall"] == "stopped_early"


def test_a_train_validation_gap_while_validation_still_improves_is_no_overfitting(tmp_path):
    # an 11-point accuracy gap, but the validation loss is at its lowest at the last epoch
    rows = [(0, 1.52, 0.666, 0.632, 0.832), (1, 0.431, 0.888, 0.500, 0.851), (2, 0.281, 0.929, 0.466, 0.858),
            (3, 0.197, 0.957, 0.452, 0.8601), (4, 0.143, 0.976, 0.446, 0.8597)]
    report = diagnose(epochs_csv(tmp_path, rows))
    assert "overfitting" not in {d["pitfall"] for d in report["diagnoses"]}, report["symptoms"]


def _one_cycle_run(tmp_path, lrs):
    """A Lightning metrics.csv: validation improving to the last epoch, the learning rate as given."""
    n = len(lrs)
    lines = ["epoch,step,lr-SGD,train_loss,val_loss,val_acc"]
    for e in range(n):
        lines.append(f"{e},{(e + 1) * 100},{lrs[e]:.6g},{1.8 * math.exp(-e / 6) + 0.05:.4f},"
                     f"{1.5 * math.exp(-e / 25) + 0.2:.4f},{0.9 - 0.5 * math.exp(-e / 25):.4f}")
    p = tmp_path / "metrics.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_gains_at_the_end_of_an_annealed_schedule_are_no_cut_run(tmp_path):
    n = 30
    one_cycle = [0.1 * min(1.0, (e + 1) / 10) if e < 10 else 0.1 * (0.5 + 0.5 * math.cos(math.pi * (e - 10) / (n - 10)))
                 + 0.002 for e in range(n)]
    report = diagnose(_one_cycle_run(tmp_path, one_cycle))
    assert not [s for s in report["symptoms"] if s["id"] == "still_improving"], report["symptoms"]
    # the same curves under a constant rate: the run was cut short while it still learned
    report = diagnose(_one_cycle_run(tmp_path, [0.05] * n))
    assert report["diagnoses"] and report["diagnoses"][0]["pitfall"] == "stopped_early", report["symptoms"]


def test_schedule_annealed():
    th = {"anneal_done_share": 0.1}
    assert endings.schedule_annealed([0.01, 0.1, 0.08, 0.04, 0.01, 0.002], th)
    assert not endings.schedule_annealed([0.05] * 6, th)  # constant
    assert not endings.schedule_annealed([0.1, 0.08, 0.06, 0.05, 0.04, 0.03], th)  # still at 30% of the peak
    assert not endings.schedule_annealed([1e-6, 2e-6, 4e-6, 8e-6], th)  # warming up
