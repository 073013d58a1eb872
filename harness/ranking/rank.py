"""Rank candidate pre-trained models on the user's own labeled data, without training them.

For each candidate (a catalog name, a local Hugging Face folder, or a checkpoint
folder this project or a Trainer saved) the texts are encoded once, every
layer in one pass, through the harness's embedding cache; the estimators of
``harness.ranking.transferability`` score the chosen layer representation; the
candidates are ranked per estimator and by their mean rank, with Kendall's W
saying how far the estimators agree.

Each candidate's result is kept on disk (keyed by model files, data and
settings), so a killed ranking resumes with the candidates it finished, and
``jobs``/``scheduler`` spread candidates over local processes or a Dask cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from harness.ranking.transferability import ESTIMATORS, aggregate_ranks, pareto_front, score_all
from knowledge.schema import KnowledgeError

LAYER_CHOICES = ("auto", "last", "mean", "best")


def resolve_layer(layer: str, technique: Optional[str]) -> tuple[str, str]:
    """The layer choice to score with, and why. ``auto`` follows the plan's technique: the features a
    feature-extraction head will be trained on are the last layer's, and on TweetEval sentiment (8
    candidates, BENCHMARKS.md) the last layer's scores ordered the candidates as that training did
    (aggregate Kendall's tau 0.64) where the mean of layers did not (0.00); for a technique that changes
    the encoder, the mean of layers (transformer-ranker's finding for fine-tuned accuracy; not measured here)."""
    if layer != "auto":
        return layer, "as asked"
    if technique == "feature_extraction":
        return "last", ("auto: the plan trains a head on the last layer's features (feature extraction), and the "
                        "last layer's scores ordered candidates as that training did (measured, BENCHMARKS.md)")
    return "mean", (f"auto: the plan's technique ({technique or 'unknown'}) changes the encoder; the mean of layers "
                    "follows fine-tuned accuracy best in published benchmarks (transformer-ranker; not measured here)")
RESULT_VERSION = 1


class RankError(KnowledgeError):
    """Bad input for a ranking (maps to one ``Error:`` line, exit status 2)."""


@dataclass
class CandidateSpec:
    """A candidate as given (``spec``), resolved to a local folder when possible."""

    spec: str
    name: str = ""
    path: str = ""
    kind: str = ""          # catalog | folder | checkpoint
    catalog_id: Optional[str] = None
    error: str = ""


def _checkpoint_folder(p: Path) -> Optional[Path]:
    """The model folder inside a run or Trainer output folder: newest checkpoint-N, or a
    sub-folder holding config.json (encoder/, model/, ...)."""
    ckpts = sorted((c for c in p.glob("checkpoint-*") if (c / "config.json").exists()),
                   key=lambda c: int(re.sub(r"\D", "", c.name) or 0))
    if ckpts:
        return ckpts[-1]
    subs = sorted(c for c in p.iterdir() if c.is_dir() and (c / "config.json").exists())
    return subs[0] if len(subs) == 1 else None


def resolve_candidate(spec: str, kb) -> CandidateSpec:
    """A CandidateSpec for one --candidates entry; ``error`` says why it cannot be loaded."""
    from harness.training.models import ModelError, resolve_model

    c = CandidateSpec(spec=spec, name=spec)
    p = Path(spec).expanduser()
    if p.is_dir() and not (p / "config.json").exists():
        inner = _checkpoint_folder(p)
        if inner is None:
            c.kind = "checkpoint"
            c.error = (f"{p}: no model weights inside (expected config.json, a checkpoint-N/ folder "
                       f"or one sub-folder with config.json)")
            return c
        c.name, c.path, c.kind = p.name if inner.parent == p and inner.name.startswith("checkpoint") \
            else f"{p.name}/{inner.name}", str(inner), "checkpoint"
        return c
    entry = kb.find_model(spec) if kb is not None and not p.exists() else None
    c.catalog_id = entry.id if entry else None
    c.kind = "catalog" if entry else "folder"
    try:
        c.name, c.path = resolve_model(spec, kb)
    except ModelError as exc:
        c.error = str(exc)
    if entry is not None:
        c.name = entry.id
    return c


def sample_data(data, max_examples: int, seed: int):
    """At most ``max_examples`` rows, stratified by label, in a fixed (seeded) order."""
    if len(data) <= max_examples:
        return data
    from harness.training.data import stratified_split

    kept, _ = stratified_split(data, 1 - max_examples / len(data), seed=seed)
    return kept


def class_warnings(labels: Sequence[str], min_per_class: int) -> list[str]:
    """Warnings for classes too small for the estimators; raises RankError for a single class."""
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    if len(counts) < 2:
        only = next(iter(counts), "none")
        raise RankError(f"the data holds a single class ({only!r}); ranking needs at least two labeled classes.")
    small = {c: n for c, n in sorted(counts.items()) if n < min_per_class}
    if not small:
        return []
    listed = ", ".join(f"{c!r} ({n})" for c, n in small.items())
    return [f"{len(small)} class(es) have fewer than {min_per_class} examples: {listed}; "
            f"kNN, the linear probe and H-score are unreliable for them (the cross-validated "
            f"probe needs 2 per class)."]


# --- one candidate


def _fingerprint(path: str) -> str:
    from harness.training.embed import _model_fingerprint

    return _model_fingerprint(path)


def result_file(key: str) -> Optional[Path]:
    """Where a candidate's scores are kept (``knowledge.cache``), None when the cache is not usable."""
    from knowledge.cache import entry

    return entry("rank", f"{key}.json")


def result_key(path: str, data_key: str, settings: dict) -> str:
    blob = json.dumps([RESULT_VERSION, _fingerprint(path), data_key, settings], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def layer_features(H: np.ndarray, choice: str) -> np.ndarray:
    """Features for one layer choice from all hidden states H (n_layers + 1, n, d).

    last: the top layer; mean: the mean over the transformer layers (1..L; the embedding
    layer 0 is left out)."""
    if choice == "last":
        return H[-1]
    if choice == "mean":
        return H[1:].mean(0) if H.shape[0] > 1 else H[0]
    raise ValueError(choice)


def score_layers(H: np.ndarray, y: np.ndarray, layer: str, estimators: Sequence[str], *, seed: int,
                 k: int, folds: int) -> tuple[dict, dict, dict]:
    """({estimator: score}, {estimator: error}, {estimator: per-layer scores}) for a layer choice.

    ``best``: each estimator's best layer among 1..L (per-layer scores returned too)."""
    if layer in ("last", "mean"):
        s, e = score_all(layer_features(H, layer), y, estimators, seed=seed, k=k, folds=folds)
        return s, e, {}
    per: dict[str, list] = {name: [] for name in estimators}
    errors: dict = {}
    for li in range(1, H.shape[0]) if H.shape[0] > 1 else [0]:
        s, e = score_all(H[li], y, estimators, seed=seed, k=k, folds=folds)
        for name in estimators:
            per[name].append(s.get(name, float("nan")))
        errors.update(e)
    scores = {n: float(np.nanmax(v)) for n, v in per.items() if v and not np.all(np.isnan(v))}
    best_layer = {n: int(np.nanargmax(v)) + 1 for n, v in per.items() if n in scores}
    return scores, {n: m for n, m in errors.items() if n not in scores}, {"scores": per, "best": best_layer}


def base_row(cand: dict, status: str = "ok", error: str = "") -> dict:
    """A candidate's table row before (or without) scoring."""
    return {"candidate": cand["spec"], "model": cand["name"], "kind": cand["kind"],
            "catalog_id": cand.get("catalog_id"), "path": cand["path"], "status": status, "error": error,
            "scores": {}, "estimator_errors": {}, "params": None, "layers": None,
            "latency_ms": None, "seconds": 0.0, "embed_cached": False, "resumed": False}


def score_candidate(cand: dict, texts: list[str], y: list[int], data_key: str, settings: dict,
                    use_cache: bool = True) -> dict:
    """Encode the texts with one candidate and score it; a row for the table.

    Never raises for a candidate that cannot be loaded: the row says why (status 'error')."""
    row = base_row(cand)
    if cand.get("error"):
        return {**row, "status": "error", "error": cand["error"]}
    t0 = time.perf_counter()
    try:
        key = result_key(cand["path"], data_key, settings)
    except OSError as exc:
        return {**row, "status": "error", "error": f"{cand['path']}: unreadable ({exc})"}
    from knowledge.cache import read_entry, write_entry

    f = result_file(key) if use_cache else None
    blob = read_entry(f) if f is not None else None
    if blob is not None:
        try:
            done = json.loads(blob)
            return {**row, **{k: done[k] for k in done if k in row}, "candidate": cand["spec"],
                    "model": cand["name"], "resumed": True}
        except (OSError, ValueError, KeyError):
            pass  # a damaged result is recomputed
    import torch

    from harness.training.embed import cached_encode, encode
    from harness.training.models import ModelError, load_encoder

    threads = settings.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    try:
        tok, model = load_encoder(cand["path"], settings.get("device", "cpu"))
    except ModelError as exc:
        return {**row, "status": "error", "error": str(exc)}
    except Exception as exc:  # a broken folder: weights that do not fit their config, bad files
        return {**row, "status": "error",
                "error": f"{cand['path']}: could not load the model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})"}
    row["params"] = int(sum(p.numel() for p in model.parameters()))
    row["layers"] = int(model.config.num_hidden_layers)
    probe = texts[:32]
    encode(model, tok, probe[:4], max_length=settings["max_length"], device=settings.get("device", "cpu"))
    t1 = time.perf_counter()
    encode(model, tok, probe, max_length=settings["max_length"], device=settings.get("device", "cpu"))
    row["latency_ms"] = round((time.perf_counter() - t1) / len(probe) * 1000, 3)
    H, hit = cached_encode(cand["path"], model, tok, texts, data_key=data_key,
                           max_length=settings["max_length"], device=settings.get("device", "cpu"),
                           use_cache=use_cache, all_layers=True)
    del model
    row["embed_cached"] = hit
    yarr = np.asarray(y)
    scores, errors, per_layer = score_layers(H, yarr, settings["layer"], settings["estimators"],
                                             seed=settings["seed"], k=settings["k"], folds=settings["folds"])
    row["scores"], row["estimator_errors"] = scores, errors
    if per_layer:
        row["per_layer"] = per_layer
    if not scores:
        row["status"] = "error"
        row["error"] = "; ".join(f"{k}: {v}" for k, v in errors.items())
    row["seconds"] = round(time.perf_counter() - t0, 3)
    if f is not None and row["status"] == "ok":
        with contextlib.suppress(OSError):
            write_entry(f, json.dumps(row, default=float).encode())
    return row


# --- a wall-time budget


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


# --- many candidates


def run_candidates(cands: list[dict], texts, y, data_key, settings, *, jobs: int = 1,
                   scheduler: Optional[str] = None, use_cache: bool = True, on_row=None) -> list[dict]:
    """Rows in candidate order, in process, on local processes (``jobs``) or a Dask cluster."""
    rows: list = [None] * len(cands)
    if scheduler is None and jobs <= 1:
        for i, c in enumerate(cands):
            rows[i] = score_candidate(c, texts, y, data_key, settings, use_cache)
            if on_row:
                on_row(rows[i])
        return rows
    from joblib import Parallel, delayed, parallel_config

    client = None
    if scheduler is not None:
        from dask.distributed import Client

        from harness.scaleout.batch import scheduler_timeout

        client = Client(scheduler, timeout=scheduler_timeout())
        ctx = parallel_config(backend="dask")
    else:
        ctx = parallel_config(backend="loky", n_jobs=jobs)
        settings = {**settings, "threads": max(1, (os.cpu_count() or 1) // jobs)}
    try:
        with ctx:
            par = Parallel(n_jobs=jobs if scheduler is None else -1, return_as="generator")
            for i, row in enumerate(par(delayed(score_candidate)(c, texts, y, data_key, settings, use_cache)
                                        for c in cands)):
                rows[i] = row
                if on_row:
                    on_row(row)
    finally:
        if client is not None:
            client.close()
    return rows


def summarize(rows: list[dict], estimators: Sequence[str]) -> dict:
    """Per-estimator ranks, the aggregate (mean rank), Kendall's W and pairwise tau, Pareto fronts.

    Only candidates scored by every usable estimator enter the aggregate; an estimator that
    failed on every candidate is left out and named."""
    ok = [r for r in rows if r["status"] == "ok"]
    usable = [e for e in estimators if ok and all(e in r["scores"] for r in ok)]
    dropped = [e for e in estimators if e not in usable]
    for r in rows:
        r["rank"] = None
        r["ranks"] = {}
        r["mean_rank"] = None
        r["pareto_params"] = r["pareto_latency"] = False
    agreement = {"estimators": usable, "dropped_estimators": dropped, "kendall_w": None,
                 "mean_pairwise_tau": None, "n_candidates": len(ok)}
    if not ok or not usable:
        return agreement
    from harness.ranking.transferability import rankdata_desc

    score_mat = {e: np.array([r["scores"][e] for r in ok]) for e in usable}
    mean_rank, w, tau = aggregate_ranks(score_mat)
    for e in usable:
        for r, rk in zip(ok, rankdata_desc(score_mat[e])):
            r["ranks"][e] = float(rk)
    tiebreak = score_mat[usable[0]]
    order = sorted(range(len(ok)), key=lambda i: (mean_rank[i], -tiebreak[i]))
    for pos, i in enumerate(order, 1):
        ok[i]["rank"] = pos
        ok[i]["mean_rank"] = round(float(mean_rank[i]), 3)
    neg = -mean_rank
    for cost in ("params", "latency_ms"):
        have = [i for i, r in enumerate(ok) if r.get(cost) is not None]
        if have:
            front = pareto_front(neg[have], [ok[i][cost] for i in have])
            for i, on in zip(have, front):
                ok[i]["pareto_" + ("params" if cost == "params" else "latency")] = bool(on)
    agreement.update(kendall_w=None if math.isnan(w) else round(w, 4),
                     mean_pairwise_tau=None if tau is None else round(tau, 4))
    return agreement


def rank_models(candidates: Sequence[str], data, kb, *, layer: str = "auto", technique: Optional[str] = None,
                estimators: Sequence[str] = ESTIMATORS, max_examples: int = 2000, seed: int = 0,
                k: int = 5, folds: int = 5, max_length: int = 128, device: str = "cpu", jobs: int = 1,
                scheduler: Optional[str] = None, use_cache: bool = True, rejected: Optional[dict] = None,
                min_per_class: int = 5, on_row=None, budget_s: Optional[float] = None) -> dict:
    """Score ``candidates`` on ``data`` (a harness.training.data.TextData); the ranking as a dict.

    ``rejected``: {catalog id: [reasons]} from the plan, marked on the rows, never dropped.
    ``budget_s``: a wall-time budget (see ``plan_budget``): fewer examples where the
    estimate calls for it, and candidates that would overrun it are skipped, each saying why.
    ``technique``: the plan's, for ``layer="auto"`` (see ``resolve_layer``)."""
    if layer not in LAYER_CHOICES:
        raise RankError(f"The 'layer' option must be one of {', '.join(LAYER_CHOICES)}. Got {layer!r} instead.")
    layer, layer_why = resolve_layer(layer, technique)
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or not estimators:
        raise RankError(f"The 'estimators' option must name some of {', '.join(ESTIMATORS)}. "
                        f"Got {', '.join(unknown) or 'none'} instead.")
    specs = list(dict.fromkeys(s.strip() for s in candidates if s.strip()))
    if not specs:
        raise RankError("no candidates given: pass --candidates NAME_OR_FOLDER,... (catalog names, "
                        "local Hugging Face folders or checkpoint folders).")
    warnings = class_warnings(data.labels, min_per_class)
    cands = [resolve_candidate(s, kb).__dict__ for s in specs]
    budget = None
    if budget_s is not None:
        if rejected:  # under a budget, what the scenario rejects is scored last
            cands.sort(key=lambda c: bool(rejected.get(c.get("catalog_id") or "")))
        budget = plan_budget(cands, len(data), len(set(data.labels)), min(max_examples, len(data)), budget_s,
                             kb, device, lanes=1 if scheduler else jobs)
        max_examples = budget["examples"]
    data = sample_data(data, max_examples, seed)
    warnings = class_warnings(data.labels, min_per_class) if len(data) < max_examples else warnings
    data_key = data.fingerprint()
    settings = {"layer": layer, "estimators": list(estimators), "seed": seed, "k": k, "folds": folds,
                "max_length": max_length, "device": device}
    t0 = time.perf_counter()
    if budget is None:
        rows = run_candidates(cands, data.texts, data.y, data_key, settings, jobs=jobs, scheduler=scheduler,
                              use_cache=use_cache, on_row=on_row)
    else:
        rows = run_within_budget(cands, data.texts, data.y, data_key, settings, budget, jobs=jobs,
                                 scheduler=scheduler, use_cache=use_cache, on_row=on_row)
    wall = time.perf_counter() - t0
    for r in rows:
        r["rejected"] = list((rejected or {}).get(r.get("catalog_id") or "", []))
        if r["status"] in ("error", "skipped"):
            warnings.append(f"{r['candidate']}: not scored ({r['error']})")
        for e, msg in r.get("estimator_errors", {}).items():
            warnings.append(f"{r['candidate']}: {e} not computed ({msg})")
    agreement = summarize(rows, list(estimators))
    if agreement["dropped_estimators"] and agreement["n_candidates"]:
        warnings.append(f"left out of the aggregate (not computed for every candidate): "
                        f"{', '.join(agreement['dropped_estimators'])}")
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0))
    return {"data": {"origin": data.origin, "examples": len(data), "classes": list(data.classes),
                     "fingerprint": data_key},
            "settings": {**settings, "layer_why": layer_why}, "agreement": agreement, "rows": rows, "warnings": warnings,
            "wall_seconds": round(wall, 3),
            **({"budget": {**budget, "spent_seconds": round(wall, 1),
                           "skipped": [r["candidate"] for r in rows if r["status"] == "skipped"]}}
               if budget is not None else {})}


# --- output


TABLE_COLUMNS = ["rank", "model", "mean_rank", "logme", "hscore", "knn", "linear_probe", "params",
                 "latency_ms", "pareto", "status", "note"]


def table_rows(result: dict) -> list[dict]:
    """Flat rows (one per candidate) for text/CSV output."""
    out = []
    for r in result["rows"]:
        pareto = "+".join(n for n, on in (("size", r.get("pareto_params")), ("latency", r.get("pareto_latency")))
                          if on)
        notes = []
        if r.get("rejected"):
            notes.append("rejected by the plan: " + "; ".join(r["rejected"]))
        if r["status"] in ("error", "skipped"):
            notes.append("not scored: " + r["error"])
        elif r.get("estimator_errors"):
            notes.append("; ".join(f"{e} not computed" for e in r["estimator_errors"]))
        note = "; ".join(notes)
        out.append({"rank": r.get("rank"), "model": r["model"], "mean_rank": r.get("mean_rank"),
                    **{e: (round(r["scores"][e], 4) if e in r["scores"] else None)
                       for e in ("logme", "hscore", "knn", "linear_probe")},
                    "params": r.get("params"), "latency_ms": r.get("latency_ms"), "pareto": pareto,
                    "status": r["status"], "note": note})
    return out


def plot_ranking(result: dict, path: str | Path) -> None:
    """Aggregate rank vs parameters and vs latency, Pareto front marked; PNG/SVG/PDF by suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in result["rows"] if r["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, cost, flag, label in ((axes[0], "params", "pareto_params", "parameters"),
                                  (axes[1], "latency_ms", "pareto_latency", "latency (ms per text, measured)")):
        pts = [r for r in ok if r.get(cost) is not None]
        for r in pts:
            marker = "x" if r.get("rejected") else "o"
            color = "tab:red" if r.get(flag) else "tab:gray"
            ax.scatter(r[cost], r["mean_rank"], marker=marker, c=color, s=50, zorder=3)
            ax.annotate(r["model"], (r[cost], r["mean_rank"]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
        front = sorted((r for r in pts if r.get(flag)), key=lambda r: r[cost])
        if len(front) > 1:
            ax.step([r[cost] for r in front], [r["mean_rank"] for r in front], where="post",
                    c="tab:red", lw=1, label="Pareto front")
            ax.legend(fontsize=8)
        if cost == "params" and pts and min(r[cost] for r in pts) > 0:
            ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel(label)
        ax.set_ylabel("mean rank over estimators (1 = best)")
        ax.grid(alpha=0.3)
    a = result["agreement"]
    w = f"Kendall's W = {a['kendall_w']:.2f}" if a.get("kendall_w") is not None else "W n/a"
    fig.suptitle(f"Transferability on {Path(result['data']['origin']).name} "
                 f"({result['data']['examples']} examples, layers: {result['settings']['layer']}; {w})",
                 fontsize=9)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
