"""Runs judged by a score other than accuracy (a detector's mAP, a segmenter's Dice, a translator's BLEU)
and losses logged only in parts (YOLO's box, class and distribution-focal losses), read through the
command line from the files those trainers write."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from cli import main
from harness.troubleshooting.columns import by_words, canonical_columns, loss_parts, score_column

YOLO8 = ["epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/precision(B)", "metrics/recall(B)",
         "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss", "val/cls_loss", "val/dfl_loss", "lr/pg0",
         "lr/pg1", "lr/pg2"]


def report(path):
    r = CliRunner().invoke(main, ["diagnose", str(path), "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def results_csv(tmp_path, rows):
    """Ultralytics' results.csv: every name and value right-aligned in a padded column."""
    p = tmp_path / "results.csv"
    lines = [",".join(f"{h:>22}" for h in YOLO8)]
    lines += [",".join(f"{v:>22.5g}" for v in r) for r in rows]
    p.write_text("\n".join(lines) + "\n")
    return p


def yolo_rows(n, *, val_turn=None, map_rate=8.0):
    rows = []
    for e in range(1, n + 1):
        box, cls, dfl = 1.4 * math.exp(-e / 15) + 0.6, 2.2 * math.exp(-e / 10) + 0.5, 1.2 * math.exp(-e / 20) + 0.9
        late = max(0, e - val_turn) if val_turn else 0
        vbox, vcls, vdfl = 1.3 * math.exp(-e / 12) + 0.8 + 0.03 * late, 1.9 * math.exp(-e / 9) + 0.7 + 0.12 * late, \
            1.1 * math.exp(-e / 15) + 1.0 + 0.02 * late
        m = 0.75 * (1 - math.exp(-e / map_rate)) - 0.01 * late
        rows.append([e, box, cls, dfl, m + 0.1, m, m, 0.6 * m, vbox, vcls, vdfl, 0.01, 0.01, 0.01])
    return rows


def test_a_yolo_run_whose_map_still_climbs_was_stopped_early(tmp_path):
    rep = report(results_csv(tmp_path, yolo_rows(15, map_rate=40.0)))
    assert rep["diagnoses"][0]["pitfall"] == "stopped_early", rep["symptoms"]
    assert rep["runs"][0]["points"] == {"train_loss": 15, "val_loss": 15, "target": 15}


def test_a_yolo_run_whose_validation_losses_climb_is_overfitting(tmp_path):
    rep = report(results_csv(tmp_path, yolo_rows(40, val_turn=15)))
    assert rep["diagnoses"][0]["pitfall"] == "overfitting", rep["symptoms"]
    # the validation loss is the sum of its three parts, read from the padded names
    ev = [s for s in rep["symptoms"] if s["id"] == "val_loss_rising"][0]["evidence"]
    assert ev["best"] == pytest.approx(min(r[8] + r[9] + r[10] for r in yolo_rows(40, val_turn=15)), rel=1e-3)


def test_a_converged_yolo_run_is_healthy(tmp_path):
    rep = report(results_csv(tmp_path, yolo_rows(60, map_rate=6.0)))
    assert rep["healthy"], rep["symptoms"]


def test_a_low_score_is_not_held_to_an_accuracy_chance_level(tmp_path):
    # a segmenter's Dice of 0.3 on 10 classes would be "below chance" only if Dice were an accuracy
    p = tmp_path / "metrics.csv"
    p.write_text("epoch,train_loss,val_loss,val_dice\n" + "\n".join(
        f"{e},{1 / (e + 1):.4f},{1.2 / (e + 1) + 0.3:.4f},{0.3 * (1 - math.exp(-e)):.4f}" for e in range(1, 30)) + "\n")
    rep = report(p)
    assert "failed_run" not in {d["pitfall"] for d in rep["diagnoses"]}, rep["symptoms"]


@pytest.mark.parametrize("keys, expected", [
    (YOLO8, "metrics/mAP50(B)"),
    (["epoch", "train_loss", "val_loss", "val_dice", "train_dice"], "val_dice"),
    (["step", "eval_loss", "eval_bleu", "eval_rouge1"], "eval_bleu"),
    (["epoch", "loss", "val_iou", "test_iou"], "val_iou"),
    (["epoch", "train_f1", "loss"], None),  # a training score is no target
    (["epoch", "heatmap_loss", "mapping_time"], None),  # words that only contain a score's letters
])
def test_score_column_by_words(keys, expected):
    assert score_column(keys) == expected


def test_loss_parts_only_where_no_total_is_logged():
    canon = canonical_columns(YOLO8)
    assert loss_parts("train/box_loss", canon) == ["train/box_loss", "train/cls_loss", "train/dfl_loss"]
    assert loss_parts("val/box_loss", canon) == ["val/box_loss", "val/cls_loss", "val/dfl_loss"]
    # detectron2 logs a total beside its parts: the total is the curve
    canon = canonical_columns(["iteration", "total_loss", "loss_cls", "loss_box_reg", "loss_rpn_cls"])
    assert by_words("train_loss", canon) == "total_loss" and loss_parts("total_loss", canon) == []


def yolo8_stdout(tmp_path, maps, losses):
    """YOLOv8's printed training: per epoch a header and its row (the progress bar redrawn with carriage
    returns, the first draws partial), then the validation header and its ``all`` row."""
    bar = "\u2588" * 10
    out = []
    for e, (m, (box, cls, dfl)) in enumerate(zip(maps, losses), 1):
        out.append("\n      Epoch    GPU_mem   box_loss   cls_loss   dfl_loss  Instances       Size\n")
        draws = [f"{e:>7}/{len(maps)}      2.61G {box * 1.3:>10.4g} {cls * 1.3:>10.4g} {dfl * 1.3:>10.4g}         "
                 f"52        640:  40%|{bar[:4]}      | 13/32 [00:04<00:06,  3.12it/s]",
                 f"{e:>7}/{len(maps)}      2.61G {box:>10.4g} {cls:>10.4g} {dfl:>10.4g}         45        640: "
                 f"100%|{bar}| 32/32 [00:10<00:00,  3.12it/s]"]
        out.append("\r".join(draws) + "\n")
        out.append("                 Class     Images  Instances      Box(P          R      mAP50  mAP50-95): "
                   f"100%|{bar}| 4/4 [00:01<00:00,  3.01it/s]\n")
        out.append(f"                   all        128        929      0.641      0.537 {m:>10.4g} {0.7 * m:>10.4g}\n")
    p = tmp_path / "train_output.txt"
    p.write_text("".join(out))
    return p


def test_yolo_printed_output_is_read_per_epoch(tmp_path):
    n = 12
    maps = [0.6 * (1 - math.exp(-e / 30)) for e in range(1, n + 1)]  # still climbing steadily
    losses = [(1.5 - 0.05 * e, 2.0 - 0.08 * e, 1.3 - 0.02 * e) for e in range(1, n + 1)]
    rep = report(yolo8_stdout(tmp_path, maps, losses))
    assert rep["runs"][0]["points"] == {"train_loss": n, "target": n}, rep["runs"]
    assert rep["diagnoses"][0]["pitfall"] == "stopped_early", rep["symptoms"]
    from pathlib import Path

    from harness.troubleshooting.tables import paired_rows
    rows = paired_rows(Path(tmp_path / "train_output.txt"))
    # the finished bar's values, not the first partial draw; the epoch from "k/N"
    assert rows[0]["box_loss"] == pytest.approx(1.45) and rows[2]["epoch"] == 3


def test_a_loss_logged_as_zero_before_it_was_measured_is_no_crash_and_no_divergence(tmp_path):
    # Ultralytics writes 0 for the validation losses of epochs it did not validate
    rows = yolo_rows(20, map_rate=6.0)
    for r in rows[:5]:
        r[8] = r[9] = r[10] = 0.0
    rep = report(results_csv(tmp_path, rows))
    assert "divergence" not in {d["pitfall"] for d in rep["diagnoses"]}, rep["symptoms"]
    # the zeros are values never measured, not a perfect validation loss: no leakage, 15 points read
    assert "data_leakage" not in {d["pitfall"] for d in rep["diagnoses"]}, rep["symptoms"]
    assert rep["runs"][0]["points"]["val_loss"] == 15


def test_validation_losses_that_are_zero_until_the_last_epoch_are_not_measured(tmp_path):
    # validation run only after the last epoch: 19 zeros, then one real value close to the training loss
    rows = yolo_rows(20, map_rate=6.0)
    for r in rows[:19]:
        r[4:11] = [0.0] * 7
    rep = report(results_csv(tmp_path, rows))
    assert rep["healthy"], rep["symptoms"]
