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

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np

DATA_LEVEL = ("preprocessing", "augmentation", "tokenizer_extra_tokens", "stages")


def apply_fix(plan: dict, fix: dict) -> dict:
    """A copy of ``plan`` with the fix's concrete changes applied."""
    from rules.fixes import apply_changes

    new = copy.deepcopy(plan)
    hyper, tech = apply_changes(new["hyperparameters"], new["technique"]["choice"], fix["changes"])
    if tech != plan["technique"]["choice"]:
        # a new technique starts from its own defaults; data-level settings carry over
        hyper = {k: v for k, v in hyper.items() if k in DATA_LEVEL}
        new["technique"] = {**new["technique"], "choice": tech, "name": tech,
                            "why": {"rule": "autofix", "knowledge": [f"fixes:{fix['fix']}"],
                                    "text": fix["description"]}}
    new["hyperparameters"] = hyper
    new.setdefault("applied_fixes", []).append(fix["fix"])
    return new


def _metric(record: dict, technique: str) -> np.ndarray:
    return np.array([r["accuracy"] for r in record["results"][technique]])


def _candidates(record: dict, kb, tried: set, pitfalls=None):
    from harness.adapt import can_carry

    for d in record["diagnoses"]:
        if pitfalls and d["pitfall"] not in pitfalls:
            continue
        for f in d["fixes"]:
            if f["fix"] in tried or f.get("measured"):
                continue
            modality = record["plan"]["scenario"].get("modality", "text")
            if not kb.fixes[f["fix"]].harness or not can_carry(f["changes"], modality):
                continue
            yield d, f


def auto_fix(plan: dict, cfg, kb, max_rounds: int = 3, progress=None, pitfalls=None) -> dict:
    """Run ``plan``, then up to ``max_rounds`` fix attempts; returns the chain (also on disk).

    ``pitfalls`` (optional) limits the loop to diagnoses of these pitfalls."""
    from harness import stats
    from harness.progress import as_progress
    from harness.run import execute, write_json_atomic

    progress = as_progress(progress)
    root = Path(cfg.out)
    # the user's overrides become part of the plan, so that a fix can change them
    cur_plan = copy.deepcopy(plan)
    cur_plan["hyperparameters"].update({k: v for k, v in (cfg.overrides or {}).items() if v is not None})
    cfg = replace(cfg, overrides={})
    tech = plan["technique"]["choice"]
    cur = execute(cur_plan, replace(cfg, out=str(root / "round-0"), techniques=[tech]), kb, progress)
    best_dir = root / "round-0"
    # from here on the plan holds what was actually run (on this model's layer count)
    cur_plan["hyperparameters"] = {**{k: cur_plan["hyperparameters"].get(k) for k in DATA_LEVEL},
                                   **cur["config"]["hyperparameters"][tech]}
    if cur_plan["candidates"]:
        cur_plan["candidates"][0]["layers"] = cur["config"]["layers"]
    chain, tried = [], set()
    for r in range(1, max_rounds + 1):
        pick = next(_candidates(cur, kb, tried, pitfalls), None)
        if pick is None:
            progress("auto-fix: no further fix the harness can carry out")
            break
        diag, fix = pick
        tried.add(fix["fix"])
        new_plan = apply_fix(cur_plan, fix)
        new_tech = new_plan["technique"]["choice"]
        out = root / f"round-{r}-{fix['fix']}"
        progress(f"auto-fix round {r}: {diag['pitfall']} -> {fix['fix']} ({fix['summary']})")
        new = execute(new_plan, replace(cfg, out=str(out), techniques=[new_tech]), kb, progress)
        a, b = _metric(cur, cur_plan["technique"]["choice"]), _metric(new, new_tech)
        better = stats.compare_paired(a, b, alpha=cfg.alpha, alternative="greater")
        worse = stats.compare_paired(a, b, alpha=cfg.alpha, alternative="less")
        before = {s["id"] for s in cur["symptoms"]}
        after = {s["id"] for s in new["symptoms"]}
        diagnosed = {e["symptom"] for e in diag["evidence"]}
        gone = sorted(diagnosed - after)
        appeared = sorted(after - before)
        keep = (better.significant or bool(gone)) and not appeared and not worse.significant
        if keep:
            why = ("the target metric improved significantly" if better.significant
                   else f"the symptom disappeared ({', '.join(gone)})")
        else:
            why = ("a new symptom appeared: " + ", ".join(appeared) if appeared
                   else "the target metric got significantly worse" if worse.significant
                   else "no significant improvement and the symptom remained")
        chain.append({
            "round": r, "diagnosis": diag["pitfall"], "confidence": diag["confidence"],
            "symptoms": sorted(diagnosed), "fix": fix["fix"], "changes": fix["changes"],
            "summary": fix["summary"], "run_dir": str(out),
            "metric_before": float(a.mean()), "metric_after": float(b.mean()),
            "effect": better.effect, "ci": [better.ci_low, better.ci_high],
            "p_improve": better.p_value, "p_worse": worse.p_value, "method": better.method,
            "symptoms_gone": gone, "symptoms_new": appeared, "kept": keep, "why": why,
        })
        progress(f"auto-fix round {r}: accuracy {a.mean():.3f} -> {b.mean():.3f} "
                 f"(p={better.p_value:.3g}); {'kept' if keep else 'reverted'}: {why}")
        if keep:
            cur, cur_plan, best_dir = new, new_plan, out
    result = {
        "initial": {"technique": tech, "accuracy": float(_metric(_load(root / "round-0"), tech).mean()),
                    "symptoms": [s["id"] for s in _load(root / "round-0")["symptoms"]]},
        "final": {"technique": cur_plan["technique"]["choice"], "applied_fixes": cur_plan.get("applied_fixes", []),
                  "accuracy": float(_metric(cur, cur_plan["technique"]["choice"]).mean()),
                  "symptoms": [s["id"] for s in cur["symptoms"]], "run_dir": str(best_dir),
                  "hyperparameters": cur_plan["hyperparameters"]},
        "chain": chain,
    }
    write_json_atomic(root / "autofix.json", result)
    _write_md(root / "autofix.md", result)
    return result


def _load(d: Path) -> dict:
    from knowledge.reading import read_json

    return read_json(d / "run.json", expect=dict)


def _write_md(path: Path, result: dict) -> None:
    lines = ["# Fix and verify", "",
             f"Start: {result['initial']['technique']}, accuracy {result['initial']['accuracy']:.3f}, "
             f"symptoms: {', '.join(result['initial']['symptoms']) or 'none'}.", "",
             "| round | diagnosis | symptoms | fix | change | accuracy before → after | p (improve) | "
             "symptoms gone | new symptoms | kept |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in result["chain"]:
        lines.append(f"| {c['round']} | {c['diagnosis']} ({c['confidence']:.2f}) | {', '.join(c['symptoms'])} | "
                     f"{c['fix']} | {c['summary']} | {c['metric_before']:.3f} → {c['metric_after']:.3f} | "
                     f"{c['p_improve']:.3g} | {', '.join(c['symptoms_gone']) or '-'} | "
                     f"{', '.join(c['symptoms_new']) or '-'} | {'yes' if c['kept'] else 'no'}: {c['why']} |")
    f = result["final"]
    lines += ["", f"Final: {f['technique']} with {', '.join(f['applied_fixes']) or 'no fix'}, accuracy "
                  f"{f['accuracy']:.3f}, symptoms: {', '.join(f['symptoms']) or 'none'} ({f['run_dir']})."]
    from knowledge.reading import write_atomic

    write_atomic(path, "\n".join(lines) + "\n")
