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

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from harness.ranking.budget import plan_budget, run_within_budget
from harness.ranking.scoring import run_candidates
from harness.ranking.transferability import ESTIMATORS, aggregate_ranks, pareto_front
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
    from harness.training.registry import REGISTRY

    if technique in REGISTRY and REGISTRY[technique].head_only:
        return "last", ("auto: the plan trains a head on the last layer's features (feature extraction), and the "
                        "last layer's scores ordered candidates as that training did (measured, BENCHMARKS.md)")
    return "mean", (f"auto: the plan's technique ({technique or 'unknown'}) changes the encoder; the mean of layers "
                    "follows fine-tuned accuracy best in published benchmarks (transformer-ranker; not measured here)")


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


