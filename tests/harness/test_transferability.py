"""Transferability estimators: hand-computed values on tiny matrices, a direct (slow)
implementation of the evidence formula, and rankings where the better features are
known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from harness.ranking.transferability import (
    EstimatorError,
    aggregate_ranks,
    hscore,
    kendall_tau,
    kendall_w,
    knn_loo_accuracy,
    linear_probe_cv,
    log_evidence,
    logme,
    pareto_front,
    rankdata_desc,
    score_all,
)


def slow_evidence(X, t, alpha, beta) -> float:
    """log N(t; 0, X X^T / alpha + I / beta) / n: the marginal likelihood written directly."""
    n = len(t)
    C = X @ X.T / alpha + np.eye(n) / beta
    return multivariate_normal(np.zeros(n), C).logpdf(t) / n


# --- LogME


def test_log_evidence_by_hand():
    # X = [[1], [0]], t = [1, 0], alpha = beta = 1: C = [[2, 0], [0, 1]]
    # log N = -log(2 pi) - 1/2 log 2 - 1/2 * (1/2) ; per example: / 2
    by_hand = (-math.log(2 * math.pi) - 0.5 * math.log(2) - 0.25) / 2
    assert log_evidence(np.array([[1.0], [0.0]]), np.array([1.0, 0.0]), 1.0, 1.0) == pytest.approx(by_hand, abs=1e-12)


def test_log_evidence_one_feature_by_hand():
    # X = [[2], [1], [0]], t = [1, 1, 0], alpha = 2, beta = 0.5:
    # A = 2 + 0.5 * 5 = 4.5; m = 0.5 * 3 / 4.5 = 1/3; residuals t - X m = [1/3, 2/3, 0] -> 5/9
    # E = 0.5/2 * 5/9 + 2/2 * 1/9 = 5/36 + 4/36 = 1/4
    ev = (0.5 * math.log(2) + 1.5 * math.log(0.5) - 0.25 - 0.5 * math.log(4.5) - 1.5 * math.log(2 * math.pi)) / 3
    X, t = np.array([[2.0], [1.0], [0.0]]), np.array([1.0, 1.0, 0.0])
    assert log_evidence(X, t, 2.0, 0.5) == pytest.approx(ev, abs=1e-12)
    assert slow_evidence(X, t, 2.0, 0.5) == pytest.approx(ev, abs=1e-12)


def test_logme_is_the_maximised_evidence():
    rng = np.random.default_rng(40)
    n, d = 40, 6
    X = rng.normal(size=(n, d))
    y = np.arange(n) % 3
    X[:, :3] += 2 * np.eye(3)[y]  # label signal for every class: the optimum is inside (finite alpha, |m| >> 1e-5)
    score, params = logme(X, y, tol=1e-10, max_iter=20000, return_params=True)
    per_class = []
    for c, (alpha, beta, _) in zip(range(3), params):
        t = (y == c).astype(float)
        ev = slow_evidence(X, t, alpha, beta)
        assert log_evidence(X, t, alpha, beta) == pytest.approx(ev, abs=1e-9)
        for f in (0.9, 1.1):  # a maximum: moving either precision lowers the evidence
            assert slow_evidence(X, t, alpha * f, beta) < ev
            assert slow_evidence(X, t, alpha, beta * f) < ev
        per_class.append(ev)
    assert score == pytest.approx(np.mean(per_class), abs=1e-9)


def test_logme_with_more_features_than_examples_matches_the_direct_formula():
    """d > n (a 768-wide encoder on 20 labeled texts): the SVD path must count the null space."""
    rng = np.random.default_rng(12)
    y = np.arange(20) % 2
    X = rng.normal(size=(20, 50)) * 0.3
    X[:, :2] += np.eye(2)[y]
    score, params = logme(X, y, return_params=True)  # default tolerance, as users run it
    evs = [slow_evidence(X, (y == c).astype(float), a, b) for c, (a, b, _) in zip(range(2), params)]
    assert all(np.isfinite(evs))
    assert score == pytest.approx(np.mean(evs), abs=1e-9)


def test_logme_prefers_features_that_carry_the_labels():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 50)
    onehot = np.eye(3)[y]
    informative = np.hstack([onehot * 2 + rng.normal(scale=0.3, size=onehot.shape), rng.normal(size=(150, 5))])
    noise = rng.normal(size=(150, 8))
    assert logme(informative, y) > logme(noise, y)


# --- H-score


def test_hscore_by_hand():
    # x = [0, 2, 4, 6], classes [0, 0, 1, 1]: centred [-3, -1, 1, 3], var 5; class means -2, 2 -> cov 4
    X, y = np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])
    assert hscore(X, y, shrinkage=False) == pytest.approx(4 / 5)


def test_hscore_two_features_by_hand():
    # feature 1 separates the classes, feature 2 is noise uncorrelated with it
    X = np.array([[-1.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [1.0, -1.0]])
    y = np.array([0, 0, 1, 1])
    # cov = I; class-mean covariance = [[1, 0], [0, 0]] -> trace 1
    assert hscore(X, y, shrinkage=False) == pytest.approx(1.0)


def test_unregularised_hscore_saturates_when_features_outnumber_examples():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(10, 40)), np.arange(10) % 2
    # with d > n every labelling is separable: tr(pinv(S) S_g) hits its ceiling of k - 1
    assert hscore(X, y, shrinkage=False) == pytest.approx(1.0, abs=1e-6)
    assert hscore(X, y) < 0.9  # the shrunk covariance does not


# --- kNN, probe


def test_knn_loo_by_hand():
    # two tight directions; the last point sits in class 0's direction but is labelled 1
    X = np.array([[1.0, 0.0], [1.0, 0.05], [1.0, -0.05], [0.0, 1.0], [0.05, 1.0], [1.0, 0.01]])
    y = np.array([0, 0, 0, 1, 1, 1])
    # k=1 by angle: 0 (0.00) and 1 (0.05) are nearest to 5 (0.01, label 1): wrong; 2 (-0.05) is nearest
    # to 0: right; 3 and 4 find each other: right; 5 is nearest to 0 (label 0): wrong. 3 of 6.
    assert knn_loo_accuracy(X, y, k=1) == pytest.approx(3 / 6)
    # k=3: point 5's neighbours 0, 1, 2 vote 0: wrong; 3's are 4 (1), 5 (1), 1 (0): right. 0: 5, 1, 2 -> 0 right;
    # 1: 5, 0, 2 -> 0 right; 2: 0, 5, 1 -> 0 right; 4: 3 (1), 5 (1), 1 (0) -> right. 5 of 6.
    assert knn_loo_accuracy(X, y, k=3) == pytest.approx(5 / 6)


def test_linear_probe_separable_and_few_examples():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 20)
    X = np.c_[y * 4.0 + rng.normal(scale=0.2, size=40), rng.normal(size=40)]
    assert linear_probe_cv(X, y, seed=0) == 1.0
    assert linear_probe_cv(X, y, seed=0) == linear_probe_cv(X, y, seed=0)  # seeded folds
    with pytest.raises(EstimatorError, match="single example"):
        linear_probe_cv(X[:21], y[:21])  # class 1 has one example


def test_single_class_and_bad_shapes_are_errors():
    X = np.zeros((5, 2))
    with pytest.raises(EstimatorError, match="1 class"):
        logme(X, np.zeros(5))
    with pytest.raises(EstimatorError, match="shape"):
        hscore(X, np.zeros(4))
    with pytest.raises(EstimatorError, match="NaN"):
        knn_loo_accuracy(np.full((4, 2), np.nan), np.array([0, 1, 0, 1]))


def test_score_all_reports_what_it_could_not_compute():
    rng = np.random.default_rng(3)
    y = np.array([0] * 10 + [1])
    scores, errors = score_all(rng.normal(size=(11, 3)), y)
    assert set(scores) == {"logme", "hscore", "knn"} and set(errors) == {"linear_probe"}


# --- ranks and agreement


def test_kendall_w_by_hand():
    assert kendall_w([[1, 2, 3], [1, 2, 3], [1, 2, 3]]) == pytest.approx(1.0)
    assert kendall_w([[1, 2, 3], [3, 2, 1]]) == pytest.approx(0.0)
    # m=2, n=3, ranks [1,2,3] and [2,1,3]: sums 3,3,6 (mean 4): S = 1+1+4 = 6; W = 12*6 / (4*24) = 0.75
    assert kendall_w([[1, 2, 3], [2, 1, 3]]) == pytest.approx(0.75)
    # a tie in one rater: [1, 2.5, 2.5] and [1, 2, 3]: sums 2, 4.5, 5.5 (mean 4): S = 4 + .25 + 2.25 = 6.5;
    # T = 2^3 - 2 = 6 -> W = 78 / (4*24 - 2*6) = 78/84
    assert kendall_w([[1, 2.5, 2.5], [1, 2, 3]]) == pytest.approx(78 / 84)


def test_ranks_ties_and_pareto():
    assert rankdata_desc([0.1, 0.9, 0.9, np.nan]).tolist() == [3.0, 1.5, 1.5, 4.0]
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    # score up, cost down: (3, 1) dominates (2, 2); (1, 0.5) is cheapest
    assert pareto_front([3, 2, 1], [1, 2, 0.5]).tolist() == [True, False, True]


def test_better_features_rank_first_for_every_estimator():
    """Three candidates by construction: clean class signal, noisy signal, no signal."""
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 60)
    centers = rng.normal(size=(3, 16)) * 2
    good = centers[y] + rng.normal(scale=0.8, size=(180, 16))
    weak = centers[y] + rng.normal(scale=3.0, size=(180, 16))
    none = rng.normal(size=(180, 16))
    feats = [good, weak, none]
    per = {name: np.array([score_all(F, y, [name], seed=0)[0][name] for F in feats])
           for name in ("logme", "hscore", "knn", "linear_probe")}
    for name, s in per.items():
        assert s.argsort()[::-1].tolist() == [0, 1, 2], (name, s)
    mean_rank, w, tau = aggregate_ranks(per)
    assert mean_rank.tolist() == [1.0, 2.0, 3.0] and w == pytest.approx(1.0) and tau == pytest.approx(1.0)


def test_logme_stays_finite_when_the_features_interpolate_the_labels():
    """90 texts, 384-wide features (a sentence encoder on a small labeled set): exact fits are possible."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(90, 384))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.arange(90) % 3
    score, params = logme(X, y, return_params=True)
    assert np.isfinite(score)
    assert all(np.isfinite(a) and np.isfinite(b) for a, b, _ in params)
