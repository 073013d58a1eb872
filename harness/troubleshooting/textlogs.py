"""Plain-text training logs (what a script printed, saved to a file) read into metric records.

Recognised by content, line by line, in one pass:

- Keras / TensorFlow ``fit`` output: ``Epoch k/N`` headers followed by verbose-1
  progress bars (redrawn with backspaces and carriage returns; Keras 3's with terminal
  colour codes and box-drawing characters), verbose-2 lines
  (``1875/1875 - 5s - 3ms/step - loss: ...``) or the older ``- 6s - loss: ... -
  acc: ...`` style. The first finished bar after a header is the epoch's record;
  finished bars after it and before the next header are ``evaluate()`` calls,
  kept apart (``RunLog.final``) and never read as epochs.
- Hugging Face ``Trainer`` printed dicts (``{'loss': 0.69, 'grad_norm': ..., 'epoch': 0.5}``,
  ``{'eval_loss': ...}``), also inside tqdm lines; read item by item with a pattern,
  nothing evaluated.
- The usual PyTorch ``print`` styles and progress bars: ``Epoch 3/10 ... loss=0.41 acc=0.87``,
  ``Epoch [3/10], Step [100/600], Loss: 0.1234``, ``[3,  2000] loss: 1.234``,
  Lightning's ``Epoch 3: 100%|...| v_num=0, train_loss=0.12, val_acc=0.9]``.

A log with none of these is read as printed tables (``tables``: a header over rows, a header over every
row, named lists of values). Memory is bounded by the number of records kept, not the file: the file is read
in 1 MiB chunks, and past ``MAX_RECORDS`` records every other one is dropped (the stride doubles), which keeps
the curve's shape for the curve tests (``printed``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from harness.troubleshooting.printed import NUM, Records, _value, norm_key, pieces
from harness.troubleshooting.tables import named_lists, paired_rows, table_rows

# a key: one to three words (the first a letter), then ':' or '=', then a number
# a key starts where a token starts and each word is taken whole (possessive): linear in the line's length,
# so a 50 MB line of one token is scanned once, not once per character
_KV = re.compile(rf"(?<![\w/.\-])((?:[A-Za-z][\w/.\-]*+)(?:[ \t][A-Za-z][\w/.\-]*+){{0,2}})\s*[:=]\s*({NUM})(?![\w.])",
                 re.I)
_EPOCH_HEADER = re.compile(r"^\s*Epoch\s+(\d+)\s*/\s*(\d+)\s*$", re.I)
# Keras verbose 1 (``[====>...]`` in Keras 2, a line of box-drawing characters in Keras 3) and verbose 2
_BAR = re.compile(r"^\s*(\d+)/(\d+)\s*(?:\[[=>.\-\s]*\]|[\u2500-\u259f]+|-)")
_OLD_V2 = re.compile(r"^\s*-\s*\d+s\b.*-\s*\w+:\s")
_EPOCH = re.compile(r"\bepoch\b\s*[:#\[(]?\s*(\d+)(?:\s*(?:/|of)\s*(\d+))?", re.I)
_STEP = re.compile(r"\b(?:step|iter(?:ation)?|batch|it)\b\s*[:#\[(]?\s*(\d+)(?:\s*/\s*(\d+))?", re.I)
_TORCH_TUTORIAL = re.compile(r"^\s*\[\s*(\d+),\s*(\d+)\]\s")  # [epoch, batch] loss: ...
_DICT = re.compile(r"\{\s*'[A-Za-z_][\w/]*'\s*:.*\}")
# words that look like keys but are not metrics
_NOT_METRICS = {"eta", "epoch", "step", "iter", "iteration", "batch", "it", "time", "v_num", "lr_scheduler",
                "total", "elapsed", "seed", "samples", "s", "ms"}
_FILLER = re.compile(r"(?:_(?:is|was|of|at|now|value))+$")
_PIPE_KV = re.compile(rf"^\s*([A-Za-z][\w/.\-]*(?:[ \t][A-Za-z][\w/.\-]*){{0,2}})\s+({NUM})\s*$", re.I)


def metrics_of(text: str) -> dict:
    """The ``key: number`` / ``key=number`` pairs of one line, and ``key number`` fields of a line cut
    into fields by ``|`` (``| epoch 1 | lr 20.0 | loss 5.80 | ppl 330.59``); keys normalised,
    trailing filler words dropped (``loss is: 0.3`` is ``loss``)."""
    out = {}
    pairs = list(_KV.findall(text))
    if text.count("|") >= 2:
        pairs += [m.groups() for f in text.split("|") if (m := _PIPE_KV.match(f))]
    for key, raw in pairs:
        k = norm_key(_FILLER.sub("", norm_key(key)))
        # a phrase ("Epoch 1 train loss") keeps its last words; "ETA: 2s" and counters are not metrics
        if k in _NOT_METRICS or k.split("_")[-1] in ("eta",):
            continue
        try:
            out[k] = _value(raw)
        except ValueError:
            continue
    return out


# recent transformers print each value as a quoted string ('loss': '1.105'); older ones as a number
_DICT_ITEM = re.compile(rf"'([A-Za-z_][\w/.\-]*)'\s*:\s*(['\"]?)({NUM})\2(?=\s*[,}}])", re.I)


def _trainer_dict(line: str) -> Optional[dict]:
    """The numeric items of a printed dict (``{'loss': 0.69, 'epoch': 0.5}``; ``nan`` unquoted as Python
    prints it; ``{'loss': '0.69'}`` as recent transformers print it). Read by pattern, item by item: nothing is evaluated."""
    m = _DICT.search(line)
    if not m:
        return None
    out = {}
    for k, _quote, raw in _DICT_ITEM.findall(m.group(0)):
        try:
            out[k] = _value(raw)
        except ValueError:
            continue
    return out or None


_COUNTER_KEY = re.compile(r"(?:^|_)(?:best|epochs?|steps?|iter\w*|batch\w*|total)(?:_|$)")


def parse(path: Path) -> tuple[list[dict], dict, str]:
    """(records, final metrics of evaluate() calls with the N of ``Epoch k/N`` as ``epochs_planned``, the
    style recognised: 'keras_text', 'trainer_text', 'text') of one text log. No records: ([], {}, '')."""
    rec = Records()
    final: dict = {}
    styles = {"keras": 0, "trainer": 0, "text": 0}
    epoch: Optional[int] = None        # Keras: the current header's epoch
    epoch_done = True                  # Keras: the current epoch's record was taken
    last_key = None                    # generic lines: (epoch, step) of the last record
    planned = 0                        # the N of "Epoch k/N": the epochs the run was set to train
    counted = False                    # generic lines: some record had an epoch or a step
    for line in pieces(path):
        h = _EPOCH_HEADER.match(line)
        if h:
            epoch, epoch_done = int(h.group(1)), False
            planned = max(planned, int(h.group(2)))
            continue
        bar = _BAR.match(line)
        if bar or (epoch is not None and _OLD_V2.match(line)):
            m = metrics_of(line)
            finished = bar is None or bar.group(1) == bar.group(2)
            if not m or not finished or re.search(r"\bETA\b", line):
                continue
            validated = any(k.startswith("val_") for k in m)
            if epoch is not None and not epoch_done:
                rec.add({"epoch": epoch, **m})
                epoch_done = True
                styles["keras"] += 1
            elif validated:  # an epoch whose header was not captured (printed to the other stream)
                epoch = (epoch or 0) + 1 if epoch_done or epoch is None else epoch
                rec.add({"epoch": epoch, **m})
                epoch_done = True
                styles["keras"] += 1
            else:  # a finished bar after the epoch's own, or before any fit: evaluate()
                final.update({k if k.startswith("test_") else f"test_{k}": v for k, v in m.items()})
            continue
        if "{'" in line:
            d = _trainer_dict(line)
            if d and any(k in d for k in ("loss", "eval_loss", "train_loss")) or (
                    d and any(k.startswith("eval_") for k in d)):
                styles["trainer"] += 1
                if "train_runtime" in d or "train_samples_per_second" in d:
                    final.update({k: v for k, v in d.items() if isinstance(v, (int, float))})
                    continue
                rec.add(d)
                continue
        m = metrics_of(line)
        if not m:
            continue
        e = _EPOCH.search(line)
        s = _STEP.search(line)
        t = _TORCH_TUTORIAL.match(line)
        row: dict = {}
        if t:
            row["epoch"], row["step"] = int(t.group(1)), int(t.group(2))
        else:
            if e:
                row["epoch"] = int(e.group(1))
                planned = max(planned, int(e.group(2) or 0))
            if s:
                row["step"] = int(s.group(1))
        if not row and all(k.startswith("test") for k in m):
            final.update(m)  # "Test accuracy: 0.91" printed after training
            continue
        if not row and not any(k in m for k in ("loss", "train_loss", "val_loss", "val_acc", "val_accuracy")):
            continue  # a number in passing ("lr = 0.1"), not a training record
        if all(_COUNTER_KEY.search(k) for k in m):
            continue  # "Best Epoch: 4", "Total steps: 900": a count, not a measurement
        if not row and counted:
            continue  # figures without an epoch or step in a log that counts them: a summary, not a point
        counted = counted or bool(row)
        row.update(m)
        key = (row.get("epoch"), row.get("step"))
        styles["text"] += 1
        if key == last_key and key != (None, None):
            merged = {**rec.rows[-1], **row} if rec.rows else row
            rec.replace_last(merged)  # a progress bar redrawn, or train and val lines of one epoch
        else:
            rec.add(row)
        last_key = key
    rows = rec.finish()
    if planned:
        final["epochs_planned"] = planned
    if not rows:
        rows = table_rows(path) or paired_rows(path) or named_lists(path)
        return (rows, final, "table_text") if rows else ([], final, "")
    style = max(styles, key=styles.get)
    return rows, final, {"keras": "keras_text", "trainer": "trainer_text", "text": "text"}[style]
