"""Carry out a plan on real data: techniques x seeds, probes, tests, diagnoses.

``execute(plan, cfg, kb)`` is the orchestration: it checks the plan against the contract and the
technique registry, applies (and records) the CLI's overrides, hands the plan to the pipeline of its
modality (``text_run.text_runs`` / ``image_run.image_runs``, both returning a ``ModalityRun``), corrects the probes'
tests for multiplicity, turns them into symptoms and hands those to the rules through
``rules.revise.revise``. It writes a run directory:

- ``seeds/<technique>-<seed>.json``: one finished (technique, seed), written
  atomically; a run started again with the same arguments reuses them (resume);
- ``run.json``: plan, resolved config, versions, device, per-seed metrics,
  tests, symptoms, diagnoses (written atomically, last);
- ``report.md`` and PNG plots.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from harness.training.image_run import image_runs
from harness.training.registry import technique_spec
from harness.training.runconfig import (  # noqa: F401  (the run's public names, in one place)
    RunConfig, apply_overrides, as_plan, plan_hypers, prepare, technique_hyper, versions, write_json_atomic)
from harness.training.text_run import text_runs


def execute(plan: dict, cfg: RunConfig, kb, progress=None) -> dict:
    """Run ``plan`` as ``cfg`` says; returns the run record (also written to run.json).

    ``progress``: a ``harness.reporting.progress.Progress`` (messages and bars), a plain
    callable taking message strings, or None (silent)."""
    import torch

    from harness.evaluation import probes, stats
    from harness.training.models import pick_device
    from harness.reporting.progress import as_progress
    from harness.training.registry import check_executable
    from rules.revise import revise

    progress = as_progress(progress)
    t_start = time.perf_counter()
    plan, cfg, overrides = prepare(plan, cfg, kb, check_executable)
    image = plan.scenario.get("modality") == "image"
    if not image and (cfg.weights or cfg.image_size):
        from harness.training.data import DataError

        raise DataError(f"{'--weights' if cfg.weights else '--image-size'} is for image tasks; this plan's task is "
                        f"{plan.scenario.get('task')} (text models are named with --model).")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    adaptations: list = []
    run = (image_runs if image else text_runs)(plan, cfg, kb, out, device, progress, adaptations)
    results, baseline, y_te, mask = run.results, run.baseline, run.y_test, run.slice_mask
    alpha, probes_on = plan.evaluation.alpha, set(plan.evaluation.probes)

    tests = dict(run.tests)
    if baseline and "negative_transfer" in probes_on:
        tests.update(probes.negative_transfer_tests(
            {t: [r["accuracy"] for r in rs] for t, rs in results.items() if technique_spec(t).pretrained},
            [r["accuracy"] for r in baseline], alpha,
            transfer_correct={t: np.asarray(rs[0]["predictions"]) == y_te for t, rs in results.items()},
            baseline_correct=np.asarray(baseline[0]["predictions"]) == y_te))
    # only the probes the plan's evaluation names (a test's name starts with its probe)
    tests = {n: t for n, t in tests.items() if n.split(".")[0] in probes_on}
    names = list(tests)
    corrected = dict(zip(names, stats.apply_holm([tests[n] for n in names], alpha))) if names else {}
    lookup = dict(corrected)
    worst = min((n for n in corrected if n.startswith("forgetting.")),
                key=lambda n: corrected[n].p_value, default=None)
    if worst:  # symptoms_from looks the forgetting test up by its plain name
        lookup["forgetting.retention"] = corrected[worst]
    counts = np.bincount(y_te, minlength=len(run.classes))
    majority = {t: (float(np.mean([r["accuracy"] for r in rs])), float(counts.max() / counts.sum()))
                for t, rs in results.items()}
    m = run.measurements
    symptoms = probes.symptoms_from(lookup, unk_rate=m["unk_rate_test"] if "domain_shift" in probes_on else None,
                                    kb=kb, cka=m["cka_to_pretrained"] if "forgetting" in probes_on else [],
                                    majority=majority,
                                    forgetting_symptom=run.forgetting_symptom,
                                    prefer=plan.technique_id)
    tech = plan.technique_id
    revised = revise(plan, {"symptoms": symptoms, "technique": tech,
                            "hyperparameters": run.hypers.get(tech, {}),  # what was actually run
                            "layers": run.layers,
                            "accuracy": {t: float(np.mean([r["accuracy"] for r in rs])) for t, rs in results.items()}},
                     kb)
    diagnoses = revised["diagnoses"]

    summary = {}
    rows = dict(results)
    if baseline and baseline[0]["technique"] not in rows:
        rows[baseline[0]["technique"]] = baseline
    for t, rs in rows.items():
        accs = np.array([r["accuracy"] for r in rs])
        lo, hi = stats.bootstrap_ci(accs) if len(accs) > 1 else (accs[0], accs[0])
        sl = {}
        if mask.any():
            corr = [np.asarray(r["predictions"]) == y_te for r in rs]
            sl = {"emoji": float(np.mean([c[mask].mean() for c in corr])),
                  "no_emoji": float(np.mean([c[~mask].mean() for c in corr]))}
        summary[t] = {"accuracy_mean": float(accs.mean()), "accuracy_ci": [float(lo), float(hi)],
                      "macro_f1_mean": float(np.mean([r["macro_f1"] for r in rs])),
                      "seconds_mean": float(np.mean([r["seconds"] for r in rs])), "slices": sl, "seeds": len(rs)}

    record = {
        "schema_version": 2,
        "plan": {k: v for k, v in plan.to_dict().items() if k != "trace"},
        "overrides": overrides,
        "adaptations": adaptations,
        "config": {**asdict(cfg), "model_resolved": run.model_path, "model_name": run.model_name,
                   "data_level": run.data_level, "layers": run.layers, "backbone": run.backbone,
                   "hyperparameters": run.hypers, "config_key": run.key, "classes": run.classes,
                   "sizes": run.sizes},
        "versions": versions(),
        "device": device,
        "threads": torch.get_num_threads(),
        "embed_seconds": run.embed_seconds,
        "seconds": time.perf_counter() - t_start,
        "results": results,
        "baseline": baseline,
        "summary": summary,
        "measurements": run.measurements,
        "tests": {n: t.to_dict() for n, t in corrected.items()},
        "symptoms": symptoms,
        "diagnoses": diagnoses,
        "diagnosis_trace": revised["trace"],
    }
    from harness.reporting.report import write_report

    write_report(out, record, plan)
    write_json_atomic(out / "run.json", record)
    return record
