"""How a run ended, read off what a log records beside its loss curves: pure functions on arrays.

- ``warmup_unfinished``: the learning rate was still climbing at the last logged step, so the run
  ended inside its warm-up and never trained at the rate it was configured for (Goyal et al. 2017:
  warm-up is the first few percent of a run). Whatever the curves show, that run was cut short.
- ``short_still_improving``: a validation curve of too few evaluations for the slope test of
  ``curves.still_improving`` (which needs 6) that improved at every one of them without levelling
  off. Under no trend, each of the ``n - 1`` changes is as likely to worsen as to improve, so all
  of them improving has probability ``0.5 ** (n - 1)`` (a sign test): 1/16 at 5 evaluations.
- ``metric_at_chance``: a validation metric whose chance level does not depend on the classes
  (ROC AUC: 0.5 for any scorer that ignores its input, Fawcett 2006) held there.
- ``accuracy_without_ranking``: a validation accuracy far above what the validation ROC AUC allows. An AUC
  in the "poor" band (at most 0.7, Hosmer & Lemeshow 2000) means the scores barely separate the classes, so a
  high accuracy beside it comes from the class prior: the majority class predicted (He & Garcia 2009); the
  same reading as macro-F1 far below accuracy, from the other class-balanced metric logs carry.
- ``train_accuracy_low``: a training accuracy that levelled off far below what a network can fit.
  A network with the capacity for its task fits its own training set nearly perfectly, even with random
  labels (Zhang et al. 2017); one that settles well below that on the data it trains on has too little
  capacity, too low a rate or too much regularisation: high bias, the definition of underfitting.

- ``validation_too_good``: validation far better than training from the first evaluations: a
  validation loss a tenth of the training loss or less while the model is still learning (a training
  loss of 0.1 or more), or a perfect validation accuracy while the training accuracy is well short of it.
  Dropout and augmentation make validation somewhat better than training (at most about 2x in loss); an
  order of magnitude means the validation examples are ones the model has in effect seen (duplicates,
  frames of one video on both sides of the split, the label in the input: Kaufman et al. 2012).

Each returns ``None`` or a symptom ``{"id", "evidence"}`` as the detectors of ``curves`` do.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from harness.troubleshooting.curves import improved

# metrics whose chance level is known without the class count, by the suffix of their column name
CHANCE_LEVEL = {"auc": 0.5, "roc_auc": 0.5, "auroc": 0.5}


def _finite(steps, values):
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    return s[ok], v[ok]


def warmup_unfinished(steps, learning_rates, th: dict) -> Optional[dict]:
    """At least 3 logged learning rates, rising over the last ``warmup_tail_points`` of them and at
    their maximum at the end, the last at least twice the first: the schedule was still warming up."""
    s, lr = _finite(steps, learning_rates)
    keep = lr > 0
    s, lr = s[keep], lr[keep]
    k = int(th.get("warmup_tail_points", 3))
    if len(lr) < max(3, k):
        return None
    tail = lr[-k:]
    rising = bool(np.all(np.diff(tail) > 0))
    at_peak = float(lr[-1]) >= float(lr.max()) * (1 - 1e-9)
    if not (rising and at_peak and float(lr[-1]) >= 2.0 * float(lr[0])):
        return None
    return {"id": "warmup_unfinished", "evidence": {
        "metric": "learning_rate", "first": float(lr[0]), "last": float(lr[-1]), "last_step": float(s[-1]),
        "points": int(len(lr)), "reading": "the learning rate was still rising when the log ends"}}


def short_still_improving(steps, values, th: dict, *, higher_is_better: bool, metric: str) -> Optional[dict]:
    """``short_curve_min_evals`` to 5 evaluations, each better than the one before, the last change at
    least ``still_improving_rate_ratio`` of the mean change (not levelling off), and the distance to a
    perfect value (a loss of 0, a score of 1) shrunk by at least ``short_curve_min_gain`` of itself (a
    3% fall of a high loss is progress too slow to call the run cut short). Weak evidence on its own
    (strength 0.5): a sign test at 5 evaluations has p = 1/16."""
    _, v = _finite(steps, values)
    n = len(v)
    if n < int(th.get("short_curve_min_evals", 5)) or n >= 6:
        return None
    d = np.diff(v if higher_is_better else -v)
    if not np.all(d > 0):
        return None
    if float(d[-1]) < th.get("still_improving_rate_ratio", 0.5) * float(d.mean()):
        return None
    # worth acting on: the distance to a perfect value (a loss of 0, a score of 1) shrank by a material share
    first, last = float(v[0]), float(v[-1])
    room = (1.0 - first) if higher_is_better else first
    if room <= 0 or abs(last - first) / room < th.get("short_curve_min_gain", 0.05):
        return None
    return {"id": "still_improving", "evidence": {
        "metric": metric, "last": round(float(v[-1]), 4), "evaluations": n,
        "reading": f"better at each of {n} evaluations (a sign test: p = {0.5 ** (n - 1):.3g} under no trend)",
        "strength": 0.5}}


def chance_level(column: str) -> Optional[float]:
    """The chance level of a metric by its column name (``val_auc`` -> 0.5), or None where it depends
    on the classes."""
    name = column.lower().replace("-", "_").replace("/", "_")
    for suffix, level in CHANCE_LEVEL.items():
        if name == suffix or name.endswith("_" + suffix):
            return level
    return None


def metric_at_chance(values, level: float, th: dict, metric: str) -> Optional[dict]:
    """At least ``constant_metric_min_evals`` evaluations, every one within ``chance_metric_tolerance``
    of the metric's chance level: the model ranks no better than a coin."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < int(th["constant_metric_min_evals"]):
        return None
    tol = float(th["chance_metric_tolerance"])
    if float(np.max(np.abs(v - level))) > tol:
        return None
    return {"id": "metric_at_chance", "evidence": {
        "metric": metric, "chance_level": level, "evaluations": int(len(v)),
        "max_distance": round(float(np.max(np.abs(v - level))), 4), "tolerance": tol,
        "median": round(float(np.median(v)), 4) if math.isfinite(float(np.median(v))) else None}}


def train_accuracy_low(values, th: dict) -> Optional[dict]:
    """At least ``short_curve_min_evals`` training-accuracy values (fractions) that levelled off (the
    least-squares rate over the last quarter below ``still_improving_rate_ratio`` of the run's average rate,
    the definition of levelling off ``curves.still_improving`` uses) at a median below
    ``underfit_max_train_accuracy``, above where they began (a curve that never moved is a failed run, read by
    the chance and constant-metric tests)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < int(th["short_curve_min_evals"]) or float(np.max(v)) > 1.0:
        return None
    q = max(3, n // 4)
    level = float(np.median(v[-q:]))
    gain = level - float(v[0])
    if gain <= 0 or level >= th["underfit_max_train_accuracy"]:
        return None
    rate_last = float(np.polyfit(np.arange(q, dtype=float), v[-q:], 1)[0])
    rate_run = gain / (n - 1)
    if rate_last >= th["still_improving_rate_ratio"] * rate_run:
        return None  # still climbing: more training, not more capacity, is the first question
    return {"id": "train_accuracy_low", "evidence": {
        "metric": "train_acc", "first": round(float(v[0]), 4), "levelled_at": round(level, 4),
        "rate_last_quarter": round(rate_last, 5), "rate_whole_run": round(rate_run, 5), "evaluations": n,
        "threshold": th["underfit_max_train_accuracy"]}}


def accuracy_without_ranking(accuracy, auc, th: dict) -> Optional[dict]:
    """Medians over the last half of the evaluations: a validation ROC AUC of at most ``poor_discrimination_auc``
    and an accuracy at least ``f1_gap_min`` above it (the gap macro-F1 is held to)."""
    a = np.asarray(accuracy, dtype=float)
    r = np.asarray(auc, dtype=float)
    a, r = a[np.isfinite(a)], r[np.isfinite(r)]
    if len(a) < 2 or len(r) < 2 or float(np.max(a)) > 1.0:
        return None
    am, rm = float(np.median(a[len(a) // 2:])), float(np.median(r[len(r) // 2:]))
    if rm > th["poor_discrimination_auc"] or am - rm < th["f1_gap_min"]:
        return None
    return {"id": "accuracy_without_ranking", "evidence": {
        "metric": "val_auc", "accuracy_median": round(am, 4), "auc_median": round(rm, 4),
        "threshold": th["poor_discrimination_auc"]}}


def validation_too_good(train_steps, train_loss, val_steps, val_loss, train_acc, val_acc,
                        th: dict) -> Optional[dict]:
    """Validation far better than training from the start: at least 2 of the first 3 validation losses near
    zero (at most 0.1: 90% confidence in the right answer) and at most 1 / ``leak_val_train_ratio`` of the last
    training loss logged at or before each (that training loss at least 0.1: still learning; a constant ratio
    between two large losses is a logging scale, as gradient accumulation gives); or a validation accuracy of
    1.0 at the first two evaluations, the first beside a training accuracy of at most 0.9 (accuracy curves read position by position, so only
    where they have as many points)."""
    ratio = float(th["leak_val_train_ratio"])
    ts, tl = _finite(train_steps, train_loss)
    vs, vl = _finite(val_steps, val_loss)
    hits = []
    for x, v in list(zip(vs, vl))[:3]:
        before = tl[ts <= x]
        if len(before) and float(before[-1]) >= 0.1 and 0 <= v <= 0.1 and v * ratio <= float(before[-1]):
            hits.append({"metric": "val_loss", "at": float(x), "validation": round(float(v), 5),
                         "training": round(float(before[-1]), 5)})
    if len(hits) >= 2:
        return {"id": "val_too_good", "evidence": {
            **hits[0], "evaluations_far_better": len(hits), "threshold": ratio,
            "reading": "validation loss an order of magnitude below the training loss"}}
    if train_acc is None or val_acc is None:
        return None
    ta, va = np.asarray(train_acc, dtype=float), np.asarray(val_acc, dtype=float)
    if len(ta) != len(va) or len(va) < 2 or not np.all(np.isfinite(va[:2])) or float(np.max(va)) > 1.0:
        return None
    if va[0] >= 1.0 - 1e-9 and va[1] >= 1.0 - 1e-9 and float(ta[0]) <= 0.9:
        return {"id": "val_too_good", "evidence": {
            "metric": "val_acc", "at": 0.0, "validation": 1.0, "training": round(float(ta[0]), 4),
            "reading": "perfect validation accuracy from the first evaluation while training accuracy is well "
                       "short of it"}}
    return None


def interrupted(done: Optional[float], planned: Optional[float], values, *, higher_is_better: bool,
                metric: str, unit: str = "epoch") -> Optional[dict]:
    """A run that ended before the epochs (or steps) it was set to train (``Epoch k/N`` printed and the log
    stopping at k; a Trainer state of ``global_step`` short of ``max_steps``: a checkpoint taken mid-run),
    short by at least 2 units and a tenth of the plan, with its validation curve at its best at the last of
    at least 3 evaluations: cut short while learning. Early stopping ends a run before its plan too, but only
    after its patience ran out past the best."""
    if not done or not planned or planned - done < max(2.0, 0.1 * planned):
        return None
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 3:
        return None
    best = float(v.max()) if higher_is_better else float(v.min())
    if float(v[-1]) != best or float(v[0]) == best:
        return None
    return {"id": "still_improving", "evidence": {
        "metric": metric, "last": round(float(v[-1]), 4), "evaluations": int(len(v)),
        "reading": f"the log ends at {unit} {done:g} of the {planned:g} planned, with validation at its best",
        "strength": 0.6}}


def nothing_learned(train_loss, target, th: dict) -> Optional[dict]:
    """At least ``short_curve_min_evals`` points of both: a training loss that never moved (ending above
    ``underfit_flat_ratio`` of where it began) and an accuracy (fractions) that did not improve beyond its own
    noise (``curves.improved``), its median over the last half below ``underfit_max_train_accuracy``. A
    network learns something from any signal in its data, even from random labels it memorises (Zhang et al.
    2017); one whose loss and accuracy both stand still from the first step is not training at all: the
    labels, the loss, the data pipeline or a learning rate of zero. Underfitting is a run that learned and
    levelled off; this one never started."""
    tl = np.asarray(train_loss, dtype=float)
    tl = tl[np.isfinite(tl)]
    a = np.asarray(target, dtype=float)
    a = a[np.isfinite(a)]
    n_min = int(th["short_curve_min_evals"])
    if len(tl) < n_min or len(a) < n_min or float(np.max(a)) > 1.0:
        return None
    k = max(1, len(tl) // 10)
    start, end = float(np.median(tl[:k])), float(np.median(tl[-k:]))
    level = float(np.median(a[len(a) // 2:]))
    if end < th["underfit_flat_ratio"] * start or improved(a, True) or level >= th["underfit_max_train_accuracy"]:
        return None
    return {"id": "nothing_learned", "evidence": {
        "metric": "target", "loss_first": round(start, 4), "loss_last": round(end, 4),
        "accuracy_first": round(float(a[0]), 4), "accuracy_median_last_half": round(level, 4),
        "evaluations": int(len(a)), "reading": "neither the loss nor the accuracy moved beyond its noise"}}


def schedule_annealed(learning_rates, th: dict) -> bool:
    """At least 3 logged learning rates whose last is at most ``anneal_done_share`` of their peak, reached
    after the peak and by a fall (the last below the median of the run after its peak): a schedule that
    annealed the rate and ran its course. A constant rate, or one still high at the end, is not."""
    lr = np.asarray(learning_rates, dtype=float)
    lr = lr[np.isfinite(lr) & (lr > 0)]
    if len(lr) < 3:
        return False
    peak = int(np.argmax(lr))
    after = lr[peak:]
    return (peak < len(lr) - 1 and float(lr[-1]) <= th["anneal_done_share"] * float(lr[peak])
            and float(lr[-1]) < float(np.median(after)))
