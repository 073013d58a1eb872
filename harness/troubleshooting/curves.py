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


def grad_norm_nonfinite(steps, grad_norm, th: dict) -> Optional[dict]:
    """The gradient norm NaN/inf at every logged step from some point to the end (at least
    ``constant_metric_min_evals`` of them): the weights are gone, whatever the loss column says
    (Trainer then logs a loss of 0.0). An isolated NaN is a step the mixed-precision scaler skipped."""
    s, v = _clean(steps, grad_norm)
    if len(v) == 0 or np.isfinite(v[-1]):
        return None
    ok = np.isfinite(v)
    start = int(np.flatnonzero(ok)[-1]) + 1 if ok.any() else 0
    n = len(v) - start
    if n < th["constant_metric_min_evals"]:
        return None
    return {"id": "loss_nan", "evidence": {"metric": "grad_norm", "first_nonfinite_step": float(s[start]),
                                           "nonfinite_to_the_end": n, "of_logged": int(len(v))}}


def above_chance(steps, loss, n_classes: Optional[int], th: dict) -> Optional[dict]:
    """A loss that peaked above ``chance_loss_blowup_factor`` x ln(classes) and ends above ln(classes)."""
    if not n_classes or n_classes < 2:
        return None
    s, v = _clean(steps, loss)
    ok = np.isfinite(v)
    s, v = s[ok], v[ok]
    if len(v) < 3:
        return None
    chance = math.log(n_classes)
    k = max(1, len(v) // 10)
    end = float(np.median(v[-k:]))
    peak = int(np.argmax(v))
    if v[peak] > th["chance_loss_blowup_factor"] * chance and end > chance:
        return {"id": "loss_above_chance", "evidence": {
            "metric": "train_loss", "peak": _r(float(v[peak])), "peak_at": float(s[peak]), "end": _r(end),
            "ln_classes": _r(chance), "classes": n_classes, "factor": th["chance_loss_blowup_factor"]}}
    return None


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


def chance_classes(loss, th: dict) -> Optional[int]:
    """The class count k (2 .. ``chance_classes_max_inferred``) whose uniform-guess loss ln(k) a
    flat training loss sits at, within ``chance_loss_tolerance_inferred``; None if none does.

    For logs that do not say how many classes there are: only a loss that never moved and
    sits close to ln(k) of a small k is read as a uniform guess."""
    tl = np.asarray(loss, dtype=float)
    tl = tl[np.isfinite(tl)]
    if len(tl) < 3:
        return None
    k = max(1, len(tl) // 10)
    start, end = float(np.median(tl[:k])), float(np.median(tl[-k:]))
    tail = tl[len(tl) // 2:]
    if end < start * th["underfit_flat_ratio"]:
        return None
    for n in range(2, int(th["chance_classes_max_inferred"]) + 1):
        c = math.log(n)
        tol = th["chance_loss_tolerance_inferred"] * c
        if abs(end - c) <= tol and abs(float(np.median(tail)) - c) <= tol:
            return n
    return None


def underfitting(train_loss, val_loss, n_classes: Optional[int], th: dict) -> list[dict]:
    """Both losses high and flat; or a training loss stuck near ln(number of classes) (the class
    count given, or inferred by ``chance_classes`` when no log or flag names it)."""
    tl = np.asarray(train_loss, dtype=float)
    tl = tl[np.isfinite(tl)]
    if len(tl) < 3:
        return []
    out = []
    k = max(1, len(tl) // 10)
    start, end = float(np.median(tl[:k])), float(np.median(tl[-k:]))
    flat = end > start * th["underfit_flat_ratio"]
    inferred = None
    if not n_classes and "chance_classes_max_inferred" in th:
        inferred = chance_classes(tl, th)
    classes = n_classes or inferred
    chance = math.log(classes) if classes and classes > 1 else None
    vl = np.asarray(val_loss, dtype=float)
    vl = vl[np.isfinite(vl)]
    if chance is not None and abs(end - chance) <= th["chance_loss_tolerance"] * chance:
        ev = {"metric": "train_loss", "end": _r(end), "ln_classes": _r(chance), "classes": classes}
        if inferred:
            ev["classes_from"] = "inferred from the loss (the log does not name the class count)"
        out.append({"id": "loss_at_chance", "evidence": ev})
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


def train_val_gap(train_acc, val_acc, th: dict) -> Optional[dict]:
    """Final training accuracy at least ``train_val_gap_min`` above the final validation accuracy,
    with the validation accuracy past its best (a gap that is still closing is not yet a symptom)."""
    ta = np.asarray(train_acc, dtype=float)
    va = np.asarray(val_acc, dtype=float)
    ta, va = ta[np.isfinite(ta)], va[np.isfinite(va)]
    if len(ta) == 0 or len(va) == 0:
        return None
    gap = float(ta[-1] - va[-1])
    if gap >= th["train_val_gap_min"] and va[-1] < va.max():
        return {"id": "train_val_gap", "evidence": {"metric": "accuracy", "train_last": _r(float(ta[-1])),
                                                    "val_last": _r(float(va[-1])), "gap": _r(gap),
                                                    "threshold": th["train_val_gap_min"]}}
    return None


def val_at_chance(val_loss, n_classes: Optional[int], th: dict) -> Optional[dict]:
    """A validation loss that sits at ln(classes) (the class count given, or inferred from it),
    within the tight ``chance_loss_tolerance_inferred``: validation predictions are a uniform guess."""
    vl = np.asarray(val_loss, dtype=float)
    vl = vl[np.isfinite(vl)]
    if len(vl) < 3:
        return None
    inferred = None if n_classes else chance_classes(vl, th)
    classes = n_classes or inferred
    if not classes or classes < 2:
        return None
    chance = math.log(classes)
    tail = vl[len(vl) // 2:]
    if all(abs(x - chance) <= th["chance_loss_tolerance_inferred"] * chance for x in tail):
        ev = {"metric": "val_loss", "end": _r(float(vl[-1])), "ln_classes": _r(chance), "classes": classes}
        if inferred:
            ev["classes_from"] = "inferred from the loss (the log does not name the class count)"
        return {"id": "loss_at_chance", "evidence": ev}
    return None


def constant_metric(steps, values, th: dict, metric: str = "target", loss=None) -> Optional[dict]:
    """The target metric identical (within ``constant_metric_tolerance``) at every one of at
    least ``constant_metric_min_evals`` evaluations while the training loss (if logged) does not
    fall: the predictions never changed. A perfect score (1.0) held throughout is not a failure."""
    s, v = _clean(steps, values)
    ok = np.isfinite(v)
    s, v = s[ok], v[ok]
    if len(v) < th["constant_metric_min_evals"] or float(v[-1]) >= 1.0 - 1e-9:
        return None
    if loss is not None:
        tl = np.asarray(loss, dtype=float)
        tl = tl[np.isfinite(tl)]
        if len(tl) >= 3:
            k = max(1, len(tl) // 10)
            if float(np.median(tl[-k:])) < th["underfit_flat_ratio"] * float(np.median(tl[:k])):
                return None  # the model is still learning something: not a run that is stuck
    if float(v.max() - v.min()) <= th["constant_metric_tolerance"]:
        return {"id": "metric_constant", "evidence": {"metric": metric, "value": _r(float(v[-1])),
                                                      "evaluations": int(len(v)),
                                                      "tolerance": th["constant_metric_tolerance"]}}
    return None


def single_class(prediction_counts: Optional[dict], n_classes: Optional[int]) -> Optional[dict]:
    """All logged predictions are one class (of a task with more than one)."""
    if not prediction_counts or (n_classes is not None and n_classes < 2):
        return None
    if len(prediction_counts) == 1:
        (cls, n), = prediction_counts.items()
        return {"id": "majority_class_collapse", "evidence": {"metric": "predictions", "predicted_classes": 1,
                                                              "class": cls, "predictions": n}}
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
