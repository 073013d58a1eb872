"""Diagnose runs from their logs: curves -> symptoms -> the rules engine -> diagnoses.

Runs are grouped before anything is concluded: a tlexpert run folder is read
whole (its recorded tests and symptoms make one group whose diagnoses are the
run's own, and each technique's seeds make a group read off their learning
curves); other logs are grouped by folder pattern (digits stand for seeds) and
by the configuration they record, so runs of different configurations are
never pooled as seeds. Byte-identical files are duplicates, not seeds.
``baseline`` paths are runs of the alternative (e.g. from scratch) to test
against. Fixes are made concrete against the configuration the logs record;
what they do not record is named, and its fixes are relative. Needs numpy and
scipy only: no torch.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from harness.troubleshooting import curves, endings
from harness.troubleshooting.collect import FIELD_NAMES, collect, dedupe, group_logs
from harness.troubleshooting.logs import CONFIG_FIELDS, ColumnMap, LogError, RunLog
from harness.troubleshooting.formats import recorded_plan

CURVE_THRESHOLDS = ("divergence_loss_ratio", "spike_factor", "overfit_val_rise", "underfit_flat_ratio",
                    "underfit_min_loss_share", "chance_loss_tolerance", "chance_loss_tolerance_inferred",
                    "chance_classes_max_inferred", "chance_loss_blowup_factor", "constant_metric_tolerance", "constant_metric_min_evals",
                    "train_val_gap_min", "forgetting_min_drop", "seed_std_max", "noise_z_min",
                    "divergence_abs_floor", "loss_floor", "leak_loss_max", "leak_early_share", "still_improving_t",
                    "f1_gap_min", "overfit_noise_z", "still_improving_rate_ratio", "chance_metric_tolerance",
                    "short_curve_min_evals", "short_curve_min_gain", "warmup_tail_points",
                    "underfit_max_train_accuracy", "poor_discrimination_auc", "leak_val_train_ratio",
                    "anneal_done_share")
SEVERITY = {"warning": 1, "error": 2}
DIVERGED = ("loss_nan", "loss_exploding", "loss_above_chance", "loss_below_floor")
# readings of a run that levelled off too high (capacity): a run cut short shows no plateau to judge
PLATEAU = ("high_train_loss", "train_accuracy_low")
HYPER_FIELDS = ("learning_rate", "epochs", "batch_size", "frozen_layers")
# a logged run without a scenario: the engine needs a size to consult; no diagnosis or fix reads it
PLACEHOLDER_DATASET_SIZE = 1000


def run_symptoms(log: RunLog, th: dict, n_classes: Optional[int], majority: Optional[float]) -> list[dict]:
    """Symptoms of one run, each with the run it came from."""
    out = []
    classes = n_classes or log.n_classes
    if "grad_norm" in log.series:
        s = curves.grad_norm_nonfinite(log.xs("grad_norm"), log.values("grad_norm"), th)
        out += [s] if s else []
    nan_grads = bool(out)  # the gradients are NaN: the loss column (0.0 in Trainer logs) says nothing more
    # evaluation curves outweigh per-batch noise: a training loss beside improving validation is noisy
    val_improved = ("val_loss" in log.series and curves.improved(log.values("val_loss"), False)) or (
        "target" in log.series and curves.improved(log.values("target"), True))
    if "train_loss" in log.series and not nan_grads:
        out += curves.divergence(log.xs("train_loss"), log.values("train_loss"), th,
                                 validation_improved=val_improved)
        s = curves.loss_near_zero_early(log.xs("train_loss"), log.values("train_loss"), th)
        out += [s] if s else []
        if not any(s["id"] in ("loss_nan", "loss_exploding") for s in out):
            s = curves.above_chance(log.xs("train_loss"), log.values("train_loss"), classes, th)
            out += [s] if s else []
        if "val_loss" in log.series and not any(s["id"] in DIVERGED for s in out):
            s = curves.rising_together(log.xs("train_loss"), log.values("train_loss"),
                                       log.xs("val_loss"), log.values("val_loss"), th)
            out += [s] if s else []
        diverged = any(s["id"] in DIVERGED for s in out)
        if "val_loss" in log.series and not diverged:  # a diverged run's validation loss is noise, not overfitting
            s = curves.overfitting(log.xs("train_loss"), log.values("train_loss"),
                                   log.xs("val_loss"), log.values("val_loss"), th)
            out += [s] if s else []
        if not diverged:
            out += curves.underfitting(log.values("train_loss"), log.values("val_loss"), classes, th)
    if "val_loss" in log.series and not nan_grads:
        s = curves.loss_near_zero_early(log.xs("val_loss"), log.values("val_loss"), th, metric="val_loss")
        out += [s] if s else []
    if not nan_grads and not any(s["id"] in ("val_too_good",) + DIVERGED for s in out):
        s = endings.validation_too_good(log.xs("train_loss"), log.values("train_loss"), log.xs("val_loss"),
                                        log.values("val_loss"), log.training_accuracy(),
                                        None if log.target_is_training or log.target_kind != "accuracy"
                                        else log.values("target") or None, th)
        out += [s] if s else []
    if not any(s["id"] in DIVERGED + ("val_loss_rising", "loss_near_zero_early") for s in out):
        s = t = None
        if "target" in log.series:
            t = curves.still_improving(log.xs("target"), log.values("target"), th, higher_is_better=True,
                                       metric="target")
        if "val_loss" in log.series:
            s = curves.still_improving(log.xs("val_loss"), log.values("val_loss"), th, higher_is_better=False,
                                       metric="val_loss")
            if s is not None and t is None and "target" in log.series and len(log.values("target")) >= 6:
                # the loss still falls but the task metric has levelled off: weak evidence that more helps
                s["evidence"]["strength"] = round(s["evidence"]["strength"] * 0.3, 3)
                s["evidence"]["target_levelled_off"] = True
        s = s or t or _short_still_improving(log, th) or _interrupted(log)
        if s is not None and "learning_rate" in log.series and endings.schedule_annealed(
                log.values("learning_rate"), th):
            s = None  # the gains of an anneal that ran its course: the run ended where its schedule did
        if s is not None:  # still improving is not a plateau
            out = _instead_of_plateau(out, s)
    if "f1" in log.series and "acc" in log.series:
        s = curves.f1_far_below_accuracy(log.values("acc"), log.values("f1"), th)
        out += [s] if s else []
    elif "val_loss" in log.series and not nan_grads:  # only a validation loss: NaN/inf there is divergence too
        out += [s for s in curves.divergence(log.xs("val_loss"), log.values("val_loss"), th)
                if s["id"] == "loss_nan"]
    if "val_loss" in log.series and not any(s["id"] in ("loss_at_chance", "loss_nan") for s in out):
        s = curves.val_at_chance(log.values("val_loss"), classes, th)
        out += [s] if s else []
    if "train_acc" in log.series and "target" in log.series and log.target_kind == "accuracy":
        s = curves.train_val_gap(log.values("train_acc"), log.values("target"), th,
                                 val_loss=log.values("val_loss") or None)
        out += [s] if s else []
    if "train_loss" in log.series and "target" in log.series and log.target_kind == "accuracy" and not any(
            s["id"] in DIVERGED + ("still_improving",) for s in out):
        s = endings.nothing_learned(log.values("train_loss"), log.values("target"), th)
        if s is not None:  # a run that never started shows no plateau to judge capacity by
            out = [x for x in out if x["id"] not in PLATEAU] + [s]
    train_acc = log.training_accuracy()
    if train_acc and not any(s["id"] in DIVERGED + PLATEAU + ("still_improving", "nothing_learned") for s in out):
        s = endings.train_accuracy_low(train_acc, th)
        out += [s] if s else []
    if "target" in log.series:
        s = curves.constant_metric(log.xs("target"), log.values("target"), th,
                                   loss=log.values("train_loss") if "train_loss" in log.series else None)
        out += [s] if s else []
    if "chance" in log.series:
        s = endings.metric_at_chance(log.values("chance"), log.chance[1], th, metric=log.chance[0])
        if s is None and "target" in log.series and not log.target_is_training and log.chance[1] == 0.5 \
                and log.target_kind == "accuracy":
            s = endings.accuracy_without_ranking(log.values("target"), log.values("chance"), th)
        out += [s] if s else []
    if "learning_rate" in log.series and not any(s["id"] in DIVERGED for s in out):
        s = endings.warmup_unfinished(log.xs("learning_rate"), log.values("learning_rate"), th)
        if s is not None:  # a run that never reached its learning rate shows no plateau to judge capacity by
            out = _instead_of_plateau(out, s)
    if "source" in log.series:
        s = curves.forgetting(log.xs("source"), log.values("source"), log.values("target"), th)
        out += [s] if s else []
    rate = majority
    if rate is None and classes:
        rate = 1.0 / classes
    # a score (mAP, IoU, BLEU) has no chance level of 1/k: only an accuracy is held to the majority rate
    s = curves.failed_run(log.final.get("target"), rate) if log.target_kind == "accuracy" else None
    if s is None:
        s = curves.single_class(log.predictions, classes)
    out += [s] if s else []
    if any(s["id"] == "source_accuracy_drop" for s in out):
        # training longer would deepen the forgetting: the two readings would advise against each other
        out = [s for s in out if s["id"] != "still_improving"]
    for s in out:
        s["evidence"] = {"run": log.path, **s["evidence"]}
    return out


def _instead_of_plateau(out: list[dict], s: dict) -> list[dict]:
    """``out`` with ``s`` (a run cut short) added and the underfitting reading of the same run dropped."""
    return [x for x in out if x["id"] not in PLATEAU] + [s]


def _short_still_improving(log: RunLog, th: dict) -> Optional[dict]:
    """A validation curve too short for the slope test that improved at every evaluation (the
    validation loss first, else the target metric)."""
    for key, higher in (("val_loss", False), ("target", True)):
        if key in log.series:
            s = endings.short_still_improving(log.xs(key), log.values(key), th, higher_is_better=higher,
                                              metric=key)
            if s is not None:
                return s
    return None


def _interrupted(log: RunLog) -> Optional[dict]:
    """A run that ended before its planned epochs with validation at its best (the loss first, else the
    target metric)."""
    key = "val_loss" if "val_loss" in log.series else "target" if "target" in log.series else None
    if key is None:
        return None
    for done, planned, unit in (("epochs", "epochs_planned", "epoch"), ("steps", "steps_planned", "step")):
        s = endings.interrupted(log.config.get(done), log.config.get(planned), log.values(key),
                                higher_is_better=key == "target", metric=key, unit=unit)
        if s is not None:
            return s
    return None


def _merge(per_run: list[list[dict]]) -> list[dict]:
    """One entry per symptom id: the first run's evidence, and in how many of the runs it showed (a run
    that shows it twice counts once)."""
    merged: dict = {}
    for i, symptoms in enumerate(per_run):
        for s in symptoms:
            m = merged.setdefault(s["id"], {"id": s["id"], "evidence": dict(s["evidence"]), "runs": set()})
            m["runs"].add(i)
    for m in merged.values():
        m["evidence"]["seen_in_runs"] = f"{len(m['runs'])} of {len(per_run)}"
        del m["runs"]
    return list(merged.values())


def _finals(logs: list[RunLog]) -> list[float]:
    return [x for x in (log.final.get("target") for log in logs) if x is not None and math.isfinite(x)]


def baseline_test(runs: list[RunLog], bases: list[RunLog], alpha: float) -> tuple[Optional[dict], Optional[dict]]:
    """(test, symptom): final target metric of the runs vs the baseline runs (one-sided, unpaired)."""
    from harness.evaluation import stats

    a, b = _finals(bases), _finals(runs)
    if len(a) >= 2 and len(b) >= 2:
        t = stats.compare_unpaired(np.asarray(a), np.asarray(b), alpha=alpha, alternative="less")
        sym = None
        if t.significant:
            sym = {"id": "below_baseline", "evidence": {
                "metric": "final target metric", "runs": [round(x, 4) for x in b],
                "baseline": [round(x, 4) for x in a], "ntg": round(-t.effect, 4),
                "p_value": round(t.p_value, 5), "method": t.method}}
        return t.to_dict(), sym
    if a and b:
        gap = float(np.mean(a) - np.mean(b))
        test = {"method": "difference of single runs (no test: fewer than 2 runs a side)", "effect": -gap}
        sym = None
        if gap > 0:
            sym = {"id": "below_baseline", "evidence": {
                "metric": "final target metric", "runs": b, "baseline": a, "ntg": round(gap, 4),
                "note": "single runs: not a statistical test"}}
        return test, sym
    return None, None


# --- configuration: what the logs say, and nothing more


def known_config(logs: list[RunLog]) -> tuple[dict, dict]:
    """(values all runs of a group agree on, where each was read)."""
    known, where = {}, {}
    for k in CONFIG_FIELDS:
        vals = [log.config.get(k) for log in logs]
        if vals and all(v is not None for v in vals) and len({repr(v) for v in vals}) == 1:
            known[k] = vals[0]
            where[k] = logs[0].config_from.get(k, "")
    return known, where


def _fix_fields(kb) -> set:
    return {ch.field for f in kb.fixes.values() for ch in f.changes}


def _task_from(known: dict) -> tuple[str, Optional[str]]:
    """(task, modality) for the engine: from the model's architecture name where the log gives one."""
    model = str(known.get("model") or "")
    if "ImageClassification" in model:
        return "image_classification", "image"
    if "SequenceClassification" in model or "TokenClassification" in model:
        return "text_classification", "text"
    return "text_classification", None


def diagnoses_of(kb, scenario: dict, symptoms: list[dict], hyper: dict, technique: Optional[str], layers: int,
           modality: Optional[str], unknown=(), scenario_known: bool = True) -> dict:
    """The rules' diagnoses of ``symptoms`` (through the one seam, ``rules.revise.revise``), fixes made
    concrete against the configuration run, each with its severity (``scenario_known``: False when the
    scenario is a stand-in, so no fix is ruled out by it)."""
    from rules.revise import revise as rules_revise

    out = rules_revise(scenario, {"symptoms": symptoms, "hyperparameters": hyper, "technique": technique,
                                  "technique_known": technique is not None, "layers": layers,
                                  "unknown": list(unknown), "scenario_known": scenario_known}, kb)
    diagnoses = []
    for d in out["diagnoses"]:
        sev = max(SEVERITY[kb.symptoms[e["symptom"]].severity] for e in d["evidence"])
        diagnoses.append({**d, "severity": "error" if sev == 2 else "warning"})
    return {"diagnoses": diagnoses, "trace": out["trace"], "notes": out.get("notes") or []}


# --- the report


def _run_row(log: RunLog) -> dict:
    row = {"path": log.path, "kind": log.kind, "points": {k: len(v) for k, v in log.series.items()},
           "final_target": log.final.get("target"), "learning_rate": log.learning_rate}
    if log.seed is not None:
        row["seed"] = log.seed
    return row


def _data_warnings(logs: list[RunLog]) -> list[str]:
    out = []
    for log in logs:
        for col, s in log.skipped.items():
            ex = ", ".join(repr(e) for e in s["examples"])
            out.append(f"{log.path}: {s['count']} cell(s) of '{col}' are not numbers ({ex}) and were skipped")
    return out


def _recorded_scenario(run_dir: str, scenario: dict, kb) -> dict:
    from knowledge.schema import KnowledgeError
    from rules.scenario import normalize

    try:
        return normalize(scenario, kb, origin=f"{run_dir}/run.json (plan.scenario)")
    except KnowledgeError as exc:
        raise LogError(str(exc)) from None


def analyse_group(g: dict, kb, th: dict, *, bases: list[RunLog], scenario: Optional[dict], n_classes,
                  majority_rate, alpha: float, records: dict) -> dict:
    from rules.scenario import normalize

    runs = g["logs"]
    symptoms = _merge([run_symptoms(log, th, n_classes, majority_rate) for log in runs])
    s = curves.seed_variance([log.final.get("target") for log in runs], th)
    if s:
        symptoms.append(s)
    tests = {}
    if bases and runs[0].role == "run":
        t, sym = baseline_test(runs, bases, alpha)
        if t:
            tests["negative_transfer"] = t
        if sym:
            symptoms.append(sym)
    known, where = known_config(runs)
    if g["own"]:
        rec = records[runs[0].path.rsplit(" (", 1)[0]]
        ran = recorded_plan(rec)
        sc = _recorded_scenario(runs[0].path.rsplit(" (", 1)[0], ran.scenario, kb)
        modality = sc.get("modality")
        scenario_from = "run.json (plan.scenario)"
        technique = known.get("technique")
        hyper = {**ran.hyperparameters,
                 **((rec["config"].get("hyperparameters") or {}).get(technique) or {})}
        unknown: set = set()
    else:
        if scenario:
            sc, scenario_from = normalize(scenario, kb), "--scenario"
            modality = sc["modality"]
        else:
            task, modality = _task_from(known)
            # the diagnosis rules read symptoms, not the dataset size; the engine needs one to consult
            sc = normalize({"task": task, "dataset_size": PLACEHOLDER_DATASET_SIZE,
                            **({"num_classes": known["n_classes"]} if known.get("n_classes") else {})}, kb)
            scenario_from = "not given (task " + (f"read from the model's architecture, {known['model']}"
                                                  if modality else "unknown; text classification used for the rules")
            scenario_from += ")"
        technique = known.get("technique")
        hyper = {k: known[k] for k in HYPER_FIELDS if k in known}
        unknown = _fix_fields(kb) - set(hyper)
        if technique is None:
            unknown.add("technique")
    layers = int(known.get("layers") or 0)
    rv = diagnoses_of(kb, sc, symptoms, hyper, technique, layers, modality, unknown,
                scenario_known=g["own"] or bool(scenario))
    return {
        "name": g["name"],
        "role": runs[0].role,
        "runs": [_run_row(log) for log in runs],
        "missing": sorted({m for log in runs for m in log.missing}),
        "symptoms": symptoms,
        "tests": tests,
        "healthy": not rv["diagnoses"],
        "diagnoses": rv["diagnoses"],
        "config": {"known": {k: {"value": v, "from": where[k]} for k, v in known.items()},
                   "not_in_log": [FIELD_NAMES[k] for k in (*HYPER_FIELDS, "technique") if k not in known],
                   "scenario": scenario_from},
        "notes": rv["notes"],
        "trace": rv["trace"],
    }


def analyse_record(run_dir: str, rec: dict, kb) -> dict:
    """The run-level group of a tlexpert run folder: its recorded tests and symptoms, diagnosed
    by the rules against its own plan and configuration (what its report.md shows)."""
    ran = recorded_plan(rec)
    sc = _recorded_scenario(run_dir, ran.scenario, kb)
    tech = ran.technique
    hyper = {**ran.hyperparameters, **((rec["config"].get("hyperparameters") or {}).get(tech) or {})}
    layers = int(rec["config"].get("layers") or 0)
    symptoms = rec.get("symptoms") or []
    for s in symptoms:
        if not isinstance(s, dict) or s.get("id") not in kb.symptoms:
            raise LogError(f"The 'symptoms' field of {run_dir}/run.json holds {s!r}: expected "
                           f"{{id, evidence}} with a known symptom id")
    rv = diagnoses_of(kb, sc, symptoms, hyper, tech, layers, sc.get("modality"))
    recorded = {d["pitfall"]: d.get("confidence") for d in rec.get("diagnoses") or []}
    now = {d["pitfall"]: d["confidence"] for d in rv["diagnoses"]}
    return {
        "name": f"{run_dir}: run (tests, symptoms and plan recorded in run.json)",
        "role": "run",
        "runs": [],
        "missing": [],
        "symptoms": symptoms,
        "tests": rec.get("tests") or {},
        "healthy": not rv["diagnoses"],
        "diagnoses": rv["diagnoses"],
        "config": {"known": {k: {"value": v, "from": f"run.json (config.hyperparameters.{tech})"}
                             for k, v in hyper.items() if k in HYPER_FIELDS},
                   "not_in_log": [], "scenario": "run.json (plan.scenario)", "technique": tech},
        "agrees_with_report": recorded == now,
        "recorded_diagnoses": recorded,
        "summary": rec.get("summary") or {},
        "measurements": {k: v for k, v in (rec.get("measurements") or {}).items() if not isinstance(v, (list, dict))},
        "trace": rv["trace"],
    }


def diagnose(paths: list[str], kb, *, baseline: list[str] = (), cols: Optional[ColumnMap] = None,
             scenario: Optional[dict] = None, n_classes: Optional[int] = None,
             majority_rate: Optional[float] = None, alpha: float = 0.05) -> dict:
    """The diagnosis report for the runs at ``paths``, group by group."""
    cols = cols or ColumnMap()
    th = {t: kb.threshold(t) for t in CURVE_THRESHOLDS}
    logs, records, warnings = collect(list(paths), cols, "path")
    blogs, brecords, bwarn = collect(list(baseline), cols, "baseline")
    warnings += bwarn
    logs, dups = dedupe(logs + blogs)
    by_dir = {}
    for r in records + brecords:
        by_dir.setdefault(r["dir"], r["record"])
    groups = group_logs(logs)
    base_groups = [g for g in groups if g["logs"][0].role == "baseline" and not g["own"]]
    best_base = max(base_groups, key=lambda g: np.mean(_finals(g["logs"]) or [-1.0]), default=None)
    out_groups = []
    for d, rec in by_dir.items():
        out_groups.append(analyse_record(d, rec, kb))
    for g in groups:
        if g["logs"][0].role == "baseline":
            continue
        out_groups.append(analyse_group(g, kb, th, bases=best_base["logs"] if best_base else [],
                                        scenario=scenario, n_classes=n_classes, majority_rate=majority_rate,
                                        alpha=alpha, records=by_dir))
    data_warnings = _data_warnings(logs) + warnings
    data_warnings += [f"{d['path']} is byte-identical to {d['same_as']}: read once (a duplicate, not a seed)"
                      for d in dups]
    diagnoses = [{**d, "group": g["name"]} for g in out_groups for d in g["diagnoses"]]
    symptoms = [{**s, "group": g["name"]} for g in out_groups for s in g["symptoms"]]
    tests = {}
    for g in out_groups:
        for n, t in g["tests"].items():
            tests[n if len(out_groups) == 1 else f"{g['name']}: {n}"] = t
    runs = [r for g in out_groups for r in g["runs"]]
    if not out_groups:  # everything found was skipped (a FIFO, an unreadable file): say what and why
        from harness.troubleshooting.logs import LogError

        raise LogError(f"{', '.join(map(str, paths))}: no log could be read"
                       + (f" ({'; '.join(warnings[:3])})" if warnings else ""))
    first = next((g for g in out_groups if not g["name"].endswith("run.json)")), out_groups[0])
    return {
        "runs": runs,
        "baseline_runs": [_run_row(log) for g in groups if g["logs"][0].role == "baseline" for log in g["logs"]],
        "groups": out_groups,
        "missing": sorted({m for g in out_groups for m in g["missing"]}),
        "data_warnings": data_warnings,
        "duplicates": dups,
        "symptoms": symptoms,
        "tests": tests,
        "healthy": not diagnoses,
        "diagnoses": diagnoses,
        "config": first["config"],
        "trace": [t for g in out_groups for t in g["trace"]],
    }
