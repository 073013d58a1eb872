"""Printed tables read into metric records: a header of names over rows of numbers (Markdown, a printed
DataFrame, tab-separated columns, Torch7's optim.Logger: ``table_rows``), a header printed over every row
(YOLO's per-epoch lines: ``paired_rows``) and named lists of values (a Keras ``History.history`` printed
or saved as it is: ``named_lists``). Nothing is evaluated: names and numbers are read by pattern."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Optional

from harness.troubleshooting.columns import ACCURACY_WORDS, SPLIT_WORDS
from harness.troubleshooting.printed import NUM, Records, _value, norm_key, pieces

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
    keys = tuple(column_name(n) for n in names)  # named as a table's header cells are
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


# a named list of numbers: "'val_loss': [0.63, 0.49, ...]" (a Keras History dict printed or saved with str() or
# json), "Val Loss List: [2.01, 1.37]"; the name quoted or not, the list possibly over several lines
_LIST_START = re.compile(r"""(?:^|[{,\s])(['"]?)([A-Za-z][\w/.\-]*(?:[ \t][A-Za-z][\w/.\-]*){0,3})\1\s*[:=]\s*\[""")
_LIST_NUMBER = re.compile(rf"^\s*({NUM})\s*$", re.I)
MAX_LIST_VALUES = 1_000_000  # values kept in all (a list's numbers are held until its length is known)
MAX_LIST_TEXT = 1 << 22  # bytes of one list held over lines (each line's text and its object): longer, not a history


def named_lists(path: Path) -> list[dict]:
    """Records from lists of values, one list per metric (``{'loss': [...], 'val_loss': [...]}``, the
    column-oriented history Keras' ``History.history`` is): the lists of one length (the length that has a
    validation list, else the most lists) read position by position, as epochs counting from 1; a list of
    another length (per-step losses beside per-epoch ones) is left out rather than misaligned. Nothing is
    evaluated: names and numbers are read by pattern."""
    lists: dict = {}
    total = 0
    open_name, buffer, held = None, [], 0

    def close(name, body):
        nonlocal total
        vals = []
        for raw in body.split(","):
            m = _LIST_NUMBER.match(raw)
            if m is None:
                return  # not a list of numbers
            vals.append(_value(m.group(1)))
        if vals and total + len(vals) <= MAX_LIST_VALUES:
            lists[column_name(name)] = vals
            total += len(vals)

    for line in pieces(path):
        if open_name is not None:
            end = line.find("]")
            buffer.append(line if end < 0 else line[:end])
            held += len(buffer[-1]) + 64
            if end < 0 and held > MAX_LIST_TEXT:
                open_name, buffer, held = None, [], 0  # an unclosed bracket, not a list of values
                continue
            if end >= 0:
                close(open_name, ",".join(b.strip().rstrip(",") for b in buffer if b.strip()))
                open_name, buffer, held = None, [], 0
                line = line[end + 1:]
            else:
                continue
        pos = 0
        while (m := _LIST_START.search(line, pos)) is not None:
            end = line.find("]", m.end())
            if end < 0:
                open_name, buffer = m.group(2), [line[m.end():]]
                break
            close(m.group(2), line[m.end():end])
            pos = end + 1
    metric = {k: v for k, v in lists.items() if _TABLE_METRICS.search(k) and len(v) >= 2}
    if not metric:
        return []
    by_len: dict = {}
    for k, v in metric.items():
        by_len.setdefault(len(v), []).append(k)
    n = max(by_len, key=lambda n: (any(k.startswith(("val", "eval", "valid", "test")) for k in by_len[n]),
                                   len(by_len[n]), n))
    return [{"epoch": i + 1, **{k: metric[k][i] for k in by_len[n]}} for i in range(n)]
