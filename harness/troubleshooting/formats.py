"""The log files ``diagnose`` reads, each into ``RunLog``s (``harness.troubleshooting.logs``): this
project's run directories (``run.json``, read whole: every technique's seeds, the no-transfer baseline,
the recorded tests, symptoms, diagnoses and plan); Hugging Face ``Trainer`` output
(``trainer_state.json`` with ``log_history``, with the model's ``config.json`` beside it when present);
PyTorch Lightning ``CSVLogger`` folders (``metrics.csv`` and ``hparams.yaml``); Keras ``CSVLogger``
files and ``History`` tables; plain CSV / JSON / JSONL metric files. Printed logs are read by
``textlogs`` and TensorBoard event files by ``tblogs``."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import NamedTuple, Optional

from harness.troubleshooting.logs import (HPARAM_KEYS, ColumnMap, LogError, RunLog, _cell, _from_records, _num,
                                          check_columns, runs_from_records)
from knowledge.reading import open_file, show
from knowledge.schema import KnowledgeError


def fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open_file(path, what="log") as fh:
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


def read_trainer_state(path: Path, cols: ColumnMap) -> RunLog:
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
    steps, planned = state.get("global_step"), state.get("max_steps")
    if isinstance(steps, int) and isinstance(planned, int) and 0 < steps < planned:  # a checkpoint taken mid-run
        log.know("steps", steps, f"{path.name} (global_step)")
        log.know("steps_planned", planned, f"{path.name} (max_steps)")
    if isinstance(state.get("train_batch_size"), int):
        log.know("batch_size", state["train_batch_size"], f"{path.name} (train_batch_size)")
    _hf_model_config(log, path.parent)
    log.fingerprint = fingerprint(path)
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


def _preamble(text: str) -> tuple[str, int]:
    """A CSV's text from its header on, and how many lines came before it: comment lines (``#``, ``%``,
    ``//``: a run's configuration written above the table) and blank lines."""
    skipped, pos = 0, 0
    while pos < len(text):
        end = text.find("\n", pos)
        line = text[pos:] if end < 0 else text[pos:end]
        if line.strip() and not line.lstrip().startswith(("#", "%", "//")):
            break
        skipped, pos = skipped + 1, len(text) if end < 0 else end + 1
    return text[pos:], skipped


def read_csv_log(path: Path, cols: ColumnMap, kind: str) -> list[RunLog]:
    text, skipped = _preamble(_read_text(path))
    if not text.strip():
        raise LogError(f"{path}: empty file (no header)")
    sep = _sniff_dialect(text[:4096])
    from knowledge.reading import csv_field_limit

    start = 1 + skipped
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=sep)
        header = reader.fieldnames
        if not header:
            raise LogError(f"{path}: empty file (no header)")
        check_columns(len(header), path)
        records = []
        start = reader.line_num + 1 + skipped  # the first line of the record being read: where an error is reported
        with csv_field_limit():  # one value up to the reading layer's limit (csv's own is 128 KB)
            for r in reader:
                # names padded into aligned columns (Ultralytics' results.csv) are the names without the padding
                records.append({k.strip(): v for k, v in r.items() if k is not None and k.strip() != ""})
                start = reader.line_num + 1 + skipped
    except csv.Error as exc:
        raise LogError(f"{path}:{start}: malformed CSV ({exc})") from None
    header = [h.strip() for h in header]
    if header and header[0] == "" and "epoch" not in header:
        kind = "keras_history"  # pandas' DataFrame(history.history).to_csv(): an unnamed index column
    elif kind == "csv" and header and header[0] == "epoch" and header[1:] == sorted(header[1:]):
        kind = "keras_csv"  # Keras' CSVLogger: epoch, then the metric names in sorted order
    logs = runs_from_records(records, str(path), kind, cols)
    fp = fingerprint(path)
    for i, log in enumerate(logs):
        if kind == "lightning_csv":
            _read_hparams(log, path.parent)
        log.fingerprint = fp if i == 0 else f"{fp}#run{i + 1}"
    return logs


def read_jsonl_log(path: Path, cols: ColumnMap) -> list[RunLog]:
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
    fp = fingerprint(path)
    for i, log in enumerate(logs):
        log.fingerprint = fp if i == 0 else f"{fp}#run{i + 1}"
    return logs


def read_json_log(path: Path, cols: ColumnMap) -> RunLog:
    data = _read_json(path)
    if isinstance(data, dict) and "log_history" in data:
        return read_trainer_state(path, cols)
    config = {}
    if isinstance(data, dict):
        config = data.get("config") or data.get("hparams") or data.get("hyperparameters") or {}
        hist = data.get("history") or data.get("metrics") or data.get("log")
        if hist is None and any(isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v)
                                for v in data.values()):
            # History.history saved as it is (json.dump(history.history, f)): its numeric lists
            hist = {k: v for k, v in data.items() if isinstance(v, list)}
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
    log.fingerprint = fingerprint(path)
    return log


def _prediction_counts(preds) -> Optional[dict]:
    if not isinstance(preds, list) or not preds:
        return None
    counts: dict = {}
    for p in preds:
        counts[str(p)] = counts.get(str(p), 0) + 1
    return counts


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


SEED_FIELDS = {  # a seed record's fields diagnose reads: (test, what is expected); None is "not recorded"
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "accuracy": (lambda v: _is_num(v) or isinstance(v, str), "a number"),
    "curves": (lambda v: isinstance(v, list), "a list of per-epoch records"),
    "predictions": (lambda v: isinstance(v, list), "a list of predicted labels"),
    "technique": (lambda v: isinstance(v, str), "a technique id"),
}


def _seed_problem(v) -> Optional[tuple[str, str]]:
    """(field, what was expected) of the first field of a seed record that is not what tlexpert writes."""
    if not isinstance(v, dict):
        return "", "a seed record (an object)"
    for k, (test, expected) in SEED_FIELDS.items():
        if v.get(k) is not None and not test(v[k]):
            return f".{k}", expected
    return None


# the fields of run.json that diagnose reads: (test, what is expected); one message shape for all
RECORD_FIELDS = {
    "tests": (lambda v: isinstance(v, dict) and all(
        isinstance(t, dict) and isinstance(t.get("significant", False), bool)
        and all(t.get(k) is None or _is_num(t.get(k)) for k in ("effect", "p_value", "p_holm"))
        and (not t.get("significant") or (_is_num(t.get("effect")) and _is_num(t.get("p_value"))))
        for t in v.values()),
        "a mapping of test name to {effect, p_value, significant} (numbers and true/false)"),
    "symptoms": (lambda v: isinstance(v, list) and all(
        isinstance(s, dict) and isinstance(s.get("id"), str) and isinstance(s.get("evidence", {}), dict) for s in v),
        "a list of {id, evidence}"),
    "diagnoses": (lambda v: isinstance(v, list) and all(
        isinstance(d, dict) and isinstance(d.get("pitfall"), str)
        and (d.get("confidence") is None or _is_num(d.get("confidence"))) for d in v),
        "a list of {pitfall, confidence}"),
    "summary": (lambda v: isinstance(v, dict) and all(isinstance(s, dict) for s in v.values()),
                "a mapping of technique to its summary"),
    "measurements": (lambda v: isinstance(v, dict), "a mapping"),
}


def check_record(rec: dict, f: Path) -> None:
    """Refuse a run.json whose fields are not what tlexpert writes, with the field and what was expected:
    the record's own fields, each technique's seed records, and the hyperparameters a diagnosis reads
    (checked by the plan contract's own field checks)."""
    from rules.contract import Hyperparameters

    def bad(field: str, expected: str, value) -> LogError:
        return LogError(f"The '{field}' field of {f} must be {expected}. Got {show(value, 80)} instead.")

    for key, (test, expected) in RECORD_FIELDS.items():
        if rec.get(key) is not None and not test(rec[key]):
            raise bad(key, expected, rec[key])
    for part in ("results", "baseline"):
        groups = rec["results"].items() if part == "results" else [("", rec.get("baseline") or [])]
        for tech, rows in groups:
            name = f"{part}.{tech}" if tech else part
            if not isinstance(rows, (list, type(None))):
                raise bad(name, "a list of seed records", rows)
            for i, r in enumerate(rows or []):
                problem = _seed_problem(r)
                if problem:
                    raise bad(f"{name}[{i}]{problem[0]}", problem[1], r.get(problem[0][1:]) if problem[0] else r)
    checks = Hyperparameters.__dataclass_fields__
    for where, h in [("plan.hyperparameters", rec["plan"].get("hyperparameters") or {}),
                     *((f"config.hyperparameters.{t}", v) for t, v in (rec["config"].get("hyperparameters") or {}).items())]:
        if not isinstance(h, dict):
            raise bad(where, "a mapping", h)
        for k in ("learning_rate", "epochs", "batch_size", "frozen_layers"):
            test, expected = checks[k].metadata["check"]
            if h.get(k) is not None and not test(h[k]):
                raise bad(f"{where}.{k}", expected, h[k])


def _lm_record(rec: dict, f: Path) -> dict:
    """A causal-LM run record in the shape of a classifier's: each seed's per-epoch training and validation
    losses as its curves, the run's resolved hyperparameters as its config; no accuracy (its target is the
    response loss, which the recorded tests judge)."""
    results, hypers = rec.get("results"), rec.get("hyperparameters")
    if not isinstance(results, dict) or not isinstance(hypers, dict):
        raise LogError(f"{f}: a causal-LM run record must hold 'results' and 'hyperparameters' (objects)")
    out = {}
    for tech, rows in results.items():
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise LogError(f"The 'results.{tech}' field of {f} must be a list of seed records.")
        out[tech] = [{"seed": r.get("seed"), "accuracy": None,
                      "curves": [{"epoch": h.get("epoch"), "train_loss": h.get("train_loss"),
                                  "val_loss": h.get("val_loss")} for h in (r.get("history") or []) if isinstance(h, dict)]}
                     for r in rows]
    return {**rec, "results": out, "summary": {},
            "config": {"hyperparameters": hypers, "classes": [], "model_name": rec.get("model")}}


def read_own_run(run_dir: Path, cols: ColumnMap) -> tuple[list[RunLog], dict]:
    """A tlexpert run folder, whole: one RunLog per (technique, seed), the baseline's runs
    (role 'baseline'), and the record (plan, config, tests, symptoms, diagnoses)."""
    f = run_dir / "run.json"
    rec = _read_json(f)
    if not isinstance(rec, dict):
        raise LogError(f"{f}: expected a run record (a JSON object). Got {type(rec).__name__} instead.")
    if rec.get("kind") == "causal_lm":
        rec = _lm_record(rec, f)
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
    check_record(rec, f)
    fp = fingerprint(f)
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


class RecordedPlan(NamedTuple):
    """What a diagnosis uses of the plan a tlexpert run recorded in its run.json (read and checked
    by ``read_run_record``): the scenario, the technique and the plan's hyperparameters."""

    scenario: dict
    technique: Optional[str]
    hyperparameters: dict


def recorded_plan(rec: dict) -> RecordedPlan:
    plan = rec["plan"]
    return RecordedPlan(plan["scenario"], plan["technique"].get("choice"), dict(plan.get("hyperparameters") or {}))
