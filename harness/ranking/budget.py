"""A wall-time budget for a ranking: each candidate's scoring time estimated from its size and the
measured scoring rate, the examples cut to fit, candidates that would not fit skipped with the reason."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from harness.ranking.scoring import base_row, result_file, result_key, run_candidates, score_candidate


def compute_size(path: str, params: Optional[int] = None) -> Optional[float]:
    """A transformer encoder's compute per token, in weights touched: layers x (4 H^2 + 2 H I)
    from its config.json (the embedding table is a lookup, not compute); ``params`` when the
    folder has no readable config."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text())
        h = int(cfg.get("hidden_size") or cfg.get("dim") or cfg.get("d_model"))
        layers = int(cfg.get("num_hidden_layers") or cfg.get("n_layers") or cfg.get("num_layers"))
        inner = int(cfg.get("intermediate_size") or cfg.get("hidden_dim") or cfg.get("d_ff") or 4 * h)
        return float(layers * (4 * h * h + 2 * h * inner))
    except (OSError, ValueError, TypeError):
        return float(params) if params else None


def _scoring_rate(kb, compute: str):
    """The measured 'ranking' throughput for this compute, else the CPU one (an over-estimate)."""
    rates = [t for t in kb.sections["throughput"].values() if t.technique == "ranking"]
    for t in rates:
        if t.compute.value == compute:
            return t, ""
    for t in rates:
        if t.compute.value == "cpu":
            return t, f"no scoring rate is measured for {compute}: the CPU rate is used (an over-estimate)"
    return None, "no scoring rate is measured in the knowledge base"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plan_budget(cands: list[dict], n_data: int, n_classes: int, n_max: int, budget_s: float, kb, device: str,
                *, lanes: int = 1) -> dict:
    """How many examples fit a wall-time budget, from the knowledge base's measured scoring rate.

    A candidate costs ``rank_candidate_overhead_s`` (loading, the estimators' fixed part) plus
    its examples at the measured rate, scaled by its compute per token against the model
    measured. The examples are cut to what lets every candidate fit in ``rank_budget_share`` of
    the budget (``lanes`` candidates at a time), never below ``rank_budget_min_examples_per_class``
    per class; the candidates that still do not fit are skipped while scoring."""
    from harness.training.models import ModelError, resolve_model

    rate, note = _scoring_rate(kb, "cuda" if str(device).startswith("cuda") else "cpu")
    overhead = float(kb.threshold("rank_candidate_overhead_s"))
    share = float(kb.threshold("rank_budget_share"))
    n_min = min(n_data, n_max, n_classes * int(kb.threshold("rank_budget_min_examples_per_class")))
    ref_size = None
    if rate is not None:
        try:
            ref_size = compute_size(resolve_model(rate.model, kb)[1], kb.models[rate.model].params)
        except ModelError:
            ref_size = float(kb.models[rate.model].params)
    per_example = []  # seconds per example, per candidate (None: not loadable, costs nothing)
    for c in cands:
        if c.get("error") or rate is None:
            per_example.append(None if c.get("error") else 0.0)
            continue
        entry = kb.models.get(c["catalog_id"]) if c.get("catalog_id") else None
        size = compute_size(c["path"], entry.params if entry else None) or ref_size
        c["budget_scale"] = size / ref_size
        per_example.append(size / ref_size / rate.examples_per_second)
    live = [s for s in per_example if s is not None]
    usable = budget_s * share * max(1, min(lanes, len(live) or 1))
    n = n_max
    if live and sum(live) > 0:
        n = int((usable - overhead * len(live)) / sum(live))
    n = max(n_min, min(n_max, n))
    for c, s in zip(cands, per_example):
        c["budget_estimate_s"] = None if s is None else round(overhead + n * s, 2)
    est = sum(c["budget_estimate_s"] or 0 for c in cands)
    basis = ([f"throughput:{rate.id}"] if rate is not None else []) + [
        "thresholds:rank_candidate_overhead_s", "thresholds:rank_budget_share",
        "thresholds:rank_budget_min_examples_per_class"]
    text = (f"{_duration(budget_s)} budget: {n:,} examples per candidate"
            + (f" (of {n_max:,})" if n < n_max else "")
            + f", estimated {_duration(est / max(1, min(lanes, len(live) or 1)))} for {len(live)} candidate(s)"
            + (f" at {rate.examples_per_second:g} examples/s measured on {rate.model} ({rate.measured})"
               if rate is not None else "")
            + (f"; {note}" if note else ""))
    return {"seconds": float(budget_s), "examples": n, "examples_without_budget": n_max,
            "estimated_seconds": round(est, 1), "lanes": lanes, "text": text, "knowledge": basis}


def run_within_budget(cands: list[dict], texts, y, data_key, settings, budget: dict, *, jobs: int = 1,
                      scheduler: Optional[str] = None, use_cache: bool = True, on_row=None) -> list[dict]:
    """Rows in candidate order, each candidate scored only if it fits what is left of the budget.

    One at a time, the estimates are corrected by how far the finished candidates' real times
    were from theirs; on several processes or a cluster, the candidates whose estimates do not
    fit are skipped before scoring starts."""
    total = budget["seconds"]
    rows: list = [None] * len(cands)

    def skipped(c, est, left):
        return base_row(c, "skipped", f"the {_duration(total)} budget would run out (estimated {_duration(est)}, "
                                      f"{_duration(max(0.0, left))} left)")

    def cached(c) -> bool:
        try:
            f = use_cache and not c.get("error") and result_file(result_key(c["path"], data_key, settings))
            return bool(f) and f.exists()
        except OSError:
            return False

    if scheduler is not None or jobs > 1:
        lanes = [0.0] * (1 if scheduler is not None else jobs)
        keep = []
        for i, c in enumerate(cands):
            est = 0.0 if cached(c) else (c.get("budget_estimate_s") or 0.0)
            lane = min(range(len(lanes)), key=lanes.__getitem__)
            if lanes[lane] + est > total and not c.get("error"):
                rows[i] = skipped(c, est, total - lanes[lane])
            else:
                lanes[lane] += est
                keep.append(i)
        done = run_candidates([cands[i] for i in keep], texts, y, data_key, settings, jobs=jobs,
                              scheduler=scheduler, use_cache=use_cache, on_row=on_row)
        for i, r in zip(keep, done):
            rows[i] = r
        return rows
    t0 = time.perf_counter()
    import torch  # noqa: F401  (imported once here, so the first candidate's time is its own)

    import harness.training.embed  # noqa: F401
    import harness.training.models  # noqa: F401

    ratios: list[float] = []
    for i, c in enumerate(cands):
        est = 0.0 if cached(c) else (c.get("budget_estimate_s") or 0.0)
        est *= float(np.median(ratios)) if ratios else 1.0
        left = total - (time.perf_counter() - t0)
        if est > left and not c.get("error"):
            rows[i] = skipped(c, est, left)
        else:
            t1 = time.perf_counter()
            rows[i] = score_candidate(c, texts, y, data_key, settings, use_cache)
            if rows[i]["status"] == "ok" and not rows[i]["resumed"] and c.get("budget_estimate_s"):
                ratios.append((time.perf_counter() - t1) / c["budget_estimate_s"])
        if on_row:
            on_row(rows[i])
    return rows


