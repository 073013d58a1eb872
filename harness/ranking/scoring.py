"""Scoring candidates: one candidate's texts encoded once (every layer), its layer representation
scored by the transferability estimators, and the result kept on disk keyed by model files, data and
settings (so a killed ranking resumes); many candidates spread over local processes or a Dask cluster."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from harness.ranking.transferability import score_all


RESULT_VERSION = 1


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


def _cached_result(blob: bytes) -> Optional[dict]:
    """A finished candidate's row as the cache holds it, or None when the entry is not one: a result is an
    object with status 'ok' and a non-empty mapping of estimator scores (numbers)."""
    try:
        done = json.loads(blob)
    except ValueError:
        return None
    ok = (isinstance(done, dict) and done.get("status") == "ok" and isinstance(done.get("scores"), dict)
          and done["scores"] and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                     for v in done["scores"].values()))
    return done if ok else None


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
    done = _cached_result(blob) if blob is not None else None
    if done is not None:  # anything else in the entry (damaged, not a result) is recomputed
        return {**row, **{k: done[k] for k in done if k in row}, "candidate": cand["spec"],
                "model": cand["name"], "resumed": True}
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


def run_candidates(cands: list[dict], texts, y, data_key, settings, *, jobs: int = 1,
                   scheduler: Optional[str] = None, use_cache: bool = True, on_row=None) -> list[dict]:
    """Rows in candidate order, in process, on local processes (``jobs``) or a Dask cluster."""
    from harness.scaleout.fanout import fan_out

    if scheduler is None and jobs > 1:  # the cores shared among the local workers
        settings = {**settings, "threads": max(1, (os.cpu_count() or 1) // jobs)}
    return fan_out(score_candidate, [(c, texts, y, data_key, settings, use_cache) for c in cands], jobs=jobs,
                   scheduler=scheduler, on_result=(lambda i, row: on_row(row)) if on_row else None)


