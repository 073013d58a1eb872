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

Memory is bounded by the number of records kept, not the file: the file is read
in 1 MiB chunks, and past ``MAX_RECORDS`` records every other one is dropped
(the stride doubles), which keeps the curve's shape for the curve tests.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Iterator, Optional

from harness.troubleshooting.columns import ACCURACY_WORDS, SPLIT_WORDS, spelled

MAX_RECORDS = 50_000
MAX_LINE = 1 << 16
CHUNK = 1 << 20

NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf(?:inity)?"
_NUM_RE = re.compile(rf"(?:{NUM})", re.I)
# a key: one to three words (the first a letter), then ':' or '=', then a number
# a key starts where a token starts and each word is taken whole (possessive): linear in the line's length,
# so a 50 MB line of one token is scanned once, not once per character
_KV = re.compile(rf"(?<![\w/.\-])((?:[A-Za-z][\w/.\-]*+)(?:[ \t][A-Za-z][\w/.\-]*+){{0,2}})\s*[:=]\s*({NUM})(?![\w.])",
                 re.I)
_EPOCH_HEADER = re.compile(r"^\s*Epoch\s+(\d+)\s*/\s*(\d+)\s*$", re.I)
# Keras verbose 1 (``[====>...]`` in Keras 2, a line of box-drawing characters in Keras 3) and verbose 2
_BAR = re.compile(r"^\s*(\d+)/(\d+)\s*(?:\[[=>.\-\s]*\]|[\u2500-\u259f]+|-)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_OLD_V2 = re.compile(r"^\s*-\s*\d+s\b.*-\s*\w+:\s")
_EPOCH = re.compile(r"\bepoch\b\s*[:#\[(]?\s*(\d+)(?:\s*(?:/|of)\s*(\d+))?", re.I)
_STEP = re.compile(r"\b(?:step|iter(?:ation)?|batch|it)\b\s*[:#\[(]?\s*(\d+)(?:\s*/\s*(\d+))?", re.I)
_TORCH_TUTORIAL = re.compile(r"^\s*\[\s*(\d+),\s*(\d+)\]\s")  # [epoch, batch] loss: ...
_DICT = re.compile(r"\{\s*'[A-Za-z_][\w/]*'\s*:.*\}")
# words that look like keys but are not metrics
_NOT_METRICS = {"eta", "epoch", "step", "iter", "iteration", "batch", "it", "time", "v_num", "lr_scheduler",
                "total", "elapsed", "seed", "samples", "s", "ms"}
SYNONYMS = {"acc": "acc", "training_loss": "train_loss", "valid_loss": "val_loss", "validation_loss": "val_loss",
            "valid_acc": "val_acc", "validation_acc": "val_acc", "validation_accuracy": "val_accuracy",
            "val_accuracy": "val_accuracy", "train_accuracy": "train_accuracy", "training_accuracy": "train_accuracy",
            "avg_loss": "loss", "average_loss": "loss", "running_loss": "loss", "mean_loss": "loss"}


def norm_key(key: str) -> str:
    """A printed key in the column conventions' spelling (``columns.spelled``), with its synonyms."""
    k = spelled(key)
    return SYNONYMS.get(k, k)


def _value(raw: str) -> float:
    return float(raw.lower().replace("infinity", "inf"))


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


def pieces(path: Path) -> Iterator[str]:
    """The file's lines, also cut at carriage returns and backspaces (progress bars redraw with them),
    read in chunks so that memory does not grow with the file."""
    import codecs

    from knowledge.reading import decode, open_file

    tail = ""
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character cut by a chunk stays whole
    with open_file(path, what="log") as fh:
        first = True
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            if first and (chunk.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in chunk[:4096]):
                decode(chunk[:4096], str(path))  # UTF-16 or binary: the reading layer's own message
            first = False
            text = tail + utf8.decode(chunk)
            parts = re.split(r"[\n\r\x08]+", text)
            tail = parts.pop()[-MAX_LINE:]
            for p in parts:
                p = _ANSI.sub("", p).strip()  # colours and bold of a terminal progress bar
                if p:
                    yield p[:MAX_LINE]
    tail = _ANSI.sub("", tail).strip()
    if tail:
        yield tail


class Records:
    """Metric records with bounded memory: past ``cap`` records, every other one is dropped."""

    def __init__(self, cap: Optional[int] = None):
        self.rows: list[dict] = []
        self.cap = cap or MAX_RECORDS
        self.stride = 1
        self.seen = 0
        self.last: Optional[dict] = None

    def add(self, row: dict) -> None:
        """Keep every ``stride``-th record, and always one that holds a NaN or infinity (divergence
        must never be thinned away); ``finish`` keeps the last one too."""
        self.seen += 1
        self.last = row
        if (self.seen - 1) % self.stride and not _nonfinite(row):
            return
        self.rows.append(row)
        self.last = None
        if len(self.rows) >= self.cap:
            self.rows = [r for i, r in enumerate(self.rows) if i % 2 == 0 or _nonfinite(r)]
            self.stride *= 2

    def finish(self) -> list[dict]:
        if getattr(self, "last", None) is not None:
            self.rows.append(self.last)
        return self.rows

    def replace_last(self, row: dict) -> None:
        if self.rows:
            self.rows[-1] = row
        else:
            self.add(row)


def _nonfinite(row: dict) -> bool:
    return any(isinstance(v, float) and not math.isfinite(v) for v in row.values())


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
        rows = table_rows(path) or paired_rows(path)
        return (rows, final, "table_text") if rows else ([], final, "")
    style = max(styles, key=styles.get)
    return rows, final, {"keras": "keras_text", "trainer": "trainer_text", "text": "text"}[style]


_NUM_CELL = re.compile(rf"^(?:{NUM})%?$", re.I)
# a printed table's cell: a number with its unit (19.6s, 50.80%, 42 ms), and in the last column a note after
# it (``0.65  <- best``, ``12.1s *``): the number is the cell's value
_UNIT_CELL = re.compile(rf"^({NUM})\s*(%|[a-zµ]{{1,3}})?$", re.I)
_NOTED_CELL = re.compile(rf"^({NUM})\s*(%|[a-zµ]{{1,3}})?\s+[^\w\s.].*$", re.I)
_NAME_CELL = re.compile(r"^[A-Za-z_][\w./\-]*$")
_RULE = re.compile(r"^[\s|:+=\-]+$")  # a Markdown separator (|---|:--:|) or a ruled line
# metric names a table header must hold one of (after norm_key) to be read as a training log
_TABLE_METRICS = re.compile(r"(?:^|_)(?:loss|acc|accuracy|f1|auc|error|err|cost|map\d*|miou|iou|dice)(?:$|_)")
MIN_TABLE_ROWS = 3


_SPLIT_WORD = tuple((split, rf"\b(?:{'|'.join(words)})\b") for split, words in SPLIT_WORDS.items())
_METRIC_WORD = (("loss", r"\b(?:loss|cost)\b"), ("acc", rf"\b(?:{'|'.join(ACCURACY_WORDS)})\b"), ("f1", r"\bf1\b"),
                ("auc", r"\bauc\b"))


@functools.lru_cache(maxsize=4096)  # a log repeats its cells: each spelled out once
def column_name(cell: str) -> str:
    """A table header cell in the conventions' spelling: ``norm_key`` for a name like ``val_loss``,
    else the split and metric words found in a free-form one (``% mean class accuracy (train set)``
    -> ``train_acc``, ``Test acc.`` -> ``test_acc``)."""
    key = norm_key(cell)
    words = re.sub(r"[^a-z0-9]+", " ", cell.lower())
    metric = next((m for m, pat in _METRIC_WORD if re.search(pat, words)), None)
    if metric is None or re.fullmatch(r"[a-z0-9_]+", key):
        return key
    split = next((s for s, pat in _SPLIT_WORD if re.search(pat, words)), None)
    if metric == "loss":
        return {"val": "val_loss", "test": "test_loss"}.get(split, "loss")
    return f"{split}_{metric}" if split else metric


def _cells(line: str) -> list[str]:
    """A table line's cells: between ``|`` (Markdown), else at tabs, else at runs of 2+ spaces (a
    printed DataFrame, Torch7's optim.Logger), else at single spaces."""
    s = line.strip()
    if s.count("|") >= 2:
        return [c.strip() for c in s.strip("|").split("|")]
    if "\t" in s:
        return [c.strip() for c in s.split("\t") if c.strip()]
    cells = re.split(r"\s{2,}", s)
    if len(cells) > 1:
        return cells
    words = s.split()  # single spaces: a row of numbers or of one-word names, else one cell
    if all(_NUM_CELL.match(w) or _NAME_CELL.match(w) for w in words):
        return words
    return [s]


def _cell_number(cell: str, last: bool) -> Optional[str]:
    """The number a table cell holds (``%`` kept, another unit dropped), or None; only the last cell may carry
    a note after its number."""
    if _NUM_CELL.match(cell):
        return cell
    m = _UNIT_CELL.match(cell) or (_NOTED_CELL.match(cell) if last else None)
    if m is None:
        return None
    return m.group(1) + ("%" if m.group(2) == "%" else "")


_BAR_TAIL = re.compile(r":?\s*\d{1,3}%\s*\|.*$")  # a tqdm bar after a header or a row (``: 100%|███| 401/401 [...]``)
_OF_TOTAL = re.compile(r"^(\d+)/\d+$")  # ``3/9``: the third of nine epochs


def header_keys(line: str) -> Optional[tuple]:
    """The column names of a line printed as a header over a single row (YOLO's ``Epoch GPU_mem box_loss ...``,
    ``Class Images ... mAP50 mAP50-95): 100%|...``): at least two names cut at white space, no number among
    them and a metric among them; None otherwise."""
    names = _BAR_TAIL.sub("", line).split()
    if len(names) < 2 or any(_NUM_CELL.match(n) for n in names):
        return None
    keys = tuple(spelled(n) for n in names)
    return keys if any(_TABLE_METRICS.search(k) for k in keys) else None


def pair_row(keys: tuple, line: str) -> Optional[dict]:
    """The record of a row printed under ``keys`` (``1/100 3.2G 1.21 ...``; ``all 128 929 ... 0.446``): as many
    fields, numbers (with a unit, ``3.2G``; ``k/N`` is k) but for a leading label (``all``). None otherwise."""
    cells = _BAR_TAIL.sub("", line).split()
    if len(cells) != len(keys):
        return None
    out = {}
    for i, (k, c) in enumerate(zip(keys, cells)):
        m = _OF_TOTAL.match(c)
        num = m.group(1) if m else _cell_number(c, i == len(cells) - 1)
        if num is None:
            if i == 0 and _NAME_CELL.match(c):
                continue  # the row's label
            return None
        out[k] = _value(num.rstrip("%"))
    return out


def paired_rows(path: Path) -> list[dict]:
    """Records of a log that prints a header before every row (``header_keys``, ``pair_row``): the pairs of
    one epoch merged, a new record wherever a header already in the current one comes again; a record the
    same as the one before (the final model validated again after training) is a reprint, not another
    evaluation."""
    out = Records()
    current: dict = {}
    seen: set = set()
    above, previous = None, None  # the keys of the line above, if it is a header

    def close():
        nonlocal previous
        if current and current != previous:
            out.add(current)
        previous = current

    under = None  # the header the current row was read under, while its progress bar redraws
    for line in pieces(path):
        rec = pair_row(above, line) if above is not None else None
        if rec is not None:
            if above in seen:
                close()
                current, seen = {}, set()
            current.update(rec)
            seen.add(above)
            under = above
        elif under is not None and (rec := pair_row(under, line)) is not None:
            current.update(rec)  # the row's bar redrawn: its latest values
        else:
            under = None
        above = header_keys(line) if rec is None else None
    close()
    rows = out.finish()
    return rows if len(rows) >= MIN_TABLE_ROWS else []


def table_rows(path: Path) -> list[dict]:
    """Metric records of the tables in a printed log: a header of names, at least one a metric
    (loss, accuracy, F1, AUC, error; a lone column only when its name says which in words, as
    Torch7's optim.Logger writes one), then at least ``MIN_TABLE_ROWS`` rows of as many numbers (or one
    more: a printed index). Each table gets an ``epoch`` counting from 1 unless it has its own, so
    tables appended one after another read as separate runs."""
    out = Records()  # bounded memory, as for the other printed styles
    header: Optional[list] = None
    block: list[dict] = []  # the current table's first rows, kept until it has enough to count
    taken = 0  # rows of the current table

    def close():
        nonlocal taken
        block.clear()
        taken = 0

    for line in pieces(path):
        if not line.strip() or _RULE.match(line):
            continue
        cells = _cells(line)
        numbers = [_cell_number(c, i == len(cells) - 1) for i, c in enumerate(cells)]
        numeric = [n is not None for n in numbers]
        if header and cells and all(numeric) and len(cells) in (len(header), len(header) + 1):
            vals = [_value(c.rstrip("%")) for c in numbers[len(cells) - len(header):]]
            row = dict(zip(header, vals))
            taken += 1
            row.setdefault("epoch", taken)
            if taken < MIN_TABLE_ROWS:
                block.append(row)
            else:
                for r in block + [row]:
                    out.add(r)
                block.clear()
            continue
        names = [column_name(c) for c in cells]
        if cells and not any(numeric) and any(_TABLE_METRICS.search(n) for n in names) and (
                len(cells) >= 2 or names[0] != norm_key(cells[0])):  # one column: a metric named in words
            close()
            header = names
            continue
        if taken:  # a line that is neither a row nor a header ends the table
            close()
            header = None
    return out.finish()
