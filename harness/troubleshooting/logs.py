"""The one shape every training log is read into (``RunLog``), and rows of metrics turned into it.

The file formats are read by ``formats`` (run folders, Trainer, Lightning, Keras, CSV/JSON/JSONL),
``textlogs`` (printed output) and ``tblogs`` (TensorBoard). Column names are mapped by common
conventions and can be named explicitly (``ColumnMap``).

What a log says about its run's configuration (learning rate, epochs, batch
size, frozen layers, classes) is read into ``RunLog.config`` with where each
value came from; what it does not say stays unknown (never a default).

Cells that are not numbers (``n/a``, ``NA``, ``-``) are skipped and counted
(``RunLog.skipped``); a NaN or infinity the trainer logged is kept, it is
divergence. Broken input raises ``LogError`` (one line, exit status 2 in the
CLI); a log that lacks some columns is read as far as it goes and says what
is missing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

from harness.troubleshooting.columns import (_VALIDATION, CONVENTIONS, by_words, canonical, canonical_columns,
                                             f1_column, loss_parts, score_column)
from harness.troubleshooting.endings import chance_level
from knowledge.reading import show
from knowledge.schema import KnowledgeError


class LogError(KnowledgeError):
    pass


# keys of a hyperparameter file (Lightning hparams.yaml, a run's config) -> the configuration field
HPARAM_KEYS = {
    "learning_rate": ("learning_rate", "lr", "base_lr", "max_lr"),
    "epochs": ("max_epochs", "epochs", "num_epochs", "num_train_epochs", "n_epochs"),
    "batch_size": ("batch_size", "train_batch_size", "per_device_train_batch_size", "bs"),
    "frozen_layers": ("frozen_layers", "freeze_layers", "num_frozen_layers", "n_frozen_layers", "freeze"),
    "n_classes": ("num_classes", "n_classes", "num_labels", "n_labels", "classes"),
    "technique": ("technique",),
}
CONFIG_FIELDS = ("learning_rate", "epochs", "batch_size", "frozen_layers", "technique", "n_classes", "layers",
                 "model")

_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+%?$")
NONFINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
# file names `diagnose DIR` picks up besides run folders and Trainer output
LOG_NAMES = {"metrics.csv", "training.log", "history.csv", "history.json", "training.csv", "log.csv",
             "log.jsonl", "metrics.jsonl", "metrics.json"}
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "site-packages", ".cache", "wandb"}
MAX_FILES_SCANNED = 20000


@dataclass
class ColumnMap:
    """Explicit column names (CLI flags); None keeps the conventions."""

    loss: Optional[str] = None
    val_loss: Optional[str] = None
    target_metric: Optional[str] = None
    source_metric: Optional[str] = None

    def names(self, key: str) -> list[str]:
        given = {"train_loss": self.loss, "val_loss": self.val_loss, "target": self.target_metric,
                 "source": self.source_metric}.get(key)
        return [given] if given else CONVENTIONS[key]

    def explicit(self, key: str) -> Optional[str]:
        return {"train_loss": self.loss, "val_loss": self.val_loss, "target": self.target_metric,
                "source": self.source_metric}.get(key)


@dataclass
class RunLog:
    """One run: each series is a list of (x, value) with x the step (or epoch)."""

    path: str
    kind: str
    series: dict = field(default_factory=dict)
    x_name: str = "step"
    config: dict = field(default_factory=dict)        # field -> value read from the log
    config_from: dict = field(default_factory=dict)   # field -> where it was read
    final: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    columns: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)       # column -> {"count", "examples"}
    warnings: list = field(default_factory=list)
    predictions: Optional[dict] = None               # predicted class -> count, where logged
    fingerprint: Optional[str] = None                 # sha256 of the file's bytes
    group: Optional[str] = None                       # set by the reader for runs of one record
    seed: Optional[int] = None
    role: str = "run"                                 # or "baseline" (a run folder's no-transfer runs)
    chance: Optional[tuple] = None                    # (column, chance level) of the "chance" series
    target_is_training: bool = False                  # the only accuracy logged is the training one
    target_kind: str = "accuracy"                     # or "score": a mAP, IoU, F1, BLEU, R2 (no 1/k chance)

    def training_accuracy(self) -> Optional[list]:
        """The training accuracy's values: its own series, or the target where that is the training one."""
        if "train_acc" in self.series:
            return self.values("train_acc")
        return self.values("target") if self.target_is_training and "target" in self.series else None

    @property
    def learning_rate(self) -> Optional[float]:
        return self.config.get("learning_rate")

    @property
    def n_classes(self) -> Optional[int]:
        return self.config.get("n_classes")

    def xs(self, key):
        return [x for x, _ in self.series.get(key, [])]

    def values(self, key):
        return [v for _, v in self.series.get(key, [])]

    def know(self, name: str, value, where: str) -> None:
        """Record a configuration value read from the log (first source wins)."""
        if value is None or name in self.config:
            return
        self.config[name] = value
        self.config_from[name] = where


def _cell(v):
    """(value, status) of one cell: status 'ok', 'nonfinite' (a logged NaN/inf), 'empty' or 'text'."""
    if v is None:
        return None, "empty"
    if isinstance(v, bool):
        return None, "text"
    if isinstance(v, (int, float)):
        try:
            f = float(v)
        except OverflowError:  # an integer beyond any float (400 digits): not a metric anyone logged
            return None, "text"
        return f, "ok" if math.isfinite(f) else "nonfinite"
    s = str(v).strip()
    if s == "":
        return None, "empty"
    if s.lower() in NONFINITE:
        return float(s.lower().replace("infinity", "inf")), "nonfinite"
    pct = s.endswith("%")
    if _DECIMAL_COMMA.match(s):  # "1,5" from a ';'-separated file written with a decimal comma
        s = s.replace(",", ".")
    try:
        f = float(s[:-1] if pct else s)
    except (ValueError, OverflowError):
        return None, "text"
    if not math.isfinite(f):
        return f, "nonfinite"
    return (f / 100.0 if pct else f), "ok"


def _sum_cells(row: dict, cols: tuple):
    """The sum of a row's cells in ``cols``: None (an empty cell) unless every one holds a number; a NaN or
    infinity in any of them is the sum's."""
    total = 0.0
    for c in cols:
        v, status = _cell(row.get(c))
        if status not in ("ok", "nonfinite"):
            return None
        total += v
    return total


def _num(v) -> Optional[float]:
    f, status = _cell(v)
    return f if status == "ok" else None


def _sig(x: float) -> float:
    return float(f"{x:.3g}")


def _fractions(pts: list) -> list:
    """An accuracy logged in percent (values above 1, none above 100) as a fraction."""
    finite = [v for _, v in pts if math.isfinite(v)]
    if finite and max(finite) > 1.0 and max(finite) <= 100.0:
        return [(x, v / 100.0) for x, v in pts]
    return pts


def check_columns(n: int, path) -> None:
    """Refuse a log with more columns than the reading layer's limit (``LIMITS.log_columns``)."""
    from knowledge import reading

    if n > reading.LIMITS.log_columns:
        raise LogError(f"{path}: {n:,} or more columns; a training log is read with at most "
                       f"{reading.LIMITS.log_columns:,}; keep the metric columns only (a CSV: e.g. cut -d, -f1-20), "
                       f"then diagnose that file")


def _from_records(records: list[dict], path: str, kind: str, cols: ColumnMap) -> RunLog:
    """Rows of metrics (dicts) -> RunLog. Rows may hold only some metrics (empty cells)."""
    if not records:
        raise LogError(f"{path}: the log holds no metrics (empty history)")
    seen: dict = {}  # every column once, in order of appearance (a dict: linear in the number of columns)
    for r in records:
        seen.update(dict.fromkeys(r))
    check_columns(len(seen), path)
    keys = list(seen)
    log = RunLog(path=path, kind=kind, columns=keys)

    canon = canonical_columns(keys)

    def pick(key):
        for name in cols.names(key):
            if name in seen:
                return name
        if cols.explicit(key):
            return None  # a column the user named is taken as named, or not at all
        found = next((canon[c] for c in map(canonical, cols.names(key)) if c in canon), None)
        if found is not None:
            return found
        found = by_words(key, canon)
        if found is not None and key in ("train_loss", "val_loss"):
            return tuple(loss_parts(found, canon)) or found
        if found is None and key == "target" and (found := score_column(keys)) is not None:
            log.target_kind = "score"
        return found

    step_col = pick("step")
    epoch_col = pick("epoch")
    x_col = step_col or epoch_col
    log.x_name = x_col or "row"

    def skip(col, raw):
        s = log.skipped.setdefault(col, {"count": 0, "examples": []})
        s["count"] += 1
        if len(s["examples"]) < 3 and str(raw) not in s["examples"]:
            s["examples"].append(str(raw))

    for key in ("train_loss", "val_loss", "target", "source"):
        col = pick(key)
        if col is None:
            explicit = cols.explicit(key)
            if explicit:
                raise LogError(f"The '{explicit}' column of {path} is missing. Got columns "
                               f"{show(', '.join(map(str, keys)), 300)} instead.")
            log.missing.append(key)
            continue
        if isinstance(col, tuple):  # a loss logged in parts: their sum, where a row has every part
            log.warnings.append(f"{key}: the sum of {', '.join(col)} (no total logged)")
            records = [{**r, col: _sum_cells(r, col)} for r in records]
        pts = []
        for i, r in enumerate(records):
            if col not in r:
                continue
            v, status = _cell(r.get(col))
            if status == "empty":
                continue  # this row logged other metrics
            if status == "text":
                skip(col, r.get(col))
                continue
            x = _num(r.get(x_col)) if x_col else None
            pts.append((x if x is not None else float(i), v))
        if key in ("target", "source"):
            pts = _fractions(pts)
        else:
            pts = _unmeasured_zeros(pts, key, log)
        if pts:
            log.series[key] = pts
        else:
            log.missing.append(key)
    gcol = pick("grad_norm")
    if gcol:
        pts = _points(records, gcol, x_col, keep=("ok", "nonfinite"))
        if pts:
            log.series["grad_norm"] = pts
    tcol = pick("train_acc")
    tgt = pick("target")
    log.target_is_training = bool(tcol) and tcol == tgt
    if tcol and tgt and tcol != tgt:
        pts = [(float(i), v) for i, r in enumerate(records) for v, st in [_cell(r.get(tcol))] if st == "ok"]
        if pts:
            log.series["train_acc"] = _fractions(pts)  # on the target's scale: both percentages, or both not
    # macro-F1 beside a validation accuracy: accuracy that hides unlearned minority classes
    f1col = f1_column(keys)
    acccol = next((c for c in CONVENTIONS["target"] if c in keys and "acc" in c), None)
    if f1col and acccol:
        for key, col in (("f1", f1col), ("acc", acccol)):
            pts = [(float(i), v) for i, r in enumerate(records) for v, st in [_cell(r.get(col))] if st == "ok"]
            if pts:
                log.series[key] = pts
    lr_col = pick("learning_rate")
    if lr_col:
        lrs = [_num(r.get(lr_col)) for r in records]
        lrs = [x for x in lrs if x is not None and x > 0]
        if lrs:
            log.know("learning_rate", _sig(max(lrs)), f"the '{lr_col}' column (its peak)")
    if epoch_col:
        eps = [_num(r.get(epoch_col)) for r in records]
        eps = [x for x in eps if x is not None]
        if eps:
            # an epoch column counting from 0 (Keras, Lightning) or from 1 (fractional in Trainer logs)
            n = int(math.floor(max(eps))) + (1 if min(eps) == 0 and float(max(eps)).is_integer() else 0)
            log.know("epochs", max(n, 1), f"the '{epoch_col}' column (epochs run)")
    if not log.series and log.skipped:
        col, sk = next(iter(log.skipped.items()))
        raise LogError(f"The '{col}' column of {path} holds no numbers. Got "
                       f"{', '.join(repr(e) for e in sk['examples'])} instead.")
    if not log.series:
        raise LogError(f"{path}: none of the known metric columns were found "
                       f"(got {show(', '.join(map(str, keys)), 300) or 'none'}); name them with "
                       f"--loss / --val-loss / --target-metric / --source-metric")
    if "target" in log.series:
        finite = [v for v in log.values("target") if math.isfinite(v)]
        if finite:
            log.final["target"] = finite[-1]
    _schedule_and_chance(log, records, x_col, lr_col, keys)
    return log


def _unmeasured_zeros(pts: list, key: str, log: RunLog) -> list:
    """A loss's leading values of exactly 0 before a positive one were never measured (Ultralytics writes 0
    for the validation losses of epochs it did not validate): left out, with a warning. A loss reaches 0
    at the end of a run, never before its first measurement."""
    lead = next((i for i, (_, v) in enumerate(pts) if v != 0.0), len(pts))
    if 0 < lead < len(pts):
        log.warnings.append(f"{key}: the first {lead} values are exactly 0 before it becomes positive: read as "
                            f"not measured")
        return pts[lead:]
    return pts


def _points(records: list[dict], col: str, x_col, keep: tuple = ("ok",)) -> list[tuple]:
    """(x, value) of the rows whose ``col`` cell has a status in ``keep`` (``_cell``); x is the row's step
    or epoch, else its index."""
    pts = []
    for i, r in enumerate(records):
        v, st = _cell(r.get(col))
        if st in keep:
            x = _num(r.get(x_col)) if x_col else None
            pts.append((x if x is not None else float(i), v))
    return pts


def _schedule_and_chance(log: RunLog, records: list[dict], x_col, lr_col, keys) -> None:
    """Beside the metric curves: the learning-rate schedule as logged (``learning_rate``) and a
    validation metric whose chance level needs no class count (``chance``: a validation AUC)."""
    if lr_col:
        pts = _points(records, lr_col, x_col)
        if pts:
            log.series["learning_rate"] = pts
    col = next((k for k in keys if isinstance(k, str) and _VALIDATION.match(k) and chance_level(k) is not None), None)
    if col:
        pts = _points(records, col, x_col)
        if pts:
            log.series["chance"] = pts
            log.chance = (col, chance_level(col))


def split_appended(records: list[dict], cols: ColumnMap) -> list[list[dict]]:
    """Runs appended to one file (Keras' CSVLogger with append=True, a script run twice into one log):
    a new run starts wherever the epoch (or step) counter goes back to its first value or below."""
    keys = {k for r in records[:50] for k in r}
    x = next((c for c in cols.names("epoch") + cols.names("step") if c in keys), None)
    if x is None:
        return [records]
    runs, first, last = [[]], None, None
    for r in records:
        v = _num(r.get(x))
        if v is not None:
            if last is not None and v < last and v <= first and runs[-1]:
                runs.append([])
                first = None
            first = v if first is None else first
            last = v
        runs[-1].append(r)
    return [run for run in runs if run]


def runs_from_records(records: list[dict], path: str, kind: str, cols: ColumnMap) -> list[RunLog]:
    """``_from_records`` for each run appended to one file (``path#run2`` and on for the later ones)."""
    parts = split_appended(records, cols) if records else [records]
    logs = []
    for i, part in enumerate(parts, 1):
        try:
            logs.append(_from_records(part, path if i == 1 else f"{path}#run{i}", kind, cols))
        except LogError:
            if len(parts) == 1:
                raise  # a short fragment of an appended run (a crash after a line) is left out
    if not logs:
        raise LogError(f"{path}: the log holds no metrics")
    if len(logs) > 1:
        logs[0].warnings.append(f"{len(logs)} runs appended to one file: read one by one")
    return logs
