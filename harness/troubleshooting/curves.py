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
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def _r(x, nd=4):
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def trend_and_noise(values) -> tuple[np.ndarray, float, bool]:
    """A curve's running-median trend, the robust scale of its residuals and whether both are in
    log space (positive curves: a loss's noise is multiplicative). Shape (n_points,) in, the trend
    of the same shape out; the scale is 1.4826 x the median absolute deviation (Hampel)."""
    v = np.asarray(values, dtype=float)
    log = bool(len(v)) and bool(np.all(v > 0))
    z = np.log(v) if log else v
    n = len(z)
    w = max(3, min(51, (n // 10) | 1))
    if n < w:
        trend = np.full(n, float(np.median(z))) if n else z
    else:
        pad = np.pad(z, (w // 2, w // 2), mode="edge")
        trend = np.median(np.lib.stride_tricks.sliding_window_view(pad, w), axis=1)
    r = z - trend
    sigma = 1.4826 * float(np.median(np.abs(r - np.median(r)))) if n else 0.0
    return trend, max(sigma, 1e-3), log


def improved(values, higher_is_better: bool) -> bool:
    """The curve's end is better than its start by more than the noise of either (medians of the
    first and last tenth, at least 2 points each)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 4:
        return False
    k = max(2, len(v) // 10)
    _, sigma, log = trend_and_noise(v)
    a, b = float(np.median(v[:k])), float(np.median(v[-k:]))
    if log:
        a, b = math.log(a), math.log(b)
    gain = (b - a) if higher_is_better else (a - b)
    return gain > 2.0 * 1.25 * sigma / math.sqrt(k)


def strength(z: float, z_min: float) -> float:
    """How strongly a deviation of z noise units supports a symptom: 0.5 at the threshold, 1 at twice it."""
    return round(float(min(1.0, max(0.25, 0.5 * z / z_min))), 3)


def divergence(steps, loss, th: dict, *, validation_improved: bool = False) -> list[dict]:
    """NaN/inf in the loss; a loss whose trend ends far above where it began; sharp spikes. Rises and
    spikes are judged against the curve's own noise (``trend_and_noise``) with an absolute floor,
    and a training loss whose validation curves improved is read as noisy, not divergent."""
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
    if float(v.min()) < th.get("loss_floor", -1.0):
        out.append({"id": "loss_below_floor", "evidence": {"metric": "train_loss", "min": _r(float(v.min())),
                                                           "first": _r(float(v[0])), "floor": th.get("loss_floor")}})
        return out
    if len(v) < 3:
        return out
    trend, sigma, log = trend_and_noise(v)  # below: a ratio needs a positive start (a 0 is a loss not yet measured)
    k = max(1, len(v) // 10)
    start, end = float(np.median(v[:k])), float(np.median(v[-k:]))
    z_min = th.get("noise_z_min", 4.0)
    floor = th.get("divergence_abs_floor", 0.0)
    se = 1.25 * sigma / math.sqrt(k)
    rise = (math.log(end) - math.log(start)) if log and start > 0 else (end - start)
    z = rise / se
    if 0 < start and end > start * th["divergence_loss_ratio"] and end - start > floor and z >= z_min \
            and not validation_improved:
        out.append({"id": "loss_exploding", "evidence": {
            "metric": "train_loss", "start": _r(start), "end": _r(end), "ratio": _r(end / start, 3),
            "threshold_ratio": th["divergence_loss_ratio"], "noise_z": _r(z, 1), "strength": strength(z, z_min)}})
    elif len(v) >= 8 and not validation_improved:
        # fell, then climbed back far above its own best and stayed (learned, then blew up): end vs lowest trend
        i_best = int(np.argmin(trend))
        best = float(np.exp(trend[i_best])) if log else float(trend[i_best])
        back = (math.log(end) - math.log(best)) if log and best > 0 else (end - best)
        zb = back / se
        if (i_best < len(v) - 2 * k and 0 < best and end > best * th["divergence_loss_ratio"]
                and end - best > floor and zb >= z_min):
            out.append({"id": "loss_exploding", "evidence": {
                "metric": "train_loss", "best": _r(best), "best_step": float(s[i_best]), "end": _r(end),
                "ratio": _r(end / best, 3), "threshold_ratio": th["divergence_loss_ratio"],
                "reading": "rose back above its own best", "noise_z": _r(zb, 1), "strength": strength(zb, z_min)}})
    if len(v) >= 8:
        z_v = np.log(v) if log else v
        resid = z_v - trend
        lin_trend = np.exp(trend) if log else trend
        jump = max(math.log(th["spike_factor"]) if log else 0.0, z_min * sigma)
        idx = np.where((resid > jump) & (v - lin_trend > floor))[0]
        if len(idx):
            zs = float(np.max(resid[idx]) / sigma)
            st = strength(zs, z_min) * min(1.0, 0.5 + 0.25 * len(idx))
            if validation_improved:
                st *= 0.3  # the evaluation curves improved: the spikes did not derail training
            out.append({"id": "loss_spikes", "evidence": {
                "metric": "train_loss", "steps": [float(x) for x in s[idx][:10]], "count": int(len(idx)),
                "factor": th["spike_factor"], "noise_z": _r(zs, 1), "strength": round(st, 3),
                **({"validation_improved": True} if validation_improved else {})}})
    return out


def loss_near_zero_early(steps, loss, th: dict, metric: str = "train_loss") -> Optional[dict]:
    """A loss that began at an ordinary level (>= 0.1) and whose running median reaches
    ``leak_loss_max`` within the first ``leak_early_share`` of the run: the answers are in the data."""
    s, v = _clean(steps, loss)
    ok = np.isfinite(v)
    s, v = s[ok], v[ok]
    if len(v) < 4 or float(v[0]) < 0.1 or s[-1] <= s[0]:
        return None
    trend, _, _ = trend_and_noise(v)
    trend = np.exp(trend) if np.all(v > 0) else trend
    hit = np.where(trend <= th["leak_loss_max"])[0]
    if not len(hit):
        return None
    i = int(hit[0])
    share = float((s[i] - s[0]) / (s[-1] - s[0]))
    if share > th["leak_early_share"]:
        return None
    return {"id": "loss_near_zero_early" if metric == "train_loss" else "val_too_good", "evidence": {
        "metric": metric, "first": _r(float(v[0])), "reached": _r(float(trend[i])), "at": float(s[i]),
        "share_of_run": _r(share, 3), "threshold": th["leak_loss_max"]}}


def still_improving(steps, values, th: dict, *, higher_is_better: bool, metric: str) -> Optional[dict]:
    """The last third of a validation curve (at least 4 of at least 6 evaluations) improving with a
    slope t-statistic of at least ``still_improving_t`` against its own residual noise, its best value
    at the end, that last third holding at least a tenth of the whole run's gain, and not levelling off
    (the rate over its second half at least ``still_improving_rate_ratio`` of the rate over its first)."""
    s, v = _clean(steps, values)
    ok = np.isfinite(v)
    v = v[ok]
    n = len(v)
    if n < 6:  # fewer: a line through 4 points has 2 degrees of freedom, too few to tell a trend from noise
        return None
    m = max(4, n // 3)
    tail = v[-m:] if higher_is_better else -v[-m:]
    x = np.arange(m, dtype=float)
    slope, icpt = np.polyfit(x, tail, 1)
    resid = tail - (slope * x + icpt)
    sd = math.sqrt(float(np.sum(resid ** 2)) / (m - 2))
    se = sd / math.sqrt(float(np.sum((x - x.mean()) ** 2)))
    t = float(slope / max(se, 1e-12))
    whole = v if higher_is_better else -v
    total = float(whole.max() - whole[0])
    gain = float(slope * (m - 1))
    at_end = whole[-1] >= whole.max() - 2 * max(sd, 1e-12)
    h = m // 2  # levelling off: the rate over the tail's second half against its first half
    r1, r2 = (tail[h] - tail[0]) / h, (tail[-1] - tail[h]) / (m - 1 - h)
    steady = r1 <= 0 or r2 >= th.get("still_improving_rate_ratio", 0.5) * r1
    if t >= th["still_improving_t"] and gain > 0 and total > 0 and gain >= 0.1 * total and at_end and steady:
        return {"id": "still_improving", "evidence": {
            "metric": metric, "last": _r(float(v[-1])), "gain_last_third": _r(gain if higher_is_better else -gain),
            "evaluations": n, "slope_t": _r(t, 1), "strength": strength(t, th["still_improving_t"])}}
    return None


def f1_far_below_accuracy(accuracy, f1, th: dict) -> Optional[dict]:
    """Accuracy at least ``f1_gap_min`` above macro-F1, with the F1 at most 0.5: medians over the last
    half of the evaluations (per-batch values are noisy; one last batch decides nothing)."""
    a = np.asarray(accuracy, dtype=float)
    f = np.asarray(f1, dtype=float)
    a, f = a[np.isfinite(a)], f[np.isfinite(f)]
    if not len(a) or not len(f):
        return None
    am, fm = float(np.median(a[len(a) // 2:])), float(np.median(f[len(f) // 2:]))
    gap = am - fm
    if gap >= th["f1_gap_min"] and fm <= 0.5:
        return {"id": "f1_far_below_accuracy", "evidence": {"metric": "macro_f1", "accuracy_median": _r(am),
                                                             "f1_median": _r(fm), "f1_max": _r(float(f.max())),
                                                             "gap": _r(gap), "threshold": th["f1_gap_min"]}}
    return None


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


def _val_rise(val_steps, val_loss, th: dict):
    """(steps, losses, index of the best, relative rise of the end above it) for a validation loss that
    ends above its best beyond the curve's own noise; None otherwise."""
    vs, vl = _clean(val_steps, val_loss)
    ok = np.isfinite(vl)
    vs, vl = vs[ok], vl[ok]
    if len(vl) < 3:
        return None
    best = int(np.argmin(vl))
    if best == len(vl) - 1:
        return None
    after = vl[best + 1:]  # short curves: the median after the best (3 or more), so one dip back hides no rise
    rise = ((float(np.median(after)) if len(after) >= 3 else vl[-1]) - vl[best]) / max(abs(vl[best]), 1e-12)
    n = len(vl)
    if n >= 8:  # enough evaluations to judge the end against the best stretch and the curve's own noise
        m = max(4, n // 8)
        means = np.convolve(vl, np.ones(m) / m, mode="valid")
        b0 = int(np.argmin(means))
        if b0 + m > n - m:
            return None  # the best stretch is the last one: no sustained rise
        from scipy.stats import mannwhitneyu

        best_w, last_w = vl[b0:b0 + m], vl[-m:]
        rise = float(np.median(last_w) / max(abs(float(np.median(best_w))), 1e-12) - 1.0)
        p = float(mannwhitneyu(last_w, best_w, alternative="greater").pvalue)
        _, sigma, log = trend_and_noise(vl)
        step = (math.log(float(np.median(last_w)) / float(np.median(best_w))) if log
                else float(np.median(last_w) - np.median(best_w)))
        if p >= 0.05 or step < th.get("overfit_noise_z", 2.0) * sigma:
            return None  # the end is back within the noise of the best: a bump, not a rise
        best = b0 + int(np.argmin(best_w))
    return vs, vl, best, rise


def overfitting(train_steps, train_loss, val_steps, val_loss, th: dict) -> Optional[dict]:
    """Validation loss rising after its minimum while training loss keeps falling."""
    found = _val_rise(val_steps, val_loss, th)
    if found is None:
        return None
    vs, vl, best, rise = found
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
        "train_loss_last": _r(tl[-1]), "gap_at_best": _r(vl[best] - at_best[-1]) if len(at_best) else None}}


def rising_together(train_steps, train_loss, val_steps, val_loss, th: dict) -> Optional[dict]:
    """Validation loss rising from its best (as ``overfitting`` judges it) while the training loss rises
    too, beyond its own noise: the optimisation itself went the wrong way (a learning rate too high), not
    memorisation. Reported as divergence evidence."""
    found = _val_rise(val_steps, val_loss, th)
    if found is None:
        return None
    vs, vl, best, rise = found
    if rise < th["overfit_val_rise"]:
        return None
    ts, tl = _clean(train_steps, train_loss)
    okt = np.isfinite(tl)
    ts, tl = ts[okt], tl[okt]
    if len(tl) < 4 or np.any(tl <= 0):
        return None
    low = tl[ts <= vs[best]]
    # the training loss at its lowest up to the validation best (logged only later: its first value)
    start = float(np.min(low)) if len(low) else float(tl[0])
    k = max(1, len(tl) // 5)
    end = float(np.median(tl[-k:]))
    _, sigma, _ = trend_and_noise(tl)
    z = (math.log(end) - math.log(start)) / (1.25 * sigma / math.sqrt(k))
    z_min = th.get("noise_z_min", 4.0)
    if end < start * (1 + th["overfit_val_rise"]) or z < z_min or end - start < th["divergence_abs_floor"]:
        return None  # a rise of a few thousandths near zero is no instability, whatever its ratio
    return {"id": "loss_exploding", "evidence": {
        "metric": "train_loss", "reading": "training and validation loss rose together from their best",
        "best": _r(start), "end": _r(end), "ratio": _r(end / start, 3), "val_best": _r(vl[best]),
        "val_last": _r(vl[-1]), "val_rise": _r(rise, 3), "noise_z": _r(z, 1), "strength": strength(z, z_min)}}


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
    count given, or inferred by ``chance_classes`` when no log or flag names it). Both losses ending
    clearly above where they began is no plateau: that is read as divergence evidence instead."""
    tl = np.asarray(train_loss, dtype=float)
    tl = tl[np.isfinite(tl)]
    if len(tl) < 3:
        return []
    out = []
    k = max(1, len(tl) // 10)
    start, end = float(np.median(tl[:k])), float(np.median(tl[-k:]))
    if start <= 0:
        return []  # a loss that begins at 0 or below has no level to be high or flat against
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
    elif (len(vl) >= 2 and end > start * (1 + th["overfit_val_rise"])
          and float(vl[-1]) > float(vl[0]) * (1 + th["overfit_val_rise"])):
        # both ended clearly above where they began: training went the wrong way (not a plateau to push)
        out.append({"id": "loss_exploding", "evidence": {
            "metric": "train_loss", "reading": "training and validation loss both rose rather than levelled off",
            "start": _r(start), "end": _r(end), "ratio": _r(end / start, 3), "val_first": _r(float(vl[0])),
            "val_last": _r(float(vl[-1])), "strength": 0.5}})
    elif flat and (chance is None or end > th["underfit_min_loss_share"] * chance):
        ev = {"metric": "train_loss", "start": _r(start), "end": _r(end), "ratio": _r(end / start, 3)}
        if len(vl):
            ev["val_loss_end"] = _r(vl[-1])
        if chance is None:  # flat, but how high is unknown (no class count): weaker evidence
            ev["strength"] = 0.5 if len(tl) >= 5 else 0.3
            ev["note"] = "flat, but no class count to tell how high: give --num-classes for a firmer reading"
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


def train_val_gap(train_acc, val_acc, th: dict, val_loss=None) -> Optional[dict]:
    """Final training accuracy at least ``train_val_gap_min`` above the final validation accuracy,
    with the validation accuracy past its best (a gap that is still closing is not yet a symptom) and the
    validation loss, where logged, not at its lowest at the end (validation still improving is no overfitting)."""
    ta, va, vl = (np.asarray(x if x is not None else [], dtype=float) for x in (train_acc, val_acc, val_loss))
    ta, va, vl = ta[np.isfinite(ta)], va[np.isfinite(va)], vl[np.isfinite(vl)]
    if len(ta) == 0 or len(va) == 0 or (len(vl) >= 2 and float(vl[-1]) <= float(vl.min())):
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
                # the loss is learning something the metric does not see: the labels or the loss are wrong
                if float(v.max() - v.min()) <= th["constant_metric_tolerance"]:
                    return {"id": "loss_falls_metric_at_chance", "evidence": {
                        "metric": metric, "value": _r(float(v[-1])), "evaluations": int(len(v)),
                        "loss_first": _r(float(np.median(tl[:k]))), "loss_last": _r(float(np.median(tl[-k:])))}}
                return None
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
