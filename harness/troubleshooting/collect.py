"""Reading the logs ``diagnose`` is given and grouping them into runs before anything is concluded:
paths and glob patterns expanded, byte-identical files dropped as duplicates, and logs grouped by folder
pattern (digits stand for seeds) and by the configuration they record, so that runs of different
configurations are never pooled as seeds."""

from __future__ import annotations

import glob as globmod
import os
import re
from pathlib import Path

from harness.troubleshooting.locate import LOOKED_FOR, discover, read_path
from harness.troubleshooting.logs import CONFIG_FIELDS, ColumnMap, LogError, RunLog

GLOB_CHARS = re.compile(r"[*?\[]")
FIELD_NAMES = {"learning_rate": "learning rate", "epochs": "epochs", "batch_size": "batch size",
               "frozen_layers": "frozen layers", "technique": "technique", "n_classes": "classes",
               "layers": "layers", "model": "model"}


def expand(specs: list[str], role: str) -> list[str]:
    """Paths with quoted globs expanded (sorted); a pattern that matches nothing is an error."""
    out = []
    for s in specs:
        if GLOB_CHARS.search(s) and not os.path.exists(s):  # (False, not an error, for a name too long)
            hits = sorted(globmod.glob(s, recursive=True))
            if not hits:
                raise LogError(f"{s}: no file or folder matches this {role} pattern")
            out += hits
        else:
            out.append(s)
    return out


def collect(specs: list[str], cols: ColumnMap, role: str) -> tuple[list[RunLog], list[dict], list[str]]:
    """(logs, run records of tlexpert run folders, warnings). A folder that is not itself a run is
    searched; logs found that way that cannot be read are left out with a warning."""
    logs, records, warnings = [], [], []
    from knowledge.reading import safe_path
    from knowledge.schema import KnowledgeError

    for s in expand(specs, role):
        try:  # loops, FIFOs, devices and /proc refused before any reader opens them
            p = safe_path(s, want="any", what="file or folder")
        except KnowledgeError as exc:
            raise LogError(str(exc)) from None
        if p.is_dir() and not (p / "run.json").exists() and not (p / "trainer_state.json").exists() \
                and not any(p.glob("checkpoint-*/trainer_state.json")):
            found, notes = discover(p)
            warnings += notes
            if not found:
                raise LogError(f"{p}: no log found. Looked for: " + "; ".join(LOOKED_FOR)
                               + (f" ({notes[0].split(': ', 1)[1]})" if notes else ""))
            for q in found:
                try:
                    got, rec = read_path(q, cols)
                except LogError as exc:
                    warnings.append(f"left out: {exc}")
                    continue
                logs += got
                if rec is not None:
                    records.append({"dir": str(q if q.is_dir() else q.parent), "record": rec})
            continue
        got, rec = read_path(p, cols)
        logs += got
        if rec is not None:
            records.append({"dir": str(p if p.is_dir() else p.parent), "record": rec})
    for log in logs:
        if role == "baseline":
            log.role = "baseline"
        warnings += log.warnings
    return logs, records, warnings


def _pattern(path: str) -> str:
    """The path with runs of digits replaced by '#': seed1/ and seed2/ share a pattern."""
    try:
        p = str(Path(path).resolve())
    except OSError:
        p = path
    return re.sub(r"\d+", "#", p)


def _signature(log: RunLog) -> tuple:
    cfg = tuple((k, log.config.get(k)) for k in CONFIG_FIELDS if k in log.config)
    return (log.kind, cfg, tuple(sorted(log.series)))


def dedupe(logs: list[RunLog]) -> tuple[list[RunLog], list[dict]]:
    """Byte-identical logs (the same file twice, or copies) are kept once."""
    seen: dict = {}
    kept, dups = [], []
    for log in logs:
        key = (log.fingerprint, log.group, log.seed, log.role) if log.fingerprint else id(log)
        if key in seen:
            dups.append({"path": log.path, "same_as": seen[key].path})
            continue
        seen[key] = log
        kept.append(log)
    return kept, dups


def group_logs(logs: list[RunLog]) -> list[dict]:
    """Groups of runs of one configuration: {name, logs, own (a run folder's technique or None)}."""
    groups: dict = {}
    for log in logs:
        if log.kind == "tlexpert":
            run_dir = log.path.rsplit(" (", 1)[0]
            key = ("tlexpert", run_dir, log.group, log.role)
            name = f"{run_dir}: {log.group}" + (" (no-transfer baseline)" if log.role == "baseline" else "")
        else:
            key = (_pattern(log.path), _signature(log), log.role)
            name = _pattern(log.path) if log.role == "run" else f"{_pattern(log.path)} (baseline)"
        g = groups.setdefault(key, {"name": name, "logs": [], "own": log.kind == "tlexpert"})
        g["logs"].append(log)
    out = list(groups.values())
    for g in out:  # one run: its own path; several: the pattern they share
        if not g["own"] and len(g["logs"]) == 1:
            g["name"] = g["logs"][0].path + (" (baseline)" if g["logs"][0].role == "baseline" else "")
    names = [g["name"] for g in out]
    for g in out:  # same folder pattern, different configurations: say what differs
        if names.count(g["name"]) > 1:
            g["name"] += " [" + ", ".join(f"{FIELD_NAMES.get(k, k)} {v}" for k, v in
                                          sorted(g["logs"][0].config.items(), key=lambda kv: kv[0])) + "]"
    return out


# --- symptoms
