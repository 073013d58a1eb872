"""Plain-text and TensorBoard logs: what real frameworks print or write, read and diagnosed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from harness.troubleshooting.locate import read_logs, sniff
from harness.troubleshooting.textlogs import metrics_of, parse

KERAS_FIT = r'''
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np, keras
lr, epochs, verbose = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.normal(size=(400, 8)).astype("float32")
y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                      keras.layers.Dense(2, activation="softmax")])
m.compile(optimizer=keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
m.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.25, verbose=verbose)
print("Test:", m.evaluate(x[:100], y[:100], verbose=verbose))
'''


def report_of(*args):
    r = CliRunner().invoke(main, ["diagnose", *map(str, args), "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def pitfalls(rep):
    return [d["pitfall"] for d in rep["diagnoses"]]


@pytest.fixture(scope="module")
def keras_logs(tmp_path_factory):
    """stdout of real Keras 3 (torch backend) fits saved to files: (learning rate, epochs, verbose)."""
    import importlib.util

    if importlib.util.find_spec("keras") is None:  # not imported here: it would pick its default backend
        pytest.skip("keras is not installed (pip install -e '.[test]')")
    d = tmp_path_factory.mktemp("keras")
    script = d / "fit.py"
    script.write_text(KERAS_FIT)
    out = {}
    for name, args in {"v1": ("0.1", "12", "1"), "v2": ("0.1", "12", "2"), "nan": ("1e6", "6", "2")}.items():
        f = d / f"{name}.log"
        with f.open("w") as fh:
            subprocess.run([sys.executable, str(script), *args], stdout=fh, stderr=subprocess.STDOUT, check=True,
                           env={**os.environ, "KERAS_BACKEND": "torch"}, timeout=300)
        out[name] = f
    return out


@pytest.mark.slow
@pytest.mark.parametrize("verbose", ["v1", "v2"])
def test_keras_fit_output_is_read_epoch_by_epoch(keras_logs, verbose):
    f = keras_logs[verbose]
    assert sniff(f) == "text"
    records, final, style = parse(f)
    assert style == "keras_text" and [r["epoch"] for r in records] == list(range(1, 13))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(records[-1])
    # evaluate() is not an epoch; the N of "Epoch k/N" is the epochs the run was set to train
    assert set(final) == {"test_loss", "test_accuracy", "epochs_planned"} and final["epochs_planned"] == 12
    rep = report_of(f)
    assert rep["runs"][0]["kind"] == "keras_text"
    assert "divergence" not in pitfalls(rep), rep["symptoms"]


@pytest.mark.slow
def test_keras_fit_with_a_huge_learning_rate(keras_logs):
    """SGD at 1e6: Keras clips the probabilities, so the loss saturates (8.7, not NaN) and nothing moves.
    With the class count, a loss far above ln 2 is divergence; without it, a failed run."""
    rep = report_of(keras_logs["nan"], "--num-classes", "2")
    assert {"divergence", "failed_run"} <= set(pitfalls(rep)), rep["symptoms"]
    rep = report_of(keras_logs["nan"])
    assert "failed_run" in pitfalls(rep), rep["symptoms"]


def _tb(folder: Path, series: dict):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(folder))
    for tag, values in series.items():
        for step, v in enumerate(values):
            w.add_scalar(tag, v, step)
    w.close()


def test_tensorboard_event_files_from_the_writer(tmp_path):
    """Event files written by torch's SummaryWriter (TensorBoard's format), read by TensorBoard's reader."""
    _tb(tmp_path / "runs" / "exp1", {"Loss/train": [1.0 / (e + 1) for e in range(14)],
                                     "Loss/val": [0.5 + 0.03 * (e - 4) ** 2 for e in range(14)],
                                     "Accuracy/val": [0.8 - 0.002 * e for e in range(14)]})
    [log] = read_logs(tmp_path / "runs")
    assert log.kind == "tensorboard" and set(log.series) >= {"train_loss", "val_loss", "target"}
    event = next((tmp_path / "runs" / "exp1").glob("events.out.tfevents.*"))
    assert pitfalls(report_of(event))[0] == "overfitting"
    assert pitfalls(report_of(tmp_path / "runs"))[0] == "overfitting"


def test_a_corrupt_or_cut_event_file_is_read_as_far_as_it_goes_and_says_so(tmp_path):
    """A record damaged mid-file stops TensorBoard's reader silently; the diagnosis says what was left out
    rather than judging half a run as the whole; so does a file cut mid-record (a run still writing)."""
    _tb(tmp_path / "run", {"Loss/train": [1.0 / (e + 1) for e in range(40)]})
    event = next((tmp_path / "run").glob("events.out.tfevents.*"))
    data = bytearray(event.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: that record's checksum fails
    event.write_bytes(bytes(data))
    r = CliRunner().invoke(main, ["diagnose", str(tmp_path / "run"), "--format", "json"])
    assert r.exit_code in (0, 1), r.output
    assert any("left out" in w for w in json.loads(r.stdout)["data_warnings"]), r.output
    _tb(tmp_path / "cut", {"Loss/train": [1.0 / (e + 1) for e in range(40)]})
    event = next((tmp_path / "cut").glob("events.out.tfevents.*"))
    event.write_bytes(event.read_bytes()[:-7])
    r = CliRunner().invoke(main, ["diagnose", str(tmp_path / "cut"), "--format", "json"])
    assert any("bytes after record" in w for w in json.loads(r.stdout)["data_warnings"]), r.output


def test_keras_tensorboard_layout_train_and_validation_folders(tmp_path):
    """Keras' TensorBoard callback writes train/ and validation/ with the same tag: one run, val_ prefixed."""
    _tb(tmp_path / "logs" / "train", {"epoch_loss": [1.0 / (e + 1) for e in range(14)]})
    _tb(tmp_path / "logs" / "validation", {"epoch_loss": [0.5 + 0.03 * (e - 4) ** 2 for e in range(14)]})
    [log] = read_logs(tmp_path / "logs")
    assert set(log.series) == {"train_loss", "val_loss"}
    assert pitfalls(report_of(tmp_path / "logs"))[0] == "overfitting"


@pytest.mark.parametrize("line, expected", [
    ("| epoch   1 |   200/ 2983 batches | lr 20.0000 | ms/batch 11.61 | loss  5.80 | ppl   330.59",
     {"lr": 20.0, "loss": 5.80, "ppl": 330.59}),
    ("[1,  2000] loss: 2.187", {"loss": 2.187}),
    ("Epoch [3/10], Step [100/600], Loss: 0.1234", {"loss": 0.1234}),
    ("Epoch 3: 100%|##########| 313/313 [00:05<00:00, 60.1it/s, v_num=0, train_loss=0.123, val_acc=0.9]",
     {"train_loss": 0.123, "val_acc": 0.9}),
    ("epoch: 0,  loss is: 2.5047, acc is: 0.0708", {"loss": 2.5047, "acc": 0.0708}),
    ("Train Loss: 0.41 | Val Loss: 0.52 | Val Acc: 87.5", {"train_loss": 0.41, "val_loss": 0.52, "val_acc": 87.5}),
])
def test_pytorch_print_styles(line, expected):
    got = metrics_of(line)
    assert {k: got.get(k) for k in expected} == expected


def test_pytorch_printed_loop_and_nan(tmp_path):
    f = tmp_path / "train.out"
    lines = [f"Epoch [{e}/8], Step [{s}/300], Loss: {2.0 / e - 0.001 * s:.4f}" for e in range(1, 9) for s in (100, 200, 300)]
    lines += ["Epoch [9/9], Step [100/300], Loss: nan"]
    f.write_text("\n".join(lines) + "\n")
    [log] = read_logs(f)
    assert len(log.series["train_loss"]) == 25
    assert pitfalls(report_of(f))[0] == "divergence"


def test_trainer_dicts_in_tqdm_lines(tmp_path):
    """The Trainer's dicts as they appear inside a tqdm bar redrawn with carriage returns, NaN unquoted."""
    f = tmp_path / "out.txt"
    parts = []
    for i in range(1, 13):
        parts.append(f"\r {i * 8}%|###   | {i}/12 [00:0{i % 10}<00:10, 1.2it/s]")
        parts.append(f"{{'loss': {0.7 / i:.4f}, 'grad_norm': 1.5, 'learning_rate': 5e-05, 'epoch': {i / 4}}}\n")
    parts.append("{'loss': nan, 'grad_norm': nan, 'learning_rate': 5e-05, 'epoch': 3.25}\n")
    parts.append("{'train_runtime': 12.5, 'train_samples_per_second': 80.0, 'train_loss': 0.31, 'epoch': 3.25}\n")
    f.write_text("".join(parts))
    records, final, style = parse(f)
    assert style == "trainer_text" and len(records) == 13 and final["train_runtime"] == 12.5
    assert pitfalls(report_of(f))[0] == "divergence"


def test_trainer_dicts_with_quoted_values_as_recent_transformers_print_them(tmp_path):
    """transformers 5 prints every value as a quoted string; the numbers are the same."""
    f = tmp_path / "out.txt"
    lines = [f"{{'loss': '{0.9 / i:.4g}', 'grad_norm': '0.41', 'learning_rate': '0.00284', 'epoch': '{i / 2:g}'}}"
             for i in range(1, 9)]
    lines.append("{'eval_loss': '0.6087', 'eval_accuracy': '0.6667', 'eval_samples_per_second': '1.776e+04', 'epoch': '4'}")
    f.write_text("\n".join(lines) + "\n")
    records, _, style = parse(f)
    assert style == "trainer_text" and len(records) == 9
    assert records[0]["loss"] == 0.9 and records[-1]["eval_samples_per_second"] == 17760.0


def test_a_text_file_with_no_metrics_says_what_was_looked_for(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("We trained the model yesterday.\nIt went fine, I think.\n")
    r = CliRunner().invoke(main, ["diagnose", str(f)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "no training metrics recognised" in r.output and "Keras fit output" in r.output
    assert "TensorBoard event files" in r.output


def test_appended_runs_are_read_one_by_one(tmp_path):
    f = tmp_path / "training.log"
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    for run in range(2):
        rows += [f"{e},{0.5 + 0.04 * e},{1.0 / (e + 1)},{0.5 + 0.03 * e},{1.0 / (e + 1) + 0.1}" for e in range(5)]
    f.write_text("\n".join(rows) + "\n")
    logs = read_logs(f)
    assert [len(lg.series["train_loss"]) for lg in logs] == [5, 5]
    assert logs[1].path.endswith("#run2")


def test_large_log_streams_in_bounded_records(tmp_path):
    """Memory follows the records kept, not the file: past the cap every other record is dropped."""
    from harness.troubleshooting import printed

    f = tmp_path / "big.log"
    with f.open("w") as fh:
        for s in range(1, 30001):
            fh.write(f"step {s} loss={1.0 / s ** 0.3:.5f}\n" if s != 20001 else "step 20001 loss=nan\n")
    old = printed.MAX_RECORDS
    printed.MAX_RECORDS = 1000
    try:
        records, _, _ = parse(f)
    finally:
        printed.MAX_RECORDS = old
    assert 500 <= len(records) <= 1002
    steps = [r["step"] for r in records]
    assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == 30000  # the last record is kept
    assert 20001 in steps  # a NaN is never thinned away


def test_printed_tables_are_read(tmp_path):
    """A printed DataFrame (with its index), a Markdown table, tab-separated columns with free-form
    names (Torch7's optim.Logger) and a pipe-ruled table with units and notes in its cells read as metric
    records; a table of settings does not."""
    import pandas as pd

    epochs = range(1, 11)
    hist = {"loss": [1.0 / e for e in epochs], "accuracy": [0.5 + 0.04 * e for e in epochs],
            "val_loss": [0.8 - 0.05 * e if e < 4 else 0.65 + 0.08 * (e - 4) for e in epochs],
            "val_accuracy": [0.6 + 0.01 * e for e in epochs]}
    (tmp_path / "df").mkdir()
    df_log = tmp_path / "df" / "train.log"
    df_log.write_text("Training summary:\n" + str(pd.DataFrame(hist)) + "\nRemarks: done\n")
    assert "overfitting" in pitfalls(report_of(df_log))

    md = ["| epoch | loss | val_loss | val_accuracy |", "|---|---|---|---|"]
    md += [f"| {e} | {1.0 / e:.4f} | {hist['val_loss'][e - 1]:.4f} | {0.6 + 0.01 * e:.3f} |" for e in epochs]
    (tmp_path / "md").mkdir()
    (tmp_path / "md" / "results.md").write_text("# Results\n\n" + "\n".join(md) + "\n")
    rows, _, style = parse(tmp_path / "md" / "results.md")
    assert style == "table_text" and len(rows) == 10 and rows[0]["val_loss"] == pytest.approx(0.75)
    assert "overfitting" in pitfalls(report_of(tmp_path / "md" / "results.md"))

    logger = ["% mean class accuracy (train set)\t% mean class accuracy (test set)\t"]
    logger += [f"{0.1 + 0.004 * e:.4e}\t{0.1 + 0.004 * e:.4e}\t" for e in range(1, 21)]
    (tmp_path / "t7").mkdir()
    (tmp_path / "t7" / "train.log").write_text("\n".join(logger) + "\n")
    rows, _, style = parse(tmp_path / "t7" / "train.log")
    assert style == "table_text" and set(rows[0]) == {"train_acc", "test_acc", "epoch"}

    one = ["% mean class accuracy (train set)\t"] + [f" {15 + 2 * e:.4e}\t" for e in range(12)]
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "accuracy.log").write_text("\n".join(one) + "\n")
    rows, _, style = parse(tmp_path / "one" / "accuracy.log")
    assert style == "table_text" and len(rows) == 12 and rows[-1]["train_acc"] == pytest.approx(37.0)

    plain = ["epoch loss val_loss"] + [f"{e} {1.0 / e:.3f} {1.2 / e:.3f}" for e in range(1, 6)]
    (tmp_path / "plain.txt").write_text("\n".join(plain) + "\n")
    rows, _, style = parse(tmp_path / "plain.txt")
    assert style == "table_text" and rows[0] == {"epoch": 1.0, "loss": 1.0, "val_loss": 1.2}

    settings = tmp_path / "settings.txt"
    settings.write_text("name    value\nbatch    32\nepochs    10\nlr    0.001\n")
    assert parse(settings)[0] == []

    # columns between pipes without outer pipes, cells with units (50.80%, 19.6s) and a note after the last one
    ruled = [" Epoch | TrainLoss | TrainAcc |  ValLoss |  ValAcc |       LR |   Time", "-" * 70]
    ruled += [f"{e:>6} | {1.0 / e:9.4f} | {50 + 2 * e:7.2f}% | {hist['val_loss'][e - 1]:8.4f} | {60 + e:6.2f}% | 0.001000 | "
              f"{19.5 + e / 10:5.1f}s" + ("  \u2190 best" if e < 4 else "") for e in epochs]
    (tmp_path / "ruled").mkdir()
    (tmp_path / "ruled" / "train.log").write_text("Starting training\n\n" + "\n".join(ruled) + "\n")
    rows, _, style = parse(tmp_path / "ruled" / "train.log")
    assert style == "table_text" and len(rows) == 10
    assert rows[0]["time"] == pytest.approx(19.6) and rows[2]["val_loss"] == pytest.approx(0.65)
    assert "overfitting" in pitfalls(report_of(tmp_path / "ruled" / "train.log"))


def test_a_log_under_bracketed_time_stamps_is_text_not_json(tmp_path):
    # "[2024-10-31 22:45:12] ..." opens like a JSON array; the PyTorch tutorial's "[1,  2000] loss: ..." too
    p = tmp_path / "training_log.txt"
    lines = ["[2024-10-31 22:45:12] Training started", "[2024-10-31 22:45:13] Loading data..."]
    lines += [f"Epoch {e}/15 - loss: {1 / e:.4f} - accuracy: {0.5 + e / 40:.4f} - val_loss: {1.1 / e:.4f} - "
              f"val_accuracy: {0.5 + e / 45:.4f}" for e in range(1, 9)]
    p.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(main, ["diagnose", str(p), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["runs"][0]["points"]["val_loss"] == 8
    q = tmp_path / "tutorial.log"
    q.write_text("".join(f"[{e},  {b}] loss: {2.3 / (e + b / 4000):.3f}\n" for e in range(1, 4) for b in (2000, 4000)))
    r = CliRunner().invoke(main, ["diagnose", str(q), "--format", "json"])
    assert r.exit_code == 0, r.output


def test_a_printed_run_cut_off_before_its_planned_epochs_at_its_best_stopped_early(tmp_path):
    # "Epoch [k/200]" printed, the log ends at 60 with validation at its best; the curve flattens, so the slope
    # test alone would not call it cut short
    p = tmp_path / "training_log.txt"
    p.write_text("".join(
        f"Epoch [{e}/200], Train Loss: {0.8 + 1.5 / e ** 0.5:.4f}, Train Acc: {0.7 - 0.5 / e ** 0.5:.4f}, "
        f"Val Loss: {0.9 + 1.4 / e ** 0.5 + (0.01 if e % 7 == 3 and e < 60 else 0):.4f}, "
        f"Val Accuracy: {0.68 - 0.5 / e ** 0.5:.4f}\n" for e in range(1, 61)))
    r = CliRunner().invoke(main, ["diagnose", str(p), "--format", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["diagnoses"][0]["pitfall"] == "stopped_early", rep["symptoms"]
    # the same run printed as "Epoch [k/60]" ran its course: no reading of a cut
    q = tmp_path / "finished.txt"
    q.write_text(p.read_text().replace("/200]", "/60]"))
    rep = json.loads(CliRunner().invoke(main, ["diagnose", str(q), "--format", "json"]).stdout)
    assert not any("planned" in str(s["evidence"].get("reading", "")) for s in rep["symptoms"]), rep["symptoms"]


HISTORY = {"loss": [1.52, 0.43, 0.28, 0.20, 0.14, 0.11], "accuracy": [0.67, 0.89, 0.93, 0.96, 0.98, 0.99],
           "val_loss": [0.40, 0.36, 0.41, 0.48, 0.55, 0.63], "val_accuracy": [0.85, 0.87, 0.86, 0.85, 0.84, 0.83]}


@pytest.mark.parametrize("write", [
    lambda h: str(h),  # print(history.history) or str() saved to a file: Python's quotes
    lambda h: json.dumps(h),  # json.dump(history.history, f) without a wrapper
    lambda h: json.dumps(h, indent=2),  # pretty-printed: each list over many lines
    lambda h: "Training done\n" + "".join(f"{k.replace('_', ' ').title()} List: {v}\n" for k, v in h.items()),
])
def test_a_history_of_named_lists_is_read_column_by_column(tmp_path, write):
    p = tmp_path / "training_history.txt"
    p.write_text(write(HISTORY))
    r = CliRunner().invoke(main, ["diagnose", str(p), "--format", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["runs"][0]["points"]["val_loss"] == 6, rep["runs"]
    assert rep["diagnoses"][0]["pitfall"] == "overfitting", rep["symptoms"]


def test_named_lists_of_another_length_are_not_aligned_with_the_epochs(tmp_path):
    from harness.troubleshooting.tables import named_lists

    p = tmp_path / "h.txt"
    p.write_text(str({"step_loss": [0.9 - 0.01 * i for i in range(40)], "val_loss": [0.8, 0.6, 0.5, 0.45],
                      "val_acc": [0.6, 0.7, 0.75, 0.78], "note": "not a list"}))
    rows = named_lists(p)
    assert len(rows) == 4 and set(rows[0]) == {"epoch", "val_loss", "val_acc"}


def test_counts_and_summaries_printed_beside_the_epochs_are_no_points(tmp_path):
    # "Best Epoch: 4" and a best model's figures restated after training are not a fourth and fifth point
    p = tmp_path / "train.log"
    p.write_text("".join(f"Epoch {e}: train_loss={1 / e:.3f} val_loss={0.5 + 0.05 * e:.3f}\n" for e in range(1, 9))
                 + "Best Epoch: 1\nLoaded best model (epoch=1, val_loss=0.550)\nBest val_loss: 0.550\n")
    records, _, _ = parse(p)
    assert [r.get("epoch") for r in records] == list(range(1, 9))
