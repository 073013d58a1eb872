"""Diagnose runs from their logs: curves -> symptoms -> the rules engine -> diagnoses.

Several paths are several seeds of one configuration; ``baseline`` paths are
runs of the alternative (e.g. from scratch) to test against. Needs numpy and
scipy only: no torch.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from harness import curves
from harness.logs import ColumnMap, RunLog, read_logs

CURVE_THRESHOLDS = ("divergence_loss_ratio", "spike_factor", "overfit_val_rise", "underfit_flat_ratio",
                    "underfit_min_loss_share", "chance_loss_tolerance", "forgetting_min_drop", "seed_std_max")
SEVERITY = {"warning": 1, "error": 2}

DEFAULT_SCENARIO = {"task": "text_classification", "dataset_size": 5000, "compute": "consumer_gpu"}


def run_symptoms(log: RunLog, th: dict, n_classes: Optional[int], majority: Optional[float]) -> list[dict]:
    """Symptoms of one run, each with the run it came from."""
    out = []
    if "train_loss" in log.series:
        out += curves.divergence(log.xs("train_loss"), log.values("train_loss"), th)
        if "val_loss" in log.series:
            s = curves.overfitting(log.xs("train_loss"), log.values("train_loss"),
                                   log.xs("val_loss"), log.values("val_loss"), th)
            out += [s] if s else []
        if not any(s["id"] in ("loss_nan", "loss_exploding") for s in out):
            out += curves.underfitting(log.values("train_loss"), log.values("val_loss"),
                                       n_classes or log.n_classes, th)
    if "source" in log.series:
        s = curves.forgetting(log.xs("source"), log.values("source"), log.values("target"), th)
        out += [s] if s else []
    rate = majority
    if rate is None and (n_classes or log.n_classes):
        rate = 1.0 / (n_classes or log.n_classes)
    s = curves.failed_run(log.final.get("target"), rate)
    out += [s] if s else []
    for s in out:
        s["evidence"] = {"run": log.path, **s["evidence"]}
    return out


def _merge(symptoms: list[dict], n_runs: int) -> list[dict]:
    """One entry per symptom id: the first run's evidence, and in how many runs it showed."""
    merged: dict = {}
    for s in symptoms:
        m = merged.setdefault(s["id"], {"id": s["id"], "evidence": dict(s["evidence"]), "runs": 0})
        m["runs"] += 1
    for m in merged.values():
        m["evidence"]["seen_in_runs"] = f"{m['runs']} of {n_runs}"
        del m["runs"]
    return list(merged.values())


def diagnose(paths: list[str], kb, *, baseline: list[str] = (), cols: Optional[ColumnMap] = None,
             scenario: Optional[dict] = None, n_classes: Optional[int] = None,
             majority_rate: Optional[float] = None, alpha: float = 0.05) -> dict:
    """The diagnosis report for the runs at ``paths``."""
    from harness import stats
    from rules.engine import get_engine
    from rules.fixes import refix
    from rules.scenario import normalize

    th = {t: kb.threshold(t) for t in CURVE_THRESHOLDS}
    runs = [log for p in paths for log in read_logs(p, cols)]
    base_runs = [log for p in baseline for log in read_logs(p, cols)]
    found = []
    for log in runs:
        found += run_symptoms(log, th, n_classes, majority_rate)
    symptoms = _merge(found, len(runs))
    tests = {}
    finals = [log.final.get("target") for log in runs]
    s = curves.seed_variance(finals, th)
    if s:
        symptoms.append(s)
    if base_runs:
        a = [log.final.get("target") for log in base_runs]
        b = finals
        a = [x for x in a if x is not None and math.isfinite(x)]
        b = [x for x in b if x is not None and math.isfinite(x)]
        if len(a) >= 2 and len(b) >= 2:
            t = stats.compare_unpaired(np.asarray(a), np.asarray(b), alpha=alpha, alternative="less")
            tests["negative_transfer"] = t.to_dict()
            if t.significant:
                symptoms.append({"id": "below_baseline", "evidence": {
                    "metric": "final target metric", "runs": [round(x, 4) for x in b],
                    "baseline": [round(x, 4) for x in a], "ntg": round(-t.effect, 4),
                    "p_value": round(t.p_value, 5), "method": t.method}})
        elif a and b:
            gap = float(np.mean(a) - np.mean(b))
            tests["negative_transfer"] = {"method": "difference of single runs (no test: fewer than 2 runs a side)",
                                          "effect": -gap}
            if gap > 0:
                symptoms.append({"id": "below_baseline", "evidence": {
                    "metric": "final target metric", "runs": b, "baseline": a, "ntg": round(gap, 4),
                    "note": "single runs: not a statistical test"}})
    sc = normalize(scenario or DEFAULT_SCENARIO, kb)
    plan = get_engine(kb).consult(sc, measured=symptoms)
    hyper = dict(plan["hyperparameters"])
    lrs = [log.learning_rate for log in runs if log.learning_rate]
    if lrs:
        hyper["learning_rate"] = float(max(lrs))
    layers = plan["candidates"][0]["layers"] if plan["candidates"] else 0
    diagnoses = []
    for d in refix(kb, plan["diagnoses"], hyper, plan["technique"]["choice"], layers, modality=sc["modality"],
                   scenario=sc):
        sev = max(SEVERITY[kb.symptoms[e["symptom"]].severity] for e in d["evidence"])
        diagnoses.append({**d, "severity": "error" if sev == 2 else "warning"})
    missing = sorted({m for log in runs for m in log.missing})
    return {
        "runs": [{"path": log.path, "kind": log.kind, "points": {k: len(v) for k, v in log.series.items()},
                  "final_target": log.final.get("target"), "learning_rate": log.learning_rate}
                 for log in runs],
        "baseline_runs": [{"path": log.path, "final_target": log.final.get("target")} for log in base_runs],
        "missing": missing,
        "symptoms": symptoms,
        "tests": tests,
        "healthy": not diagnoses,
        "diagnoses": diagnoses,
        "assumed": {"scenario": sc, "technique": plan["technique"]["choice"],
                    "learning_rate": hyper.get("learning_rate")},
        "trace": [t for t in plan["trace"] if t["rule"].startswith("diagnosis.")],
    }
