"""Symptoms read off training curves: pure functions on arrays.

Each detector takes the series of one run (``steps``/``values`` arrays of
shape (n_points,)) and the thresholds of the knowledge base, and returns
``None`` or a symptom ``{"id", "evidence"}`` whose evidence carries the
numbers behind it (metric, values, epochs or steps).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np


def _clean(steps, values):
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    return s, v


def _r(x, nd=4):
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def divergence(steps, loss, th: dict) -> list[dict]:
    """NaN/inf in the loss; a loss that ends far above where it began; sharp spikes."""
    s, v = _clean(steps, loss)
    if len(v) == 0:
        return []
    out = []
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.argmax(bad))
        out.append({"id": "loss_nan", "evidence": {"metric": "train_loss", "first_nonfinite_step": float(s[i]),
                                                   "last_finite": _r(v[:i][np.isfinite(v[:i])][-1])
                                                   if np.isfinite(v[:i]).any() else None}})
        return out
    k = max(1, len(v) // 10)
    start, end = float(np.median(v[:k])), float(np.median(v[-k:]))
    if len(v) >= 3 and end > start * th["divergence_loss_ratio"]:
        out.append({"id": "loss_exploding", "evidence": {
            "metric": "train_loss", "start": _r(start), "end": _r(end), "ratio": _r(end / start, 3),
            "threshold_ratio": th["divergence_loss_ratio"]}})
    if len(v) >= 8:
        window = 5
        spikes = []
        for i in range(window, len(v)):
            med = float(np.median(v[i - window:i]))
            if med > 0 and v[i] > th["spike_factor"] * med:
                spikes.append(float(s[i]))
        if spikes:
            out.append({"id": "loss_spikes", "evidence": {"metric": "train_loss", "steps": spikes[:10],
                                                          "count": len(spikes), "factor": th["spike_factor"]}})
    return out


def overfitting(train_steps, train_loss, val_steps, val_loss, th: dict) -> Optional[dict]:
    """Validation loss rising after its minimum while training loss keeps falling."""
    vs, vl = _clean(val_steps, val_loss)
    ok = np.isfinite(vl)
    vs, vl = vs[ok], vl[ok]
    if len(vl) < 3:
        return None
    best = int(np.argmin(vl))
    if best == len(vl) - 1:
        return None
    rise = (vl[-1] - vl[best]) / max(abs(vl[best]), 1e-12)
    ts, tl = _clean(train_steps, train_loss)
    okt = np.isfinite(tl)
    ts, tl = ts[okt], tl[okt]
    after = tl[ts >= vs[best]]
    falling = len(after) >= 2 and after[-1] < after[0]
    if rise < th["overfit_val_rise"] or not falling:
        return None
    at_best = tl[ts <= vs[best]]
    return {"id": "val_loss_rising", "evidence": {
        "metric": "val_loss", "best_at": float(vs[best]), "best": _r(vl[best]), "last": _r(vl[-1]),
        "rise": _r(rise, 3), "train_loss_at_best": _r(at_best[-1]) if len(at_best) else None,
        "train_loss_last": _r(tl[-1]),
        "gap_at_best": _r(vl[best] - at_best[-1]) if len(at_best) else None}}


def underfitting(train_loss, val_loss, n_classes: Optional[int], th: dict) -> list[dict]:
    """Both losses high and flat; or a training loss stuck near ln(number of classes)."""
    tl = np.asarray(train_loss, dtype=float)
    tl = tl[np.isfinite(tl)]
    if len(tl) < 3:
        return []
    out = []
    k = max(1, len(tl) // 10)
    start, end = float(np.median(tl[:k])), float(np.median(tl[-k:]))
    flat = end > start * th["underfit_flat_ratio"]
    chance = math.log(n_classes) if n_classes and n_classes > 1 else None
    vl = np.asarray(val_loss, dtype=float)
    vl = vl[np.isfinite(vl)]
    if chance is not None and abs(end - chance) <= th["chance_loss_tolerance"] * chance:
        out.append({"id": "loss_at_chance", "evidence": {"metric": "train_loss", "end": _r(end),
                                                         "ln_classes": _r(chance), "classes": n_classes}})
    elif flat and (chance is None or end > th["underfit_min_loss_share"] * chance):
        ev = {"metric": "train_loss", "start": _r(start), "end": _r(end), "ratio": _r(end / start, 3)}
        if len(vl):
            ev["val_loss_end"] = _r(vl[-1])
        out.append({"id": "high_train_loss", "evidence": ev})
    return out


def failed_run(final_accuracy: Optional[float], majority_rate: Optional[float]) -> Optional[dict]:
    """Final accuracy at or below the majority-class rate (Mosbach et al. 2021)."""
    if final_accuracy is None or majority_rate is None:
        return None
    if final_accuracy <= majority_rate + 1e-9:
        return {"id": "majority_class_collapse", "evidence": {"metric": "accuracy", "final": _r(final_accuracy),
                                                              "majority_rate": _r(majority_rate)}}
    return None


def forgetting(source_steps, source_metric, target_metric, th: dict) -> Optional[dict]:
    """A source-task metric falling while the target metric rises."""
    sm = np.asarray(source_metric, dtype=float)
    tm = np.asarray(target_metric, dtype=float)
    sm, tm = sm[np.isfinite(sm)], tm[np.isfinite(tm)]
    if len(sm) < 2:
        return None
    drop = float(sm[0] - sm[-1])
    rising = len(tm) < 2 or tm[-1] >= tm[0]
    if drop >= th["forgetting_min_drop"] and rising:
        return {"id": "source_accuracy_drop", "evidence": {
            "metric": "source_metric", "first": _r(sm[0]), "last": _r(sm[-1]), "drop": _r(drop),
            "target_first": _r(tm[0]) if len(tm) else None, "target_last": _r(tm[-1]) if len(tm) else None}}
    return None


def seed_variance(finals: list[float], th: dict) -> Optional[dict]:
    """Final target metric varies a lot between seeds."""
    v = np.asarray([x for x in finals if x is not None and math.isfinite(x)], dtype=float)
    if len(v) < 2:
        return None
    sd = float(np.std(v, ddof=1))
    if sd >= th["seed_std_max"]:
        return {"id": "high_seed_variance", "evidence": {"metric": "target", "finals": [_r(x) for x in v],
                                                         "std": _r(sd), "threshold": th["seed_std_max"]}}
    return None
