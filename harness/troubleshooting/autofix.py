"""Fix and verify in a closed loop: diagnose, apply the top fix, run again, test, keep or revert.

Round 0 runs the plan. Each later round takes the most confident diagnosis's
first fix not tried yet that the harness can carry out, applies it to the
plan, runs it on the same seeds, and compares the target metric with the
current best run, paired by seed. The fix is kept only if the metric improves
significantly, or the diagnosed symptom disappears, *and* no new symptom
appears and the metric does not get significantly worse; otherwise the next
fix is tried. ``autofix.json`` and ``autofix.md`` hold the chain
symptom -> diagnosis -> fix -> measured effect, with p-values.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rules.contract import Plan

# fields a fix may change that are not hyperparameters of a technique
PLAN_FIELDS = {"technique", "seeds"}


def apply_fix(plan: Plan, fix: dict) -> Plan:
    """A new plan with the fix's concrete changes applied (``seeds`` is the evaluation's)."""
    tech = next((ch["to"] for ch in fix["changes"] if ch["field"] == "technique"), plan.technique_id)
    new = plan.with_technique(tech, {"rule": "autofix", "knowledge": [f"fixes:{fix['fix']}"],
                                     "text": fix["description"]})
    changes = {("evaluation.seeds" if ch["field"] == "seeds" else f"hyperparameters.{ch['field']}"): ch["to"]
               for ch in fix["changes"] if ch["field"] != "technique"}
    return new.changed({**changes, "applied_fixes": [*new.applied_fixes, fix["fix"]]},
                       where=f"the plan with fix {fix['fix']!r} applied")


def _metric(record: dict, technique: str) -> np.ndarray:
    return np.array([r["accuracy"] for r in record["results"][technique]])


def carried(fix: dict, technique: str, modality: str, kb) -> bool:
    """Whether the harness carries the fix out: a fix the knowledge base says it runs, whose every changed
    field the technique it leaves in place honours, with values the harness implements."""
    from harness.training.adapt import can_carry
    from harness.training.registry import honours

    if not kb.fixes[fix["fix"]].harness or not can_carry(fix["changes"], modality):
        return False
    target = next((c["to"] for c in fix["changes"] if c["field"] == "technique"), technique)
    return honours(target, modality, [c["field"].partition(".")[0] for c in fix["changes"]
                                      if c["field"] not in PLAN_FIELDS])


def _candidates(record: dict, kb, tried: set, pitfalls=None):
    modality = "causal_lm" if record.get("kind") == "causal_lm" else record["plan"]["scenario"].get("modality", "text")
    technique = record["plan"]["technique"]["choice"]
    for d in record["diagnoses"]:
        if pitfalls and d["pitfall"] not in pitfalls:
            continue
        for f in d["fixes"]:
            if f["fix"] in tried or f.get("measured"):
                continue
            if carried(f, technique, modality, kb):
                yield d, f


def judge(diagnosis: dict, before: dict, after: dict, better, worse, kb) -> tuple[bool, str, list, list]:
    """(keep, why, symptoms gone, new symptoms) for one fix round.

    A fix is judged on the pitfall it targets: it is kept when the target metric improves significantly,
    or when the targeted pitfall's symptoms disappear without a significant loss. A symptom counts as
    new only when it indicates a pitfall the run before the fix had not already diagnosed (the emoji
    slice gap of an already-diagnosed domain shift is not new). ``before``/``after``: run records."""
    targeted = {e["symptom"] for e in diagnosis["evidence"]}
    after_ids = {s["id"] for s in after["symptoms"]}
    before_ids = {s["id"] for s in before["symptoms"]}
    known = {d["pitfall"] for d in before["diagnoses"]}
    gone = sorted(targeted - after_ids)
    appeared = sorted(sid for sid in after_ids - before_ids
                      if not set(kb.symptoms[sid].indicates) <= known)
    keep = (better.significant or bool(gone)) and not appeared and not worse.significant
    if keep:
        why = ("the target metric improved significantly" if better.significant
               else f"the symptom disappeared ({', '.join(gone)})")
    else:
        why = ("a new symptom appeared: " + ", ".join(appeared) if appeared
               else "the target metric got significantly worse" if worse.significant
               else "no significant improvement and the symptom remained")
    return keep, why, gone, appeared


def auto_fix(plan: dict, cfg, kb, max_rounds: int = 3, progress=None, pitfalls=None) -> dict:
    """Run ``plan``, then up to ``max_rounds`` fix attempts; returns the chain (also on disk).

    ``pitfalls`` (optional) limits the loop to diagnoses of these pitfalls."""
    from harness.evaluation import stats
    from harness.reporting.progress import as_progress
    from harness.training.lm_run import execute_lm, is_causal_lm, target_metric
    from harness.training.run import execute
    from harness.training.runconfig import apply_overrides, as_plan, write_json_atomic

    progress = as_progress(progress)
    root = Path(cfg.out)
    # the user's overrides become part of the plan, so that a fix can change them; one --technique
    # names the technique the loop starts from (its recipe from the plan)
    cur_plan = as_plan(plan, kb)
    if cfg.techniques and len(cfg.techniques) == 1 and cfg.techniques[0] in cur_plan.recipes:
        cur_plan = cur_plan.with_technique(cfg.techniques[0], {"rule": "autofix", "knowledge": [],
                                                               "text": "--technique on the command line"})
    cur_plan, _ = apply_overrides(cur_plan, cfg)
    lm = is_causal_lm(kb, cur_plan)
    # a causal LM: its own executor, the held-out response loss (negated) as the target metric, and the
    # retention data kept (forgetting is what its fixes are judged on)
    run, metric, name = ((execute_lm, target_metric, "response loss") if lm else (execute, _metric, "accuracy"))
    cfg = replace(cfg, overrides={}, seeds=None, alpha=None,
                  retention_data=(cfg.retention_data or cur_plan.evaluation.retention_data) if lm else None)
    tech = cur_plan.technique_id
    cur = run(cur_plan, replace(cfg, out=str(root / "round-0"), techniques=[tech]), kb, progress)
    best_dir = root / "round-0"
    # from here on the plan holds what was actually run (on this model's layer count)
    ran = cur["hyperparameters"][tech] if lm else cur["config"]["hyperparameters"][tech]
    synced = {f"hyperparameters.{k}": v for k, v in ran.items() if hasattr(cur_plan.hyperparameters, k)}
    if cur_plan.model is not None and not lm:
        synced["model.layers"] = cur["config"]["layers"]
    cur_plan = cur_plan.changed(synced, where="the plan as round 0 ran it")
    chain, tried = [], set()
    for r in range(1, max_rounds + 1):
        pick = next(_candidates(cur, kb, tried, pitfalls), None)
        if pick is None:
            progress("auto-fix: no further fix the harness can carry out")
            break
        diag, fix = pick
        tried.add(fix["fix"])
        new_plan = apply_fix(cur_plan, fix)
        new_tech = new_plan.technique_id
        out = root / f"round-{r}-{fix['fix']}"
        progress(f"auto-fix round {r}: {diag['pitfall']} -> {fix['fix']} ({fix['summary']})")
        new = run(new_plan, replace(cfg, out=str(out), techniques=[new_tech]), kb, progress)
        a, b = metric(cur, cur_plan.technique_id), metric(new, new_tech)
        n = min(len(a), len(b))  # "more seeds" runs more: compare the seeds both rounds ran, paired
        alpha = cur_plan.evaluation.alpha
        better = stats.compare_paired(a[:n], b[:n], alpha=alpha, alternative="greater")
        worse = stats.compare_paired(a[:n], b[:n], alpha=alpha, alternative="less")
        keep, why, gone, appeared = judge(diag, cur, new, better, worse, kb)
        diagnosed = {e["symptom"] for e in diag["evidence"]}
        chain.append({
            "round": r, "diagnosis": diag["pitfall"], "confidence": diag["confidence"],
            "symptoms": sorted(diagnosed), "fix": fix["fix"], "changes": fix["changes"],
            "summary": fix["summary"], "run_dir": str(out),
            "metric": name, "metric_before": _shown(a.mean(), lm), "metric_after": _shown(b.mean(), lm),
            "effect": better.effect, "ci": [better.ci_low, better.ci_high],
            "p_improve": better.p_value, "p_worse": worse.p_value, "method": better.method,
            "symptoms_gone": gone, "symptoms_new": appeared, "kept": keep, "why": why,
        })
        progress(f"auto-fix round {r}: {name} {_shown(a.mean(), lm):.3f} -> {_shown(b.mean(), lm):.3f} "
                 f"(p={better.p_value:.3g}); {'kept' if keep else 'reverted'}: {why}")
        if keep:
            cur, cur_plan, best_dir = new, new_plan, out
    first = _load(root / "round-0")
    key = "response_loss" if lm else "accuracy"
    result = {
        "metric": name, "metric_key": key,
        "initial": {"technique": tech, key: _shown(metric(first, tech).mean(), lm),
                    "symptoms": [s["id"] for s in first["symptoms"]]},
        "final": {"technique": cur_plan.technique_id, "applied_fixes": cur_plan.applied_fixes,
                  key: _shown(metric(cur, cur_plan.technique_id).mean(), lm),
                  "symptoms": [s["id"] for s in cur["symptoms"]], "run_dir": str(best_dir),
                  "hyperparameters": cur_plan.to_dict()["hyperparameters"],
                  "seeds": cur_plan.evaluation.seeds},
        "chain": chain,
    }
    write_json_atomic(root / "autofix.json", result)
    _write_md(root / "autofix.md", result)
    return result


def _shown(value: float, lm: bool) -> float:
    """The metric as a person reads it: accuracy, or a causal LM's response loss (stored negated)."""
    return float(-value if lm else value)


def _load(d: Path) -> dict:
    from knowledge.reading import read_json

    return read_json(d / "run.json", expect=dict)


def _write_md(path: Path, result: dict) -> None:
    key, name = result.get("metric_key", "accuracy"), result.get("metric", "accuracy")
    lines = ["# Fix and verify", "",
             f"Start: {result['initial']['technique']}, {name} {result['initial'][key]:.3f}, "
             f"symptoms: {', '.join(result['initial']['symptoms']) or 'none'}.", "",
             f"| round | diagnosis | symptoms | fix | change | {name} before → after | p (improve) | "
             "symptoms gone | new symptoms | kept |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in result["chain"]:
        lines.append(f"| {c['round']} | {c['diagnosis']} ({c['confidence']:.2f}) | {', '.join(c['symptoms'])} | "
                     f"{c['fix']} | {c['summary']} | {c['metric_before']:.3f} → {c['metric_after']:.3f} | "
                     f"{c['p_improve']:.3g} | {', '.join(c['symptoms_gone']) or '-'} | "
                     f"{', '.join(c['symptoms_new']) or '-'} | {'yes' if c['kept'] else 'no'}: {c['why']} |")
    f = result["final"]
    lines += ["", f"Final: {f['technique']} with {', '.join(f['applied_fixes']) or 'no fix'}, {name} "
                  f"{f[key]:.3f}, symptoms: {', '.join(f['symptoms']) or 'none'} ({f['run_dir']})."]
    from knowledge.writing import write_atomic

    write_atomic(path, "\n".join(lines) + "\n")
