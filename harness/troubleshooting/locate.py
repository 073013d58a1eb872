"""Where the logs are and what format each is: ``discover`` walks a folder for runs, ``sniff`` tells a
file's format by its content (not its name), ``read_path`` hands each to its reader (``logs.py``
for tables and run folders, ``textlogs.py`` for printed logs, ``tblogs.py`` for TensorBoard)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

from harness.troubleshooting.formats import (fingerprint, read_csv_log, read_json_log, read_jsonl_log, read_own_run,
                                             read_trainer_state)
from harness.troubleshooting.columns import CONVENTIONS
from harness.troubleshooting.logs import (LOG_NAMES, MAX_FILES_SCANNED, SKIP_DIRS, ColumnMap, LogError, RunLog,
                                          _from_records, runs_from_records)
from harness.troubleshooting.tblogs import is_event_file
from knowledge.schema import KnowledgeError

LOOKED_FOR = ("a tlexpert run folder (run.json)", "Trainer output (trainer_state.json, checkpoint-*/)",
              "CSV/JSON/JSONL metric tables (Lightning metrics.csv, Keras CSVLogger, History)",
              "TensorBoard event files (events.out.tfevents.*)",
              "printed logs: Keras fit output ('Epoch k/N' and progress lines), Trainer dicts "
              "({'loss': ...}), 'key: value' or 'key=value' lines with an epoch or step, printed tables "
              "(Markdown, a printed DataFrame, tab-separated columns) with a loss or accuracy column")


def _read_text_log(path: Path, cols: ColumnMap) -> list[RunLog]:
    from harness.troubleshooting.textlogs import parse

    records, final, style = parse(path)
    planned = final.pop("epochs_planned", None)
    test_acc = next((final[k] for k in ("test_accuracy", "test_acc", "test_categorical_accuracy",
                                        "test_sparse_categorical_accuracy", "test_binary_accuracy",
                                        "eval_accuracy") if k in final), None)
    if not records:
        if test_acc is None:
            raise LogError(f"{path}: no training metrics recognised. Looked for: " + "; ".join(LOOKED_FOR))
        logs = [RunLog(path=str(path), kind="text", missing=["train_loss", "val_loss", "target", "source"])]
        logs[0].warnings.append("only a final evaluation was printed: no training curve to read")
    else:
        logs = runs_from_records(records, str(path), style, cols)
    log = logs[-1]  # what was printed after training belongs to the last run
    log.know("epochs_planned", planned, "the N of 'Epoch k/N' (epochs the run was set to train)")
    for k, v in final.items():
        log.final.setdefault(k, v)
    if "target" not in log.final and test_acc is not None:
        log.final["target"] = test_acc
    fp = fingerprint(path)
    for i, lg in enumerate(logs):
        lg.fingerprint = fp if i == 0 else f"{fp}#run{i + 1}"
    return logs


def _read_events(path: Path, cols: ColumnMap) -> RunLog:
    from harness.troubleshooting.tblogs import read_records

    warnings: list = []
    try:
        records = read_records(path, warnings)
    except ImportError:
        raise LogError(f"{path}: reading TensorBoard event files needs the tensorboard package "
                       "(pip install -e \".[harness]\")") from None
    except KnowledgeError:
        raise
    except Exception as exc:  # a damaged event file: TensorBoard's reader raises its own types
        raise LogError(f"{path}: unreadable TensorBoard event file ({type(exc).__name__}: {exc})") from None
    if not records:
        raise LogError(f"{path}: the TensorBoard events hold no scalars" + (f" ({'; '.join(warnings)})"
                                                                            if warnings else ""))
    log = _from_records(records, str(path), "tensorboard", cols)
    log.warnings += warnings
    return log


def _event_run(folder: Path) -> Optional[Path]:
    """The run a folder of event files belongs to: its parent for Keras' train/ + validation/ pair."""
    if folder.name.lower() in ("train", "validation") and (folder.parent / "train").is_dir() \
            and (folder.parent / "validation").is_dir():
        return folder.parent
    return folder


def _newest_checkpoint(folder: Path) -> Optional[Path]:
    ckpts = [p for p in folder.glob("checkpoint-*/trainer_state.json")]
    if not ckpts:
        return None
    return max(ckpts, key=lambda f: int(re.sub(r"\D", "", f.parent.name) or 0))


MAX_WALK_DEPTH = 6  # folder levels below the one named that discover() looks into


def discover(folder: Path) -> tuple[list[Path], list[str]]:
    """The logs below ``folder``: run folders, Trainer output folders, Lightning metrics.csv and
    files with the usual log names. Returns (paths, notes on what was left out)."""
    found: list[Path] = []
    notes: list[str] = []
    seen = 0

    def unreadable(exc: OSError) -> None:  # a sub-folder that cannot be listed is named, not skipped silently
        notes.append(f"{exc.filename}: cannot be read ({exc.strerror or exc}); skipped")

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        rp = Path(root)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        if len(rp.relative_to(folder).parts) >= MAX_WALK_DEPTH and dirs:
            # bounded work: a log is a few levels below the folder named, never a thousand
            notes.append(f"{rp}: not looked below ({MAX_WALK_DEPTH} levels under {folder}); name deeper logs directly")
            dirs[:] = []
        seen += len(files)
        if seen > MAX_FILES_SCANNED:
            notes.append(f"{folder}: stopped looking after {MAX_FILES_SCANNED} files; name the logs directly")
            break
        if "run.json" in files:
            found.append(rp)
            dirs[:] = []  # its seeds/ and plots belong to the run
            continue
        if "trainer_state.json" in files:
            found.append(rp / "trainer_state.json")
            dirs[:] = [d for d in dirs if not d.startswith("checkpoint-")]
            continue
        newest = _newest_checkpoint(rp)
        if newest is not None:
            found.append(newest)
            dirs[:] = [d for d in dirs if not d.startswith("checkpoint-")]
        if any(is_event_file(rp / f) for f in files):
            run = _event_run(rp)
            if run not in found:
                found.append(run)
        for name in sorted(files):
            if is_event_file(rp / name):
                continue
            if name.lower() in LOG_NAMES or _looks_like_a_log(rp / name):
                found.append(rp / name)
    return found, notes


def _head(path: Path, n: int = 1 << 16) -> str:
    from knowledge.reading import open_file

    try:
        with open_file(path, what="log") as fh:
            return fh.read(n).decode("utf-8-sig", errors="replace")
    except (OSError, KnowledgeError):
        return ""


# how a JSON array's first line begins (an element or nothing yet), unlike a bracketed time stamp or tag
_JSON_ARRAY_START = re.compile(r'^\[\s*(?:$|[\[{"]|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\s*[,\]]|true\b|false\b|null\b)')


def sniff(path: Path) -> str:
    """What a file holds, by its content: 'jsonl', 'json', 'csv' (a header naming a metric column)
    or 'text' (anything else: a printed log, read by ``textlogs``)."""
    head = _head(path)
    first = next((line.strip() for line in head.splitlines() if line.strip()), "")
    if first.startswith(("{", "[")):
        try:
            json.loads(first)
            return "jsonl" if first.startswith("{") and len(head.strip().splitlines()) > 1 else "json"
        except ValueError:
            if (_JSON_ARRAY_START.match(first) and not re.search(r"\]\s*[A-Za-z]", first)) or first == "{":
                return "json"
            return "text"  # a Trainer dict printed with Python quotes, a line under a "[2024-10-31 22:45]" stamp
    names = [c.strip().strip('"') for c in re.split(r"[,;\t]", first)]
    known = {n for k in ("train_loss", "val_loss", "target") for n in CONVENTIONS[k]}
    if len(names) > 1 and any(n in known for n in names):
        return "csv"
    return "text"


_TEXT_HINT = re.compile(r"epoch|loss|acc", re.I)


def _looks_like_a_log(path: Path) -> bool:
    """A metric table whose header names a loss or target column, or a printed log (.log, .out,
    .txt) that mentions epochs, a loss or an accuracy in its first 64 KiB."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".jsonl"):
        return sniff(path) in ("csv", "jsonl")
    if suffix in (".log", ".out", ".txt"):
        return bool(_TEXT_HINT.search(_head(path)))
    return False


def read_path(p: Path, cols: ColumnMap) -> tuple[list[RunLog], Optional[dict]]:
    """The runs in one file or run folder; (logs, the run record for a tlexpert run folder)."""
    if p.is_dir():
        if (p / "run.json").exists():
            return read_own_run(p, cols)
        if (p / "trainer_state.json").exists():
            return [read_trainer_state(p / "trainer_state.json", cols)], None
        newest = _newest_checkpoint(p)
        if newest is not None:
            return [read_trainer_state(newest, cols)], None
        if any(is_event_file(f) for f in p.iterdir()) or (p / "train").is_dir() and (p / "validation").is_dir():
            return [_read_events(p, cols)], None
        raise LogError(f"{p}: no log found. Looked for: " + "; ".join(LOOKED_FOR))
    name = p.name.lower()
    if is_event_file(p):
        return [_read_events(_event_run(p.parent), cols)], None
    if name == "trainer_state.json":
        return [read_trainer_state(p, cols)], None
    if name == "run.json":
        return read_own_run(p.parent, cols)
    suffix = p.suffix.lower()
    kind = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}.get(suffix)
    if kind is None:  # .log, .txt, .out, no extension: by content
        kind = sniff(p)
    if kind == "csv":
        return read_csv_log(p, cols, "lightning_csv" if name == "metrics.csv" else "csv"), None
    if kind == "jsonl":
        return read_jsonl_log(p, cols), None
    if kind == "json":
        return [read_json_log(p, cols)], None
    return _read_text_log(p, cols), None


def _log_errors(fn):
    """The reading layer's errors (``ReadError``) raised as ``LogError``, this module's one error type."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from knowledge.reading import ReadError

        try:
            return fn(*args, **kwargs)
        except ReadError as exc:
            raise LogError(str(exc)) from None

    return wrapper


@_log_errors
def read_logs(path: str | Path, cols: Optional[ColumnMap] = None) -> list[RunLog]:
    """All runs found at ``path`` (a file or a folder), without grouping."""
    from knowledge.reading import safe_path

    cols = cols or ColumnMap()
    p = safe_path(path, want="any", what="file or folder")  # loops, FIFOs, devices, /proc refused
    if p.is_dir() and not (p / "run.json").exists() and not (p / "trainer_state.json").exists() \
            and _newest_checkpoint(p) is None:
        paths, _ = discover(p)
        if not paths:
            raise LogError(f"{p}: no log found. Looked for: " + "; ".join(LOOKED_FOR))
        return [log for q in paths for log in read_path(q, cols)[0]]
    return read_path(p, cols)[0]
