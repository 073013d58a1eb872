"""Read the record of a training run made anywhere into one shape.

Supported: this project's run directories (``run.json``); Hugging Face
``Trainer`` output (``trainer_state.json`` with ``log_history``, directly or in
a ``checkpoint-*`` folder, the newest one); PyTorch Lightning ``CSVLogger``
``metrics.csv``; and plain CSV / JSON / JSONL files of per-step or per-epoch
metrics. Column names are mapped by common conventions and can be named
explicitly (``ColumnMap``).

Broken input raises ``LogError`` (one line, exit status 2 in the CLI); a log
that lacks some columns is read as far as it goes and says what is missing.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from knowledge.schema import KnowledgeError


class LogError(KnowledgeError):
    pass


CONVENTIONS = {
    "train_loss": ["train_loss", "loss", "training_loss", "train/loss", "train_loss_epoch", "train_loss_step"],
    "val_loss": ["val_loss", "eval_loss", "validation_loss", "valid_loss", "val/loss", "eval/loss",
                 "val_loss_epoch"],
    "target": ["val_acc", "val_accuracy", "eval_accuracy", "eval_acc", "accuracy", "val/acc", "val/accuracy",
               "eval/accuracy", "val_macro_f1", "eval_f1", "val_f1", "test_accuracy", "target_accuracy"],
    "source": ["source_accuracy", "source_acc", "retention_accuracy", "eval_source_accuracy",
               "retention_acc", "source/acc", "val_source_acc"],
    "step": ["step", "global_step", "iteration", "iter"],
    "epoch": ["epoch"],
    "learning_rate": ["learning_rate", "lr", "lr-AdamW", "lr-Adam", "lr-SGD"],
}


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


@dataclass
class RunLog:
    """One run: each series is a list of (x, value) with x the step (or epoch)."""

    path: str
    kind: str
    series: dict = field(default_factory=dict)
    x_name: str = "step"
    learning_rate: Optional[float] = None
    final: dict = field(default_factory=dict)
    n_classes: Optional[int] = None
    majority_rate: Optional[float] = None
    missing: list = field(default_factory=list)
    columns: list = field(default_factory=list)

    def xs(self, key):
        return [x for x, _ in self.series.get(key, [])]

    def values(self, key):
        return [v for _, v in self.series.get(key, [])]


def _num(v) -> Optional[float]:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f


def _from_records(records: list[dict], path: str, kind: str, cols: ColumnMap) -> RunLog:
    """Rows of metrics (dicts) -> RunLog. Rows may hold only some metrics (NaN/empty cells)."""
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
    for key in ("train_loss", "val_loss", "target", "source"):
        col = pick(key)
        if col is None:
            explicit = cols.names(key)[0] if cols.names(key) != CONVENTIONS[key] else None
            if explicit:
                raise LogError(f"The '{explicit}' column of {path} is missing. Got columns "
                               f"{', '.join(map(str, keys))} instead.")
            log.missing.append(key)
            continue
        pts = []
        for i, r in enumerate(records):
            if col not in r:
                continue
            v = _num(r.get(col))
            if v is None and r.get(col) in (None, ""):
                continue  # an empty cell: this row logged other metrics
            x = _num(r.get(x_col)) if x_col else float(i)
            pts.append((x if x is not None else float(i), v if v is not None else float("nan")))
        if key in ("target", "source"):
            pts = [(x, v / 100.0 if v is not None and v > 1.0 else v) for x, v in pts]  # percentages
        if pts:
            log.series[key] = pts
        else:
            log.missing.append(key)
    lr_col = pick("learning_rate")
    if lr_col:
        lrs = [_num(r.get(lr_col)) for r in records if _num(r.get(lr_col)) is not None]
        if lrs:
            log.learning_rate = max(lrs)
    if not log.series:
        raise LogError(f"{path}: none of the known metric columns were found "
                       f"(got {', '.join(map(str, keys)) or 'none'}); name them with "
                       f"--loss / --val-loss / --target-metric / --source-metric")
    if "target" in log.series:
        finite = [v for v in log.values("target") if v is not None and math.isfinite(v)]
        if finite:
            log.final["target"] = finite[-1]
    return log


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LogError(f"{path}:{exc.lineno}: malformed or truncated JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise LogError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _read_trainer_state(path: Path, cols: ColumnMap) -> RunLog:
    state = _read_json(path)
    if not isinstance(state, dict) or "log_history" not in state:
        raise LogError(f"The 'log_history' field of {path} is missing: not a Trainer state file")
    hist = state["log_history"]
    if not isinstance(hist, list):
        raise LogError(f"The 'log_history' field of {path} must be a list. Got {type(hist).__name__} instead.")
    records = [h for h in hist if isinstance(h, dict) and not any(k.startswith("train_runtime") for k in h)]
    return _from_records(records, str(path), "hf_trainer", cols)


def _read_csv(path: Path, cols: ColumnMap, kind: str) -> RunLog:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise LogError(f"{path}: empty file (no header)")
            records = [{k: v for k, v in r.items() if k is not None} for r in reader]
    except UnicodeDecodeError as exc:
        raise LogError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return _from_records(records, str(path), kind, cols)


def _read_jsonl(path: Path, cols: ColumnMap) -> RunLog:
    records = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if i == len(path.read_text(encoding="utf-8").splitlines()):
                break  # a last line cut short by a crash: read what came before
            raise LogError(f"{path}:{i}: malformed JSON line ({exc.msg})") from None
    return _from_records(records, str(path), "jsonl", cols)


def _read_own_run(run_dir: Path, cols: ColumnMap) -> list[RunLog]:
    """Each (technique, seed) of a tlexpert run directory is one run."""
    rec = _read_json(run_dir / "run.json")
    logs = []
    plan_tech = rec.get("plan", {}).get("technique", {}).get("choice")
    hyper = rec.get("config", {}).get("hyperparameters", {}).get(plan_tech, {})
    classes = rec.get("config", {}).get("classes") or []
    for tech, rs in (rec.get("results") or {}).items():
        if plan_tech and tech != plan_tech and len(rec["results"]) > 1:
            continue
        for r in rs:
            records = [{"epoch": c.get("epoch"), "train_loss": c.get("train_loss"), "val_loss": c.get("val_loss"),
                        "val_macro_f1": c.get("val_macro_f1")} for c in r.get("curves", [])]
            log = _from_records(records, f"{run_dir} ({tech}, seed {r.get('seed')})", "tlexpert", cols)
            log.final["target"] = r.get("accuracy")
            log.learning_rate = hyper.get("learning_rate")
            log.n_classes = len(classes) or None
            logs.append(log)
    if not logs:
        raise LogError(f"{run_dir}/run.json: no finished seeds to read")
    return logs


def read_logs(path: str | Path, cols: Optional[ColumnMap] = None) -> list[RunLog]:
    """All runs found at ``path`` (a file or a folder)."""
    cols = cols or ColumnMap()
    p = Path(path)
    if not p.exists():
        raise LogError(f"{p}: no such file or folder")
    if p.is_dir():
        if (p / "run.json").exists():
            return _read_own_run(p, cols)
        if (p / "trainer_state.json").exists():
            return [_read_trainer_state(p / "trainer_state.json", cols)]
        ckpts = sorted(p.glob("checkpoint-*/trainer_state.json"),
                       key=lambda f: int(re.sub(r"\D", "", f.parent.name) or 0))
        if ckpts:
            return [_read_trainer_state(ckpts[-1], cols)]
        lightning = sorted(p.glob("**/metrics.csv"))
        if lightning:
            return [_read_csv(f, cols, "lightning_csv") for f in lightning]
        raise LogError(f"{p}: no run.json, trainer_state.json, checkpoint-*/ or metrics.csv found")
    name = p.name.lower()
    if name == "trainer_state.json":
        return [_read_trainer_state(p, cols)]
    if name == "run.json":
        return _read_own_run(p.parent, cols)
    if p.suffix.lower() == ".csv":
        return [_read_csv(p, cols, "lightning_csv" if name == "metrics.csv" else "csv")]
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        return [_read_jsonl(p, cols)]
    if p.suffix.lower() == ".json":
        data = _read_json(p)
        if isinstance(data, dict) and "log_history" in data:
            return [_read_trainer_state(p, cols)]
        if isinstance(data, dict):
            data = data.get("history") or data.get("metrics") or data.get("log") or [data]
        if not isinstance(data, list):
            raise LogError(f"{p}: expected a list of metric records. Got {type(data).__name__} instead.")
        return [_from_records([d for d in data if isinstance(d, dict)], str(p), "json", cols)]
    raise LogError(f"{p}: unknown log format (use a run folder, trainer_state.json, metrics.csv, "
                   f".csv, .json or .jsonl)")
