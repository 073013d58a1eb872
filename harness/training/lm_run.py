"""Carrying out a plan that adapts a causal language model (``text_generation``): LoRA or full
fine-tuning, seeds, and what the run measures, each tested per item with the harness's statistics:

- the target: held-out response loss (and perplexity) of the adapted model against the base model
  (negative transfer when significantly worse), and exact match where the references are short;
- forgetting: the per-item change in cross-entropy on general text and on general instructions'
  reference answers (``--retention-data``, or the plan's ``evaluation.retention_data``), the base
  figure computed on the base model itself; significant and at least ``lm_forgetting_min_nats``;
- drift: mean token-level KL(base || adapted) on the target prompts;
- a few before/after generations for fixed prompts, for a person to look at.

Symptoms go through ``rules.revise`` as for classifiers; ``run.json`` and ``report.md`` record it all.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from harness.training.runconfig import RunConfig, plan_hypers, prepare, versions, write_json_atomic
from harness.training.registry import REGISTRY, technique_spec

LM_TECHNIQUES = tuple(t for t, s in REGISTRY.items() if "causal_lm" in s.honours)


def is_causal_lm(kb, plan) -> bool:
    """A plan that adapts a causal language model: a generative task on text."""
    task = kb.tasks.get(plan.scenario.get("task"))
    return task is not None and task.generative and plan.scenario.get("modality") == "text"


def target_metric(record: dict, technique: str):
    """Per seed, the held-out response loss negated (higher is better, as accuracy is for a classifier)."""
    return -np.array([np.mean(r["test_losses"]) for r in record["results"][technique]])


def split_examples(examples: list, shares: tuple = (0.1, 0.1), seed: int = 0) -> tuple[list, list, list]:
    """Train/validation/test, shuffled with ``seed``: the validation and test sets each their ``shares`` of
    the examples (the plan's evaluation; 80/10/10 by default), at least one item in each."""
    if len(examples) < 10:
        from harness.training.lm_data import LMDataError

        raise LMDataError(f"{len(examples)} examples: at least 10 are needed (train, validation and test)")
    idx = np.random.default_rng(seed).permutation(len(examples))
    n_val, n_te = (max(1, int(len(examples) * s + 1e-9)) for s in shares)
    pick = [examples[i] for i in idx]
    return pick[n_val + n_te:], pick[:n_val], pick[n_val:n_val + n_te]


def _resolve_model(plan, cfg: RunConfig, adaptations: list) -> str:
    if cfg.model:
        return cfg.model
    adaptations.append({"field": "model.id", "plan": plan.model.id if plan.model else None, "used": "smollm2-135m",
                        "why": "no --model given: the built-in SmolLM2-135M-Instruct runs in place of the plan's "
                               "model (its weights are not on this machine)"})
    return "smollm2-135m"


def refuse_unsupported(plan, techniques: list) -> None:
    from harness.training.models import ModelError

    for t in techniques:
        if technique_spec(t).quantized:
            import importlib.util

            import torch

            missing = [w for w, ok in (("a CUDA GPU", torch.cuda.is_available()),
                                       ("the bitsandbytes package", importlib.util.find_spec("bitsandbytes")))
                       if not ok]
            if missing:
                raise ModelError(f"QLoRA (4-bit weights) needs {' and '.join(missing)}, which this machine lacks: "
                                 f"run the plan's LoRA here (--technique lora), or QLoRA on a CUDA machine")
        if t not in LM_TECHNIQUES:
            raise ModelError(f"a causal LM is adapted with {' or '.join(LM_TECHNIQUES)} here; the technique {t!r} "
                             f"is not one of them")


def _test(stats, base: np.ndarray, adapted: np.ndarray, alpha: float, name: str) -> dict:
    r = stats.compare_paired(base, adapted, alpha=alpha, alternative="two-sided")
    ci = [float(r.ci_low), float(r.ci_high)] if math.isfinite(r.ci_low) else None
    return {"name": name, "effect": float(np.mean(adapted - base)), "p_value": float(r.p_value), "ci": ci,
            "method": r.method, "n": int(len(base)), "result": r}


def execute_lm(plan, cfg: RunConfig, kb, progress=None) -> dict:
    """Run a causal-LM plan as ``cfg`` says; returns the run record (also written to run.json)."""
    import torch

    from harness.evaluation import stats
    from harness.reporting.progress import as_progress
    from harness.training import causal_lm as lm
    from harness.training.lm_data import encode, general_text, read_examples, replay_pool, training_items
    from harness.training.models import pick_device
    from knowledge.cache import cache_dir
    from rules.revise import revise

    progress = as_progress(progress)
    t_start = time.perf_counter()
    plan, cfg, overrides = prepare(plan, cfg, kb, refuse_unsupported)
    adaptations: list = []
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if not cfg.train:
        from harness.training.lm_data import FORMATS, LMDataError

        raise LMDataError(f"a causal-LM plan runs on your data: --train FILE (JSONL: {', '.join(FORMATS)}; or .txt)")
    examples = read_examples(cfg.train)  # the data is checked before the model is loaded (seconds to minutes)
    if cfg.validation and cfg.test:
        train_ex, val_ex, test_ex = examples, read_examples(cfg.validation), read_examples(cfg.test)
    else:
        train_ex, val_ex, test_ex = split_examples(examples, (plan.evaluation.validation_share,
                                                              plan.evaluation.test_share))
    model_spec = _resolve_model(plan, cfg, adaptations)
    name, base, tok = lm.load_lm(model_spec, cache_dir("models"))
    source = lm.model_folder(model_spec, cache_dir("models"))  # QLoRA loads it from there, quantized
    base.to(device)
    # validation and test are scored on the response tokens whatever the recipe trains on
    enc = {k: encode(v, tok, cfg.max_length, mask_prompt=True) for k, v in (("val", val_ex), ("test", test_ex))}
    pad = tok.pad_token_id
    hypers = plan_hypers(plan, cfg.techniques, 0, adaptations)
    shared = hypers[cfg.techniques[0]]  # the data-level settings (prompt_loss, packing, replay_ratio) are shared
    retention_paths = [p for p in (cfg.retention_data or plan.evaluation.retention_data or "").split(",") if p]
    replay = ([ex for p in retention_paths for ex in replay_pool(p)]
              if float(shared.get("replay_ratio") or 0) > 0 else [])
    for tech in cfg.techniques:  # the training data as each recipe makes it, checked before any training
        training_items(train_ex, tok, cfg.max_length, hypers[tech], replay, 0)
    alpha = plan.evaluation.alpha
    seeds = int(plan.evaluation.seeds)
    th = kb.threshold("lm_forgetting_min_nats")
    progress(f"{name}: {len(train_ex)} training, {len(enc['val'])} validation, {len(enc['test'])} test "
             f"examples; {', '.join(cfg.techniques)} x {seeds} seed(s) on {device}")

    # the base model, measured on itself before any adapter exists
    base_test = lm.item_losses(base, enc["test"], pad, device=device)
    retention = {}
    for p in retention_paths:
        items = encode(general_text(p), tok, cfg.max_length, mask_prompt=True)
        retention[Path(p).stem] = {"items": items, "base": lm.item_losses(base, items, pad, device=device)}
    kl_items = [{**it, "input_ids": it["input_ids"][:max(2, it["prompt_len"] or len(it["input_ids"]) // 2)]}
                for it in enc["test"]]
    kl_items = [{**it, "labels": [-100] * len(it["input_ids"])} for it in kl_items]
    refs = lm.short_reference_items(enc["test"], tok)
    refs = refs if len(refs) >= max(5, len(enc["test"]) // 2) else []  # exact match where the answers are short
    base_em = lm.exact_match(base, tok, enc["test"], refs, device=device) if refs else None
    sample_prompts = [ex.prompt or ex.response[:80] for ex in test_ex[:3]]
    samples = {"prompts": sample_prompts, "base": lm.generate(base, tok, sample_prompts, device=device)}

    results: dict = {}
    for tech in cfg.techniques:
        results[tech] = []
        train_technique = technique_spec(tech).implementation("causal_lm")
        for seed in range(seeds):
            train_items = training_items(train_ex, tok, cfg.max_length, hypers[tech], replay, seed)
            tr = train_technique(base, tech, train_items, enc["val"], hypers[tech], pad, seed, device, progress,
                          source=source)
            row = {"seed": seed, "test_losses": lm.item_losses(tr.model, enc["test"], pad, device=device).tolist(),
                   "kl": lm.kl_drift(base, tr.model, kl_items, pad, device=device).tolist(),
                   "exact_match": (lm.exact_match(tr.model, tok, enc["test"], refs, device=device).tolist()
                                   if refs else None),
                   "retention": {k: lm.item_losses(tr.model, v["items"], pad, device=device).tolist()
                                 for k, v in retention.items()},
                   "epochs_run": tr.epochs_run, "steps": tr.steps, "seconds": round(tr.seconds, 2),
                   "tokens_per_second": round(tr.tokens / max(tr.seconds, 1e-9), 1), "history": tr.history,
                   "trainable_parameters": tr.trainable, "peak_memory_gb": tr.peak_memory_gb}
            if seed == 0:
                samples[tech] = lm.generate(tr.model, tok, sample_prompts, device=device)
            results[tech].append(row)
            del tr

    tests = {}
    for tech, rows in results.items():
        mean_test = np.mean([r["test_losses"] for r in rows], axis=0)
        tests[f"negative_transfer.{tech}"] = _test(stats, base_test, mean_test, alpha, "target loss, adapted - base")
        if refs:
            mean_em = np.mean([r["exact_match"] for r in rows], axis=0)
            tests[f"exact_match.{tech}"] = _test(stats, base_em, mean_em, alpha, "exact match, adapted - base")
        for k, v in retention.items():
            mean_ret = np.mean([r["retention"][k] for r in rows], axis=0)
            tests[f"forgetting.{k}.{tech}"] = _test(stats, v["base"], mean_ret, alpha,
                                                   f"general-text loss ({k}), adapted - base")
    names = list(tests)
    corrected = dict(zip(names, stats.apply_holm([tests[n]["result"] for n in names], alpha))) if names else {}
    symptoms, below = [], []
    for n, t in tests.items():
        c = corrected[n]
        t["p_holm"], t["significant"] = float(c.p_value), bool(c.significant)
        del t["result"]
        tech = n.rsplit(".", 1)[-1]
        if n.startswith("exact_match.") and t["significant"] and t["effect"] < 0:
            if not any(s["id"] == "below_baseline" and s["evidence"]["technique"] == tech for s in symptoms):
                symptoms.append({"id": "below_baseline", "evidence": {
                    "test": n, "technique": tech, "exact_match_change": round(t["effect"], 4),
                    "p_holm": round(t["p_holm"], 5), "baseline": "the base model, not adapted"}})
            continue
        if not t["significant"] or t["effect"] <= 0 or n.startswith("exact_match."):
            continue
        if n.startswith("forgetting.") and t["effect"] < th:
            below.append(f"{n}: the general-text loss rose by {t['effect']:.4f} nats (significant, p (Holm) "
                         f"{t['p_holm']:.3g}) but less than the {th} nats the knowledge base counts as forgetting "
                         f"(lm_forgetting_min_nats)")
        elif n.startswith("forgetting.") and t["effect"] >= th:
            symptoms.append({"id": "general_language_loss", "evidence": {
                "test": n, "technique": tech, "loss_increase_nats": round(t["effect"], 4),
                "p_holm": round(t["p_holm"], 5), "threshold_nats": th}})
        elif n.startswith("negative_transfer."):
            symptoms.append({"id": "below_baseline", "evidence": {
                "test": n, "technique": tech, "loss_increase_nats": round(t["effect"], 4),
                "p_holm": round(t["p_holm"], 5), "baseline": "the base model, not adapted"}})
    tech = plan.technique_id if plan.technique_id in results else cfg.techniques[0]
    revised = revise(plan, {"symptoms": symptoms, "technique": tech, "hyperparameters": hypers.get(tech, {})}, kb)
    summary = {}
    for t, rows in results.items():
        mt = float(np.mean([np.mean(r["test_losses"]) for r in rows]))
        summary[t] = {"test_loss": round(mt, 4), "perplexity": round(math.exp(min(mt, 50)), 3),
                      "kl_drift": round(float(np.mean([np.mean(r["kl"]) for r in rows])), 5),
                      "tokens_per_second": round(float(np.median([r["tokens_per_second"] for r in rows])), 1),
                      "exact_match": (round(float(np.mean([np.mean(r["exact_match"]) for r in rows])), 4)
                                      if refs else None),
                      "seconds": round(float(sum(r["seconds"] for r in rows)), 1),
                      "trainable_parameters": rows[0]["trainable_parameters"],
                      "retention_loss": {k: round(float(np.mean([np.mean(r["retention"][k]) for r in rows])), 4)
                                         for k in retention}}
    base_summary = {"test_loss": round(float(np.mean(base_test)), 4),
                    "perplexity": round(math.exp(min(float(np.mean(base_test)), 50)), 3),
                    "exact_match": round(float(np.mean(base_em)), 4) if refs else None,
                    "exact_match_items": len(refs),
                    "retention_loss": {k: round(float(np.mean(v["base"])), 4) for k, v in retention.items()}}
    record = {
        "kind": "causal_lm", "plan": plan.to_dict(), "model": name, "device": device, "techniques": cfg.techniques,
        "seeds": seeds, "overrides": overrides, "adaptations": adaptations, "hyperparameters": hypers,
        "data": {"train": cfg.train, "examples": {"train": len(train_ex), **{k: len(v) for k, v in enc.items()}},
                 "prompt_masked": not shared.get("prompt_loss"), "packing": bool(shared.get("packing")),
                 "replay": {"ratio": float(shared.get("replay_ratio") or 0), "pool": len(replay)},
                 "max_length": cfg.max_length, "retention": retention_paths},
        "base": base_summary, "summary": summary, "results": results, "tests": tests, "symptoms": symptoms,
        "diagnoses": revised["diagnoses"], "samples": samples,
        "notes": below + ([] if retention else ["forgetting not measured: give --retention-data FILE (general text "
                                                ".txt, or instructions .jsonl) to test what the model keeps"]),
        "seconds": round(time.perf_counter() - t_start, 1), "versions": versions(),
    }
    write_json_atomic(out / "run.json", record)
    from harness.reporting.lm_report import render_lm_report
    from knowledge.writing import write_atomic

    write_atomic(out / "report.md", render_lm_report(record))
    record["out"] = str(out)
    return record
