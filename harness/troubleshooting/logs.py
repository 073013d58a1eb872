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

from harness.troubleshooting.endings import chance_level
from knowledge.reading import show
from knowledge.schema import KnowledgeError


class LogError(KnowledgeError):
    pass


CONVENTIONS = {
    "train_loss": ["train_loss", "loss", "training_loss", "train/loss", "train_loss_epoch", "train_loss_step",
                   "cost", "train_cost"],
    "val_loss": ["val_loss", "eval_loss", "validation_loss", "valid_loss", "val/loss", "eval/loss",
                 "val_loss_epoch", "val_cost", "test_loss"],
    # validation first, then test, then training accuracy (a log with only that)
    "target": ["val_acc", "val_accuracy", "eval_accuracy", "eval_acc", "val_sparse_categorical_accuracy",
               "val_categorical_accuracy", "val_binary_accuracy", "val/acc", "val/accuracy", "eval/accuracy",
               "valid_acc", "val_macro_f1", "eval_f1", "val_f1", "test_accuracy", "test_acc", "target_accuracy",
               "accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy", "acc",
               "train_acc"],
    "source": ["source_accuracy", "source_acc", "retention_accuracy", "eval_source_accuracy",
               "retention_acc", "source/acc", "val_source_acc"],
    # training accuracy, read only beside a validation target (the train/validation gap)
    "train_acc": ["train_acc", "train_accuracy", "train/acc", "train_acc_epoch", "accuracy", "acc",
                  "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy"],
    "grad_norm": ["grad_norm", "gradient_norm", "grad-norm", "train/grad_norm"],
    "step": ["step", "global_step", "iteration", "iter"],
    "epoch": ["epoch"],
    "learning_rate": ["learning_rate", "lr", "lr-AdamW", "lr-Adam", "lr-SGD", "lr-RMSprop"],
}

F1_NAMES = ("eval_macro_f1", "val_macro_f1", "eval_f1_macro", "eval_f1", "val_f1", "macro_f1", "f1", "eval_f1_score")

_F1_TOKEN = re.compile(r"(?:^|[_/\-.])f1(?:$|[_/\-.])", re.I)
_VALIDATION = re.compile(r"^(?:val|eval|valid|validation|dev)(?:[_/\-.]|$)", re.I)


def f1_column(keys) -> Optional[str]:
    """The F1 column of a log, by name: a known name first, else any key with an ``f1`` token
    (``val_f1_metric``, ``eval/f1-score``), validation before others and macro before others; never a
    training F1 when a validation one exists."""
    known = next((c for c in F1_NAMES if c in keys), None)
    if known:
        return known
    found = [k for k in keys if isinstance(k, str) and _F1_TOKEN.search(k)]
    if not found:
        return None
    return min(found, key=lambda k: (not _VALIDATION.match(k), "macro" not in k.lower(), len(k), k))


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


def _num(v) -> Optional[float]:
    f, status = _cell(v)
    return f if status == "ok" else None


def _sig(x: float) -> float:
    return float(f"{x:.3g}")


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # TrainLoss, valAcc: a word starts at each capital


def spelled(name) -> str:
    """A metric name in the conventions' spelling: camelCase split into words, lower case, any run of spaces,
    dashes, dots or slashes one underscore (``TrainLoss`` and ``train-loss`` are ``train_loss``)."""
    return re.sub(r"[\s\-./]+", "_", _CAMEL.sub("_", str(name).strip()).lower()).strip("_")


def canonical(name) -> str:
    """A column name in one spelling, so that the conventions' names match however a logger wrote them:
    ``spelled``, and Lightning's ``_epoch`` / ``_step`` suffixes (``train_loss_epoch``) dropped."""
    return re.sub(r"_(?:epoch|step)$", "", spelled(name))


# A column no convention names is recognised by its words: which split it measures and what it measures
# (``validation_loss_nats_per_byte``, ``val_mse``, ``TrainingCost``). Losses are whatever is lower-is-better
# and fitted (cross-entropy, squared or absolute error, bits per byte or character, perplexity).
# The split words, in the order a printed table's free-form header is searched for them (textlogs.column_name).
SPLIT_WORDS = {"val": ("val", "valid", "validation", "eval", "evaluation", "dev"), "test": ("test",),
               "train": ("train", "training", "tr", "trn")}
LOSS_WORDS = ("loss", "cost", "nll", "xent", "mse", "rmse", "mae", "bpb", "bpc", "perplexity", "ppl")
ACCURACY_WORDS = ("acc", "accuracy")
# words that make a column another model's or another task's measure: never read as the run's own curve
OTHER_WORDS = ("source", "src", "retention", "baseline", "teacher")
# what each key of the conventions is, in those words: (its splits in order of preference, None for no split
# word; the measure's words)
BY_WORDS = {"train_loss": (("train", None), LOSS_WORDS), "val_loss": (("val", "test"), LOSS_WORDS),
            "target": (("val", "test", None, "train"), ACCURACY_WORDS), "train_acc": (("train", None), ACCURACY_WORDS)}


def by_words(key: str, canon: dict) -> Optional[str]:
    """The log's column for ``key`` by the words of its (canonical) name, or None: the preferred split first
    (validation before test), then the measure's own word before another (``loss`` before ``mse``), then the
    shortest name."""
    if key not in BY_WORDS:
        return None
    splits, words = BY_WORDS[key]
    found = []
    for name, col in canon.items():
        tokens = name.split("_")
        measure = next((words.index(t) for t in tokens if t in words), None)
        if measure is None or any(t in OTHER_WORDS for t in tokens):
            continue
        split = next((sp for t in tokens for sp, ws in SPLIT_WORDS.items() if t in ws), None)
        if split in splits:
            found.append(((splits.index(split), measure, len(name), name), col))
    return min(found)[1] if found else None


def canonical_columns(keys) -> dict:
    """canonical name -> the log's own column; where two columns share one (``loss_epoch`` and ``loss_step``),
    the per-epoch one wins (per-step values are single batches: noise)."""
    out: dict = {}
    for k in sorted(keys, key=lambda k: not str(k).endswith("_epoch")):
        out.setdefault(canonical(k), k)
    return out


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
        return next((canon[c] for c in map(canonical, cols.names(key)) if c in canon), None) or by_words(key, canon)

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
