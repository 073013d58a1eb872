"""Transferability estimators: how well a frozen model's features suit target labels.

Pure functions on arrays. ``X`` has shape ``(n_examples, n_features)``, ``y``
shape ``(n_examples,)`` with integer class ids. Every estimator is "higher is
better", and only its *order* across candidates on the same data means
anything: a raw LogME or H-score value is no verdict on its own.

- ``logme``: the log marginal evidence per example of a Bayesian linear model
  (one per class, one-hot targets), maximised over the prior precision alpha
  and the noise precision beta by the fixed-point iterations of You et al.,
  "LogME: Practical Assessment of Pre-trained Models for Transfer Learning",
  ICML 2021 (Algorithm 1).
- ``hscore``: tr(cov(f)^-1 cov(E[f|y])) (Bao et al., ICIP 2019), with the
  Ledoit-Wolf shrunk feature covariance of Ibrahim et al. (ECML-PKDD 2022) by
  default, which keeps it stable when features outnumber examples.
- ``knn_loo_accuracy``: leave-one-out accuracy of a k-nearest-neighbour vote
  (cosine similarity).
- ``linear_probe_cv``: stratified k-fold accuracy of a logistic-regression probe.

Agreement and aggregation: ``rankdata_desc``, ``kendall_tau``, ``kendall_w``,
``aggregate_ranks``, ``pareto_front``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

ESTIMATORS = ("logme", "hscore", "knn", "linear_probe")
EPS = 1e-5  # LogME's guard on its fixed-point denominators (You et al.'s code)


class EstimatorError(ValueError):
    """Data an estimator cannot score (single class, too few examples per class)."""


def _check(X, y, min_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2:
        raise EstimatorError(f"features must have shape (n_examples, n_features). Got shape {X.shape} instead.")
    if y.shape != (X.shape[0],):
        raise EstimatorError(f"labels must have shape ({X.shape[0]},). Got shape {y.shape} instead.")
    if not np.all(np.isfinite(X)):
        raise EstimatorError("features hold NaN or infinite values.")
    if len(np.unique(y)) < min_classes:
        raise EstimatorError(f"the labels hold {len(np.unique(y))} class(es); at least {min_classes} are needed.")
    return X, y


# --- LogME


def log_evidence(X, t, alpha: float, beta: float) -> float:
    """log p(t | X, alpha, beta) / n for one target column, in closed form.

    Model: w ~ N(0, alpha^-1 I_d), t = X w + eps, eps ~ N(0, beta^-1 I_n).
    X: (n, d); t: (n,). Written from the textbook formula with A = alpha I + beta X^T X
    and m = beta A^-1 X^T t (Bishop, PRML eq. 3.86); O(d^3), for checks and small d."""
    X = np.asarray(X, np.float64)
    t = np.asarray(t, np.float64)
    n, d = X.shape
    A = alpha * np.eye(d) + beta * X.T @ X
    m = beta * np.linalg.solve(A, X.T @ t)
    _, logdet = np.linalg.slogdet(A)
    e = beta / 2 * np.sum((t - X @ m) ** 2) + alpha / 2 * m @ m
    return float((d / 2 * math.log(alpha) + n / 2 * math.log(beta) - e - logdet / 2
                  - n / 2 * math.log(2 * math.pi)) / n)


def _logme_column(s2: np.ndarray, z: np.ndarray, res0: float, n: int, d: int,
                  max_iter: int, tol: float) -> tuple[float, float, float, int]:
    """Fixed-point maximisation of the evidence for one target.

    s2: squared singular values of X, shape (r,); z = U^T t, shape (r,);
    res0 = |t|^2 - |z|^2 (the part of t outside X's column space)."""
    alpha, beta = 1.0, 1.0
    it = 0
    for it in range(1, max_iter + 1):
        denom = alpha + beta * s2
        gamma = float(np.sum(beta * s2 / denom))
        m2 = float(np.sum(beta ** 2 * s2 * z ** 2 / denom ** 2))            # |m|^2
        res = float(np.sum((alpha * z / denom) ** 2) + res0)                   # |t - X m|^2
        # + EPS as in the reference implementation: with more features than examples the fit can
        # become exact (res -> 0) or the weights vanish (m2 -> 0), and the precisions would run off
        new_alpha = gamma / (m2 + EPS)
        new_beta = (n - gamma) / (res + EPS)
        done = abs(new_alpha / new_beta - alpha / beta) / (alpha / beta) < tol
        alpha, beta = new_alpha, new_beta
        if done:
            break
    denom = alpha + beta * s2
    m2 = float(np.sum(beta ** 2 * s2 * z ** 2 / denom ** 2))
    res = float(np.sum((alpha * z / denom) ** 2) + res0)
    logdet = float(np.sum(np.log(denom)) + (d - len(s2)) * math.log(alpha))
    ev = (d / 2 * math.log(alpha) + n / 2 * math.log(beta) - beta / 2 * res - alpha / 2 * m2
          - logdet / 2 - n / 2 * math.log(2 * math.pi))
    return ev / n, alpha, beta, it


def logme(X, y, *, max_iter: int = 100, tol: float = 1e-3, return_params: bool = False):
    """LogME of features X (n, d) for integer labels y (n,): the mean over classes of the
    maximised log evidence per example of a linear model on one-hot targets.

    One SVD of X, then for each class the fixed-point updates
    gamma = sum beta s_i / (alpha + beta s_i), alpha = gamma / |m|^2,
    beta = (n - gamma) / |X m - t|^2 (each denominator + 1e-5, as in the authors' code) until
    alpha/beta moves by less than ``tol`` (relative).
    With ``return_params`` also the per-class (alpha, beta, iterations)."""
    X, y = _check(X, y)
    n, d = X.shape
    u, s, _ = np.linalg.svd(X, full_matrices=False)
    keep = s > s.max() * max(n, d) * np.finfo(np.float64).eps if s.size and s.max() > 0 else np.zeros(0, bool)
    u, s2 = u[:, keep], s[keep] ** 2
    evidences, params = [], []
    for c in np.unique(y):
        t = (y == c).astype(np.float64)
        z = u.T @ t
        res0 = max(float(t @ t - z @ z), 0.0)
        ev, a, b, it = _logme_column(s2, z, res0, n, d, max_iter, tol)
        evidences.append(ev)
        params.append((a, b, it))
    score = float(np.mean(evidences))
    return (score, params) if return_params else score


# --- H-score


def _ledoit_wolf(Xc: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of centred X (n, d): ((1-a) S + a mu I, a)."""
    n, d = Xc.shape
    S = Xc.T @ Xc / n
    mu = np.trace(S) / d
    delta = np.sum((S - mu * np.eye(d)) ** 2) / d
    X2 = Xc ** 2
    beta_ = (np.sum(X2.T @ X2) / n - np.sum(S ** 2)) / (d * n)
    a = 0.0 if delta <= 0 else float(min(max(beta_ / delta, 0.0), 1.0))
    return (1 - a) * S + a * mu * np.eye(d), a


def hscore(X, y, *, shrinkage: bool = True) -> float:
    """H-score of X (n, d) for labels y (n,): tr(pinv(cov(X)) cov(E[X | y])).

    cov(E[X|y]) is the covariance of each example's class mean (weighted by class size).
    ``shrinkage=True`` (default) uses the Ledoit-Wolf shrunk covariance and scales the
    between-class term by the same (1 - a), as in the regularised H-score."""
    X, y = _check(X, y)
    n, d = X.shape
    Xc = X - X.mean(0)
    if shrinkage:
        cov, a = _ledoit_wolf(Xc)
    else:
        cov, a = Xc.T @ Xc / n, 0.0
    G = np.zeros_like(Xc)
    for c in np.unique(y):
        G[y == c] = Xc[y == c].mean(0)
    cov_g = G.T @ G / n
    return float(np.trace(np.linalg.pinv(cov, rcond=1e-15, hermitian=True) @ ((1 - a) * cov_g)))


# --- kNN and the linear probe


def knn_loo_accuracy(X, y, *, k: int = 5, chunk: int = 2048) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour majority vote by cosine similarity.

    X: (n, d); y: (n,). Each example is classified by its k most similar other examples;
    a tied vote goes to the class of the most similar neighbour among the tied classes."""
    X, y = _check(X, y)
    n = X.shape[0]
    k = max(1, min(k, n - 1))
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    Xn = X / np.where(norms > 0, norms, 1.0)
    classes, yi = np.unique(y, return_inverse=True)
    correct = 0
    for start in range(0, n, chunk):
        sim = Xn[start:start + chunk] @ Xn.T
        rows = np.arange(sim.shape[0])
        sim[rows, start + rows] = -np.inf                    # leave the example itself out
        nn = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # most similar first
        for r in rows:
            labs = yi[nn[r]]
            votes = np.bincount(labs, minlength=len(classes))
            top = np.flatnonzero(votes == votes.max())
            pred = labs[np.isin(labs, top)][0] if len(top) > 1 else top[0]
            correct += int(pred == yi[start + r])
    return correct / n


def linear_probe_cv(X, y, *, folds: int = 5, seed: int = 0, C: float = 1.0) -> float:
    """Mean accuracy of an L2 logistic-regression probe over stratified k folds.

    X: (n, d) standardised per fold; y: (n,). ``folds`` is lowered to the smallest
    class count when a class has fewer examples (at least 2 are needed)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _check(X, y)
    smallest = int(np.min(np.unique(y, return_counts=True)[1]))
    if smallest < 2:
        raise EstimatorError("a class has a single example: cross-validation needs at least 2 per class.")
    folds = min(folds, smallest)
    accs = []
    for tr, te in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
        clf.fit(X[tr], y[tr])
        accs.append(float(np.mean(clf.predict(X[te]) == y[te])))
    return float(np.mean(accs))


def score_all(X, y, estimators: Sequence[str] = ESTIMATORS, *, seed: int = 0, k: int = 5,
              folds: int = 5) -> tuple[dict, dict]:
    """Every estimator on one feature matrix: ({name: score}, {name: error text})."""
    fns = {"logme": lambda: logme(X, y), "hscore": lambda: hscore(X, y),
           "knn": lambda: knn_loo_accuracy(X, y, k=k),
           "linear_probe": lambda: linear_probe_cv(X, y, folds=folds, seed=seed)}
    scores, errors = {}, {}
    for name in estimators:
        try:
            scores[name] = fns[name]()
        except (EstimatorError, np.linalg.LinAlgError) as exc:
            errors[name] = str(exc)
    return scores, errors


# --- ranks, agreement, aggregate


def rankdata_desc(values) -> np.ndarray:
    """Ranks, 1 = highest value, ties get their average rank; NaN ranks last. values: (n,)."""
    from scipy.stats import rankdata

    v = np.asarray(values, np.float64)
    v = np.where(np.isnan(v), -np.inf, v)
    return rankdata(-v, method="average")


def kendall_tau(a, b) -> float:
    """Kendall's tau-b between two score vectors of shape (n,); NaN when either is constant."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def kendall_w(ranks) -> float:
    """Kendall's coefficient of concordance W of ranks (m raters, n items), tie-corrected.

    W = 12 S / (m^2 (n^3 - n) - m sum_j T_j), S the squared deviations of the rank sums
    from their mean, T_j = sum (t^3 - t) over the tie groups of rater j. 1: full agreement."""
    R = np.asarray(ranks, np.float64)
    if R.ndim != 2 or R.shape[0] < 2 or R.shape[1] < 2:
        return float("nan")
    m, n = R.shape
    sums = R.sum(0)
    S = float(np.sum((sums - sums.mean()) ** 2))
    T = 0.0
    for row in R:
        _, counts = np.unique(row, return_counts=True)
        T += float(np.sum(counts ** 3 - counts))
    denom = m ** 2 * (n ** 3 - n) - m * T
    return float(12 * S / denom) if denom > 0 else float("nan")


def aggregate_ranks(scores: dict) -> tuple[np.ndarray, float, Optional[float]]:
    """Mean rank over estimators (1 = best) for candidates scored by every estimator.

    scores: {estimator: (n_candidates,) array}. Returns (mean ranks (n,), Kendall's W,
    mean pairwise Kendall tau between estimators (None with fewer than 2 estimators))."""
    names = list(scores)
    R = np.vstack([rankdata_desc(scores[e]) for e in names])
    taus = [kendall_tau(scores[a], scores[b]) for i, a in enumerate(names) for b in names[i + 1:]]
    taus = [t for t in taus if not math.isnan(t)]
    return R.mean(0), kendall_w(R), (float(np.mean(taus)) if taus else None)


def pareto_front(score, cost) -> np.ndarray:
    """Boolean mask (n,) of candidates no other beats on both: higher score and lower cost.

    A candidate is dominated when another has score >= and cost <=, one of them strictly."""
    s, c = np.asarray(score, np.float64), np.asarray(cost, np.float64)
    front = np.ones(len(s), bool)
    for i in range(len(s)):
        better = (s >= s[i]) & (c <= c[i]) & ((s > s[i]) | (c < c[i]))
        front[i] = not better.any()
    return front
