"""Read the record of a training run made anywhere into one shape.

Supported: this project's run directories (``run.json``, read whole: every
technique's seeds, the no-transfer baseline, the recorded tests, symptoms,
diagnoses and plan); Hugging Face ``Trainer`` output (``trainer_state.json``
with ``log_history``, directly or in a ``checkpoint-*`` folder, the newest one,
with the model's ``config.json`` beside it when present); PyTorch Lightning
``CSVLogger`` folders (``metrics.csv`` and ``hparams.yaml``); Keras
``CSVLogger`` files and ``History`` tables saved with pandas (no epoch
column); and plain CSV / JSON / JSONL files of per-step or per-epoch metrics.
Column names are mapped by common conventions and can be named explicitly
(``ColumnMap``).

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

import csv
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

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


def _from_records(records: list[dict], path: str, kind: str, cols: ColumnMap) -> RunLog:
    """Rows of metrics (dicts) -> RunLog. Rows may hold only some metrics (empty cells)."""
    if not records:
        raise LogError(f"{path}: the log holds no metrics (empty history)")
    keys = []
    for r in records:
        for k in r:
            if k not in keys:
                keys.append(k)
    log = RunLog(path=path, kind=kind, columns=keys)

    def pick(key):
        for name in cols.names(key):
            if name in keys:
                return name
        return None

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
            finite = [v for _, v in pts if math.isfinite(v)]
            if finite and max(finite) > 1.0 and max(finite) <= 100.0:  # percentages
                pts = [(x, v / 100.0) for x, v in pts]
        if pts:
            log.series[key] = pts
        else:
            log.missing.append(key)
    gcol = pick("grad_norm")
    if gcol:
        pts = []
        for i, r in enumerate(records):
            v, st = _cell(r.get(gcol))
            if st in ("ok", "nonfinite"):
                x = _num(r.get(x_col)) if x_col else None
                pts.append((x if x is not None else float(i), v))
        if pts:
            log.series["grad_norm"] = pts
    tcol = pick("train_acc")
    tgt = next((c for c in cols.names("target") if c in keys), None)
    if tcol and tgt and tcol != tgt:
        pts = [(float(i), v) for i, r in enumerate(records) for v, st in [_cell(r.get(tcol))] if st == "ok"]
        if pts:
            log.series["train_acc"] = pts
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
    return log


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


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_text(path: Path) -> str:
    """Through the reading layer: a regular file, bounded in size, UTF-8 (knowledge/reading.py)."""
    from knowledge.reading import read_text

    try:
        return read_text(path, kind="log", what="log file")
    except KnowledgeError as exc:
        raise LogError(str(exc)) from None


def _read_json(path: Path):
    from knowledge.reading import parse_json

    try:
        return parse_json(_read_text(path), str(path))
    except KnowledgeError as exc:
        raise LogError(str(exc)) from None


def _hf_model_config(log: RunLog, folder: Path) -> None:
    """Classes, layers and model type from the ``config.json`` a Trainer saves beside its state."""
    for d in (folder, folder.parent):
        f = d / "config.json"
        if not f.is_file():
            continue
        try:
            cfg = _read_json(f)
        except KnowledgeError:
            log.warnings.append(f"{f}: not readable JSON; the model's classes and layers are unknown")
            return
        if not isinstance(cfg, dict):
            return
        labels = cfg.get("id2label") or cfg.get("label2id")
        if isinstance(labels, dict) and len(labels) >= 2:
            log.know("n_classes", len(labels), f"{f.name} (id2label)")
        elif isinstance(cfg.get("num_labels"), int):
            log.know("n_classes", cfg["num_labels"], f"{f.name} (num_labels)")
        for k in ("num_hidden_layers", "n_layer", "num_layers"):
            if isinstance(cfg.get(k), int):
                log.know("layers", cfg[k], f"{f.name} ({k})")
                break
        arch = cfg.get("architectures")
        if isinstance(arch, list) and arch:
            log.know("model", str(arch[0]), f"{f.name} (architectures)")
        elif cfg.get("model_type"):
            log.know("model", str(cfg["model_type"]), f"{f.name} (model_type)")
        return


def _read_trainer_state(path: Path, cols: ColumnMap) -> RunLog:
    state = _read_json(path)
    if not isinstance(state, dict) or "log_history" not in state:
        raise LogError(f"The 'log_history' field of {path} is missing: not a Trainer state file")
    hist = state["log_history"]
    if not isinstance(hist, list):
        raise LogError(f"The 'log_history' field of {path} must be a list. Got {type(hist).__name__} instead.")
    records = [h for h in hist if isinstance(h, dict) and not any(str(k).startswith("train_runtime") for k in h)]
    log = _from_records(records, str(path), "hf_trainer", cols)
    if "learning_rate" in log.config:
        log.config_from["learning_rate"] = f"{path.name} log_history (peak of the schedule)"
    if isinstance(state.get("num_train_epochs"), (int, float)) and state["num_train_epochs"] > 0:
        log.config["epochs"] = state["num_train_epochs"]  # what was asked for, not only what ran
        log.config_from["epochs"] = f"{path.name} (num_train_epochs)"
    if isinstance(state.get("train_batch_size"), int):
        log.know("batch_size", state["train_batch_size"], f"{path.name} (train_batch_size)")
    _hf_model_config(log, path.parent)
    log.fingerprint = _fingerprint(path)
    return log


def _read_hparams(log: RunLog, folder: Path) -> None:
    """Lightning's ``hparams.yaml`` beside ``metrics.csv``: the run's configuration."""
    f = folder / "hparams.yaml"
    if not f.is_file():
        return
    import yaml

    class Lenient(yaml.SafeLoader):
        pass

    # hyperparameters that were Python objects are written with python/* tags: read them as unknown
    Lenient.add_multi_constructor("", lambda loader, suffix, node: None)
    try:
        text = _read_text(f)
        if "*" in text:  # aliases: bounded by the reading layer before this lenient loader builds them
            from knowledge.yamlio import _check_nodes

            _check_nodes(yaml.compose(text, Loader=Lenient), str(f))
        data = yaml.load(text, Loader=Lenient)  # noqa: S506 (SafeLoader subclass)
    except (yaml.YAMLError, KnowledgeError, ValueError, TypeError, KeyError, RecursionError) as exc:
        log.warnings.append(f"{f}: not readable YAML ({str(exc).splitlines()[0]}); the run's configuration "
                            f"is unknown")
        return
    if not isinstance(data, dict):
        return
    flat = {}
    for k, v in data.items():  # one level of nesting (e.g. {model: {lr: ...}, data: {batch_size: ...}})
        if isinstance(v, dict):
            flat.update({kk: vv for kk, vv in v.items() if kk not in flat})
        else:
            flat.setdefault(k, v)
    _config_from_mapping(log, flat, f"{f.name}")


def _config_from_mapping(log: RunLog, data: dict, where: str) -> None:
    for name, keys in HPARAM_KEYS.items():
        for k in keys:
            if k not in data:
                continue
            v = data[k]
            if name == "n_classes" and isinstance(v, (list, tuple)):
                v = len(v)
            if name == "frozen_layers" and isinstance(v, bool):
                v = "all" if v else 0
            if name in ("learning_rate",):
                v = _num(v)
            elif name in ("epochs", "batch_size", "n_classes"):
                v = _num(v)
                v = int(v) if v is not None and v > 0 and float(v).is_integer() else None
            elif name == "technique":
                v = str(v) if v else None
            if v is not None:
                log.know(name, v, f"{where} ({k})")
                break


def _sniff_dialect(head: str):
    first = head.splitlines()[0] if head else ""
    for sep in (",", ";", "\t"):
        if sep in first:
            return sep
    return ","


def _read_csv(path: Path, cols: ColumnMap, kind: str) -> list[RunLog]:
    text = _read_text(path)
    if not text.strip():
        raise LogError(f"{path}: empty file (no header)")
    sep = _sniff_dialect(text[:4096])
    from knowledge.reading import csv_field_limit

    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=sep)
        header = reader.fieldnames
        if not header:
            raise LogError(f"{path}: empty file (no header)")
        records = []
        with csv_field_limit():  # one value up to the reading layer's limit (csv's own is 128 KB)
            for r in reader:
                records.append({k: v for k, v in r.items() if k is not None and k != ""})
    except csv.Error as exc:
        raise LogError(f"{path}:{reader.line_num + 1}: malformed CSV ({exc})") from None  # (the line being read)
    if header and header[0] == "" and "epoch" not in header:
        kind = "keras_history"  # pandas' DataFrame(history.history).to_csv(): an unnamed index column
    elif kind == "csv" and header and header[0] == "epoch" and header[1:] == sorted(header[1:]):
        kind = "keras_csv"  # Keras' CSVLogger: epoch, then the metric names in sorted order
    logs = runs_from_records(records, str(path), kind, cols)
    fp = _fingerprint(path)
    for i, log in enumerate(logs):
        if kind == "lightning_csv":
            _read_hparams(log, path.parent)
        log.fingerprint = fp if i == 0 else f"{fp}#run{i + 1}"
    return logs


def _read_jsonl(path: Path, cols: ColumnMap) -> list[RunLog]:
    from knowledge.reading import parse_json

    lines = _read_text(path).splitlines()
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = parse_json(line, str(path), line=i)
        except KnowledgeError as exc:
            if i == len(lines):
                break  # a last line cut short by a crash: read what came before
            raise LogError(str(exc)) from None
        if not isinstance(rec, dict):
            raise LogError(f"{path}:{i}: expected a JSON object of metrics. Got {type(rec).__name__} instead.")
        records.append(rec)
    logs = runs_from_records(records, str(path), "jsonl", cols)
    fp = _fingerprint(path)
    for i, log in enumerate(logs):
        log.fingerprint = fp if i == 0 else f"{fp}#run{i + 1}"
    return logs


def _read_json_log(path: Path, cols: ColumnMap) -> RunLog:
    data = _read_json(path)
    if isinstance(data, dict) and "log_history" in data:
        return _read_trainer_state(path, cols)
    config = {}
    if isinstance(data, dict):
        config = data.get("config") or data.get("hparams") or data.get("hyperparameters") or {}
        hist = data.get("history") or data.get("metrics") or data.get("log")
        if isinstance(hist, dict) and hist and all(isinstance(v, list) for v in hist.values()):
            # Keras' History.history: {metric: [value per epoch]}
            n = max(len(v) for v in hist.values())
            hist = [{k: (v[i] if i < len(v) else None) for k, v in hist.items()} for i in range(n)]
        data = hist if hist is not None else [data]
    if not isinstance(data, list):
        raise LogError(f"{path}: expected a list of metric records. Got {type(data).__name__} instead.")
    log = _from_records([d for d in data if isinstance(d, dict)], str(path), "json", cols)
    if isinstance(config, dict):
        _config_from_mapping(log, config, path.name)
    log.fingerprint = _fingerprint(path)
    return log


def _prediction_counts(preds) -> Optional[dict]:
    if not isinstance(preds, list) or not preds:
        return None
    counts: dict = {}
    for p in preds:
        counts[str(p)] = counts.get(str(p), 0) + 1
    return counts


def read_own_run(run_dir: Path, cols: ColumnMap) -> tuple[list[RunLog], dict]:
    """A tlexpert run folder, whole: one RunLog per (technique, seed), the baseline's runs
    (role 'baseline'), and the record (plan, config, tests, symptoms, diagnoses)."""
    f = run_dir / "run.json"
    rec = _read_json(f)
    if not isinstance(rec, dict):
        raise LogError(f"{f}: expected a run record (a JSON object). Got {type(rec).__name__} instead.")
    for key in ("plan", "config", "results"):
        if not isinstance(rec.get(key), dict):
            raise LogError(f"The '{key}' field of {f} must be an object. Got "
                           f"{type(rec.get(key)).__name__ if key in rec else 'nothing'} instead.")
    plan = rec["plan"]
    if not isinstance(plan.get("scenario"), dict) or not isinstance(plan.get("technique"), dict):
        raise LogError(f"The 'plan' field of {f} must hold the run's plan (its 'scenario' and 'technique'). "
                       f"Got {', '.join(plan) or 'nothing'} instead.")
    conf = rec["config"]
    classes = conf.get("classes") or []
    hypers = conf.get("hyperparameters") or {}
    plan_hyper = rec["plan"].get("hyperparameters") or {}
    for name, value, kind in (("config.classes", classes, list), ("config.hyperparameters", hypers, dict),
                              ("plan.hyperparameters", plan_hyper, dict)):
        if not isinstance(value, kind):
            raise LogError(f"The '{name}' field of {f} must be a {'list' if kind is list else 'mapping'}. "
                           f"Got {type(value).__name__} instead.")
    if conf.get("layers") is not None and not isinstance(conf.get("layers"), int):
        raise LogError(f"The 'config.layers' field of {f} must be a whole number. Got {conf['layers']!r} instead.")
    fp = _fingerprint(f)
    logs = []
    entries = [(t, rs, "run") for t, rs in rec["results"].items()]
    base = rec.get("baseline") or []
    if not isinstance(base, list) or not all(isinstance(b, dict) for b in base):
        raise LogError(f"The 'baseline' field of {f} must list seed records (objects).")
    if base and base[0].get("technique") not in rec["results"]:
        entries.append((base[0].get("technique") or "baseline", base, "baseline"))
    for tech, rs, role in entries:
        if not isinstance(rs, (list, type(None))):
            raise LogError(f"The 'results.{tech}' field of {f} must list seed records (objects).")
        for r in rs or []:
            if not isinstance(r, dict):
                raise LogError(f"The 'results.{tech}' field of {f} must list seed records (objects).")
            curves = r.get("curves") or []
            records = [{"epoch": c.get("epoch"), "train_loss": c.get("train_loss"), "val_loss": c.get("val_loss"),
                        "val_macro_f1": c.get("val_macro_f1")} for c in curves if isinstance(c, dict)]
            name = f"{run_dir} ({tech}, seed {r.get('seed')})"
            if any(v is not None for rr in records for k, v in rr.items() if k != "epoch"):
                log = _from_records(records, name, "tlexpert", cols)
            else:  # no learning curves (a linear baseline): its final scores only
                log = RunLog(path=name, kind="tlexpert", missing=["train_loss", "val_loss", "target", "source"])
            acc, status = _cell(r.get("accuracy"))
            if status == "text":
                raise LogError(f"The 'results.{tech}[{r.get('seed')}].accuracy' field of {f} must be a number. "
                               f"Got {r.get('accuracy')!r} instead.")
            log.final["target"] = acc
            log.group, log.seed, log.role = tech, r.get("seed"), role
            own = hypers.get(tech) if isinstance(hypers.get(tech), dict) else {}
            h = {**plan_hyper, **own} if role == "run" else own
            log.config.clear()
            log.config_from.clear()
            for k in ("learning_rate", "epochs", "batch_size", "frozen_layers"):
                if h.get(k) is not None:
                    log.know(k, h[k], f"run.json (config.hyperparameters.{tech})")
            log.know("technique", tech, "run.json (results)")
            log.know("n_classes", len(classes) or None, "run.json (config.classes)")
            log.know("layers", conf.get("layers"), "run.json (config.layers)")
            log.know("model", conf.get("model_name"), "run.json (config.model_name)")
            log.predictions = _prediction_counts(r.get("predictions"))
            log.fingerprint = fp
            logs.append(log)
    if not logs:
        raise LogError(f"{f}: no finished seeds to read")
    return logs, rec
