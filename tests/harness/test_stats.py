"""Tests for harness.evaluation.stats: hand-checkable values, validation, calibration."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sst

from harness.evaluation import stats

# --------------------------------------------------------------------------
# TestResult
# --------------------------------------------------------------------------


def test_result_to_dict_is_json_safe():
    r = stats.TestResult(
        statistic=math.inf, p_value=0.0, effect=np.float64(1.5),
        ci_low=math.nan, ci_high=math.nan, significant=np.bool_(True),
        method="m", alternative="two-sided", alpha=0.05, n=np.int64(5),
    )
    d = r.to_dict()
    assert d["statistic"] is None and d["ci_low"] is None and d["ci_high"] is None
    assert type(d["effect"]) is float and type(d["significant"]) is bool
    assert type(d["n"]) is int
    json.dumps(d, allow_nan=False)
    assert stats.TestResult.__test__ is False


def test_result_is_frozen():
    r = stats.compare_paired([1, 2, 3], [2, 3, 5], n_boot=0)
    with pytest.raises(Exception):
        r.p_value = 0.5  # type: ignore[misc]


# --------------------------------------------------------------------------
# bootstrap_ci
# --------------------------------------------------------------------------


def test_bootstrap_ci_brackets_mean_and_is_seeded():
    v = np.arange(1.0, 11.0)
    lo, hi = stats.bootstrap_ci(v, seed=3)
    assert lo < v.mean() < hi
    assert (lo, hi) == stats.bootstrap_ci(v, seed=3)
    assert 1.0 <= lo and hi <= 10.0


def test_bootstrap_ci_degenerate_and_custom_statistic():
    assert stats.bootstrap_ci([2.5, 2.5, 2.5]) == (2.5, 2.5)
    lo, hi = stats.bootstrap_ci([1, 2, 3, 4, 5], statistic=np.median, n_boot=500)
    assert 1.0 <= lo <= 3.0 <= hi <= 5.0
    # a statistic without an ``axis`` argument also works
    lo, hi = stats.bootstrap_ci([1, 2, 3, 4, 5], lambda s: s.max() - s.min(), n_boot=300)
    assert 0.0 <= lo <= hi <= 4.0


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(values=[1.0]),
        dict(values=[1.0, np.nan, 2.0]),
        dict(values=[1.0, 2.0], confidence=1.5),
        dict(values=[1.0, 2.0], n_boot=0),
    ],
)
def test_bootstrap_ci_validation(kwargs):
    with pytest.raises(ValueError):
        stats.bootstrap_ci(**kwargs)


# --------------------------------------------------------------------------
# compare_paired
# --------------------------------------------------------------------------


def test_paired_t_matches_hand_value():
    a = [1, 2, 3, 4, 5]
    b = [2, 3, 4, 5, 7]
    r = stats.compare_paired(a, b)
    # d = [1,1,1,1,2]: mean 1.2, sd sqrt(0.2), se 0.2 -> t = 6 on 4 df
    assert r.statistic == pytest.approx(6.0)
    assert r.p_value == pytest.approx(2 * sst.t.sf(6.0, 4))
    assert r.p_value == pytest.approx(sst.ttest_rel(b, a).pvalue)
    assert r.effect == pytest.approx(1.2)
    assert r.ci_low <= 1.2 <= r.ci_high
    assert 1.0 <= r.ci_low and r.ci_high <= 2.0
    assert r.significant and r.n == 5 and r.alternative == "two-sided"
    assert r.method.startswith("paired t-test (n=5 seeds")
    assert "0.0625" in r.method  # smallest attainable signed-rank p, 2/2**5


def test_paired_one_sided():
    a, b = [1, 2, 3, 4, 5], [2, 3, 4, 5, 7]
    g = stats.compare_paired(a, b, alternative="greater")
    l = stats.compare_paired(a, b, alternative="less")
    assert g.p_value == pytest.approx(sst.t.sf(6.0, 4))
    assert l.p_value == pytest.approx(1 - sst.t.sf(6.0, 4))
    assert g.significant and not l.significant


def test_paired_rank_exact_value():
    a = np.zeros(8)
    b = np.array([1.0, 2, 3, 4, 5, 6, 7, -8])
    r = stats.compare_paired(a, b, method="rank")
    # W- = 8 (rank of |-8|); exact two-sided p = 2 * P(W <= 8) over 2**8 flips
    ranks = np.arange(1, 9)
    sums = np.array([ranks[np.array(list(np.binary_repr(m, 8))) == "1"].sum()
                     for m in range(256)])
    expected = 2 * np.mean(sums <= 8)
    assert r.p_value == pytest.approx(expected)
    assert "Wilcoxon signed-rank test, exact" in r.method
    assert "requested" in r.method


def test_paired_auto_switches_to_rank_for_non_normal_differences():
    d = np.array([0.1, 0.2, 0.15, 0.12, 0.18, 0.11, 0.14, 0.16, 0.13, 5.0])
    a = np.linspace(0.5, 0.6, 10)
    r = stats.compare_paired(a, a + d)
    assert "Wilcoxon" in r.method and "fail" in r.method and "Shapiro" in r.method
    ok = stats.compare_paired(a, a + np.array([0.1, -0.2, 0.3, 0.0, 0.1, 0.25,
                                               -0.05, 0.15, 0.2, 0.05]))
    assert "paired t-test" in ok.method and "pass" in ok.method


def test_paired_rank_with_zero_differences_and_all_zero():
    r = stats.compare_paired([1, 2, 3, 4, 5, 6], [1, 2, 3, 5, 6, 7], method="rank")
    assert 0.0 < r.p_value <= 1.0  # zeros dropped, no error
    z = stats.compare_paired([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], method="rank")
    assert z.p_value == 1.0 and not z.significant and z.effect == 0.0
    z = stats.compare_paired([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    assert z.p_value == 1.0 and "zero" in z.method


def test_paired_constant_nonzero_differences():
    a = np.array([0.61, 0.62, 0.64, 0.60])
    r = stats.compare_paired(a, a + 0.01)  # equal up to float rounding
    assert r.p_value == 0.0 and r.significant and math.isinf(r.statistic)
    assert "infinite" in r.method
    assert r.to_dict()["statistic"] is None
    opp = stats.compare_paired(a, a + 0.01, alternative="less")
    assert opp.p_value == 1.0 and not opp.significant


@pytest.mark.parametrize(
    "a,b,kwargs",
    [
        ([1, 2, 3], [1, 2], {}),
        ([1], [2], {}),
        ([1, np.nan, 3], [1, 2, 3], {}),
        ([1, 2, 3], [1, 2, np.inf], {}),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], {}),
        ([1, 2, 3], [2, 3, 5], {"alternative": "bigger"}),
        ([1, 2, 3], [2, 3, 5], {"method": "wilcoxon"}),
        ([1, 2, 3], [2, 3, 5], {"alpha": 0.0}),
        ([1, 2, 3], [2, 3, 5], {"n_boot": -1}),
    ],
)
def test_paired_validation(a, b, kwargs):
    with pytest.raises(ValueError):
        stats.compare_paired(a, b, **kwargs)


def test_n_boot_zero_skips_ci():
    r = stats.compare_paired([1, 2, 3, 4], [2, 2, 4, 6], n_boot=0)
    assert math.isnan(r.ci_low) and math.isnan(r.ci_high)
    u = stats.compare_unpaired([1, 2, 3, 4], [2, 2, 4, 6], n_boot=0)
    assert math.isnan(u.ci_low) and math.isnan(u.ci_high)


# --------------------------------------------------------------------------
# compare_unpaired
# --------------------------------------------------------------------------


def test_unpaired_welch_matches_scipy():
    a = [0.70, 0.72, 0.71, 0.69, 0.73]
    b = [0.74, 0.78, 0.75, 0.77]
    r = stats.compare_unpaired(a, b)
    ref = sst.ttest_ind(b, a, equal_var=False)
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.effect == pytest.approx(np.mean(b) - np.mean(a))
    assert r.ci_low <= r.effect <= r.ci_high
    assert r.n == 9 and "Welch" in r.method and "fewer than 6" in r.method


def test_unpaired_rank_exact_value():
    a = [1, 2, 3]
    b = [4, 5, 6]
    r = stats.compare_unpaired(a, b, method="rank", alternative="greater")
    # b entirely above a: U = 9, exact one-sided p = 1 / C(6, 3) = 1/20
    assert r.statistic == 9.0
    assert r.p_value == pytest.approx(1 / 20)
    two = stats.compare_unpaired(a, b, method="rank")
    assert two.p_value == pytest.approx(2 / 20)


def test_unpaired_auto_rank_for_outliers_and_constant_groups():
    rng = np.random.default_rng(0)
    a = rng.normal(size=12)
    b = np.r_[rng.normal(size=11) + 1.0, 40.0]
    r = stats.compare_unpaired(a, b)
    assert "Mann-Whitney" in r.method and "fails" in r.method
    same = stats.compare_unpaired([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert same.p_value == 1.0
    diff = stats.compare_unpaired([1.0, 1.0, 1.0], [2.0, 2.0])
    assert diff.p_value == 0.0 and math.isinf(diff.statistic)


def test_unpaired_validation():
    with pytest.raises(ValueError):
        stats.compare_unpaired([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        stats.compare_unpaired([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError):
        stats.compare_unpaired([1.0, 2.0], [1.0, 2.0], alternative="up")


# --------------------------------------------------------------------------
# mcnemar
# --------------------------------------------------------------------------


def _mcnemar_arrays(b01, b10, both_right=0, both_wrong=0):
    a = [False] * b01 + [True] * b10 + [True] * both_right + [False] * both_wrong
    b = [True] * b01 + [False] * b10 + [True] * both_right + [False] * both_wrong
    return np.array(a), np.array(b)


def test_mcnemar_exact_hand_value():
    a, b = _mcnemar_arrays(10, 0, both_right=30, both_wrong=10)
    r = stats.mcnemar(a, b)
    assert r.p_value == pytest.approx(2 * 0.5**10)
    assert r.statistic == 10
    assert r.effect == pytest.approx(10 / 50)
    assert r.ci_low <= r.effect <= r.ci_high
    assert r.n == 50 and r.significant and "exact" in r.method
    g = stats.mcnemar(a, b, alternative="greater")
    assert g.p_value == pytest.approx(0.5**10)
    l = stats.mcnemar(a, b, alternative="less")
    assert l.p_value == pytest.approx(1.0)


def test_mcnemar_chi_square_branch():
    a, b = _mcnemar_arrays(20, 10, both_right=60, both_wrong=10)
    r = stats.mcnemar(a, b)
    chi2 = (abs(20 - 10) - 1) ** 2 / 30
    assert r.statistic == pytest.approx(chi2)
    assert r.p_value == pytest.approx(sst.chi2.sf(chi2, 1))
    assert "chi-square" in r.method
    # one-sided always exact
    g = stats.mcnemar(a, b, alternative="greater")
    assert g.p_value == pytest.approx(sst.binomtest(20, 30, 0.5, "greater").pvalue)
    assert "exact" in g.method


def test_mcnemar_no_discordant_pairs_and_ints():
    r = stats.mcnemar([1, 1, 0, 0], [1, 1, 0, 0])
    assert r.p_value == 1.0 and r.effect == 0.0 and not r.significant


@pytest.mark.parametrize(
    "a,b",
    [
        ([True, False], [True]),
        ([True], [True]),
        ([0.5, 1.0], [1.0, 0.0]),
        ([np.nan, 1.0], [1.0, 0.0]),
        (["yes", "no"], ["no", "no"]),
    ],
)
def test_mcnemar_validation(a, b):
    with pytest.raises(ValueError):
        stats.mcnemar(a, b)


# --------------------------------------------------------------------------
# Holm
# --------------------------------------------------------------------------


def test_holm_hand_values():
    adj, rej = stats.holm([0.01, 0.04, 0.03])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06])
    assert rej.tolist() == [True, False, False]


def test_holm_monotone_capped_and_empty():
    p = np.array([0.5, 0.001, 0.2, 0.9, 0.04])
    adj, _ = stats.holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    assert np.all(adj <= 1.0) and np.all(adj >= p)
    adj0, rej0 = stats.holm([])
    assert adj0.size == 0 and rej0.size == 0
    with pytest.raises(ValueError):
        stats.holm([0.1, np.nan])
    with pytest.raises(ValueError):
        stats.holm([0.1, 1.2])


def test_apply_holm():
    rs = [
        stats.compare_paired([1, 2, 3, 4, 5], [2, 3, 4, 5, 7], n_boot=0),
        stats.mcnemar(*_mcnemar_arrays(6, 1, both_right=20)),
    ]
    out = stats.apply_holm(rs, alpha=0.05)
    adj, rej = stats.holm([r.p_value for r in rs])
    assert [o.p_value for o in out] == pytest.approx(adj.tolist())
    assert [o.significant for o in out] == rej.tolist()
    assert all(o.method.endswith(", Holm-adjusted over 2 tests") for o in out)
    assert rs[0].p_value != out[0].p_value  # originals untouched
    assert stats.apply_holm([]) == []


# --------------------------------------------------------------------------
# linear CKA
# --------------------------------------------------------------------------


def test_cka_identity_rotation_scaling_and_independence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    assert stats.linear_cka(x, x) == pytest.approx(1.0)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert stats.linear_cka(x, 3.7 * x @ q + 5.0) == pytest.approx(1.0)
    y = rng.normal(size=(200, 8))
    base = stats.linear_cka(x, y)
    q8, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert stats.linear_cka(x, y @ q8) == pytest.approx(base)
    assert stats.linear_cka(x, y) == pytest.approx(stats.linear_cka(y, x))
    big = stats.linear_cka(rng.normal(size=(1000, 10)), rng.normal(size=(1000, 10)))
    assert big < 0.05


def test_cka_matches_kernel_formula():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 7))
    y[:, 0] += 2 * x[:, 0]
    h = np.eye(30) - 1 / 30
    k, l = h @ x @ x.T @ h, h @ y @ y.T @ h
    hsic = lambda p, q: np.sum(p * q)  # noqa: E731
    expected = hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))
    assert stats.linear_cka(x, y) == pytest.approx(expected)


def test_cka_validation():
    with pytest.raises(ValueError):
        stats.linear_cka(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError):
        stats.linear_cka(np.ones(5), np.ones(5))
    with pytest.raises(ValueError):
        stats.linear_cka(np.ones((5, 2)), np.arange(10.0).reshape(5, 2))
    with pytest.raises(ValueError):
        stats.linear_cka(np.full((5, 2), np.nan), np.ones((5, 2)))


# --------------------------------------------------------------------------
# Two-sample tests
# --------------------------------------------------------------------------


def test_classifier_two_sample_same_vs_shifted():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 40)), rng.normal(size=(80, 40))
    same = stats.classifier_two_sample_test(x, y, n_permutations=50, seed=1, n_boot=200)
    assert same.p_value > 0.05 and not same.significant
    assert same.alternative == "greater" and same.n == 160
    assert same.effect == pytest.approx(same.statistic - 0.5)
    shifted = stats.classifier_two_sample_test(x, y + 0.5, n_permutations=50, seed=1,
                                               n_boot=200)
    assert shifted.p_value == pytest.approx(1 / 51) and shifted.significant
    assert shifted.statistic > 0.8
    assert shifted.ci_low <= shifted.effect <= shifted.ci_high
    again = stats.classifier_two_sample_test(x, y + 0.5, n_permutations=50, seed=1,
                                             n_boot=200)
    assert again == shifted  # deterministic given the seed
    assert "32 whitened PCA components of 40 features" in shifted.method


def test_classifier_two_sample_stops_early_only_when_it_cannot_be_significant():
    """Besag-Clifford: without a shift the relabellings stop once 10 reach the observed AUC, and
    the decision is the full run's; with a shift every relabelling runs."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    seq = stats.classifier_two_sample_test(x, y, n_permutations=80, seed=2, n_boot=0)
    full = stats.classifier_two_sample_test(x, y, n_permutations=80, seed=2, n_boot=0, stop_after=None)
    assert "stopped after" in seq.method and seq.p_value >= 10 / 80
    assert seq.significant == full.significant is False
    assert seq.statistic == full.statistic
    shifted = stats.classifier_two_sample_test(x, y + 0.6, n_permutations=40, seed=2, n_boot=0)
    assert "stopped after" not in shifted.method and shifted.p_value == pytest.approx(1 / 41)
    with pytest.raises(ValueError):
        stats.classifier_two_sample_test(x, y, stop_after=0)


def test_classifier_two_sample_validation():
    with pytest.raises(ValueError):
        stats.classifier_two_sample_test(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError):
        stats.classifier_two_sample_test(np.zeros((3, 3)), np.zeros((10, 3)))
    with pytest.raises(ValueError):
        stats.classifier_two_sample_test(np.zeros(10), np.zeros(10))


def test_mmd_same_vs_shifted():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 10)), rng.normal(size=(60, 10))
    same = stats.mmd_rbf_test(x, y, n_permutations=200, seed=2)
    assert same.p_value > 0.05 and not same.significant
    shifted = stats.mmd_rbf_test(x, y + 0.7, n_permutations=200, seed=2)
    assert shifted.p_value == pytest.approx(1 / 201) and shifted.significant
    assert shifted.effect == shifted.statistic > same.statistic
    assert math.isnan(shifted.ci_low)


def test_mmd_matches_direct_unbiased_estimate():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(5, 2)) + 0.3
    z = np.vstack([x, y])
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    sigma2 = np.median(d2[np.triu_indices(12, 1)])
    k = np.exp(-d2 / (2 * sigma2))
    kxx, kyy, kxy = k[:7, :7], k[7:, 7:], k[:7, 7:]
    expected = ((kxx.sum() - 7) / 42 + (kyy.sum() - 5) / 20 - 2 * kxy.mean())
    assert stats.mmd_rbf_test(x, y, n_permutations=10).statistic == pytest.approx(expected)
    with pytest.raises(ValueError):
        stats.mmd_rbf_test(x[:1], y)


# --------------------------------------------------------------------------
# Power
# --------------------------------------------------------------------------


def test_power_paired_t_values():
    assert stats.power_paired_t(0.0, 10) == pytest.approx(0.05)
    assert stats.power_paired_t(0.0, 10, alternative="greater") == pytest.approx(0.05)
    assert stats.power_paired_t(2.0, 5) > 0.85
    assert stats.power_paired_t(1.0, 10) > stats.power_paired_t(1.0, 5)
    assert stats.power_paired_t(1.0, 5, alternative="greater") > stats.power_paired_t(1.0, 5)
    assert stats.power_paired_t(-1.0, 5, alternative="greater") < 0.05
    with pytest.raises(ValueError):
        stats.power_paired_t(1.0, 1)


# --------------------------------------------------------------------------
# Calibration and power by simulation (fixed seeds; ~2 s in total)
# --------------------------------------------------------------------------

N_SIMS = 2000
ALPHA = 0.05
FPR_BOUND = ALPHA + 0.02


def _rate(flags) -> float:
    return float(np.mean(list(flags)))


def test_calibration_paired_auto_n5():
    rng = np.random.default_rng(101)
    fpr = _rate(
        stats.compare_paired(rng.normal(size=5), rng.normal(size=5), n_boot=0).significant
        for _ in range(N_SIMS)
    )
    assert fpr <= FPR_BOUND


def test_calibration_paired_auto_n10_mixes_t_and_rank():
    rng = np.random.default_rng(102)
    fpr = _rate(
        stats.compare_paired(rng.exponential(size=10), rng.exponential(size=10),
                             n_boot=0).significant
        for _ in range(1000)
    )
    assert fpr <= FPR_BOUND


def test_calibration_unpaired_auto_n5():
    rng = np.random.default_rng(103)
    fpr = _rate(
        stats.compare_unpaired(rng.normal(size=5), rng.normal(size=5), n_boot=0).significant
        for _ in range(N_SIMS)
    )
    assert fpr <= FPR_BOUND


def test_calibration_mcnemar_independent_70pct():
    rng = np.random.default_rng(104)
    fpr = _rate(
        stats.mcnemar(rng.random(200) < 0.7, rng.random(200) < 0.7).significant
        for _ in range(N_SIMS)
    )
    assert fpr <= FPR_BOUND


def test_calibration_mmd_small():
    rng = np.random.default_rng(105)
    fpr = _rate(
        stats.mmd_rbf_test(rng.normal(size=(30, 4)), rng.normal(size=(30, 4)),
                           n_permutations=99, seed=i).significant
        for i in range(300)
    )
    assert fpr <= ALPHA + 0.04  # 300 sims: wider margin (3 standard errors)


def test_power_paired_t_d2_n5_simulated_matches_analytic():
    rng = np.random.default_rng(106)
    power = _rate(
        stats.compare_paired(np.zeros(5), rng.normal(2.0, 1.0, size=5), n_boot=0).significant
        for _ in range(N_SIMS)
    )
    assert power > 0.5
    assert power == pytest.approx(stats.power_paired_t(2.0, 5), abs=0.03)


def test_power_unpaired_and_mcnemar():
    rng = np.random.default_rng(107)
    power_u = _rate(
        stats.compare_unpaired(rng.normal(size=5), rng.normal(2.0, 1.0, size=5),
                               n_boot=0).significant
        for _ in range(1000)
    )
    assert power_u > 0.5
    power_m = _rate(
        stats.mcnemar(rng.random(200) < 0.70, rng.random(200) < 0.85).significant
        for _ in range(1000)
    )
    assert power_m > 0.8


def test_simulation_with_bootstrap_ci_is_consistent():
    rng = np.random.default_rng(108)
    for _ in range(50):
        a, b = rng.normal(size=5), rng.normal(size=5) + 1
        r = stats.compare_paired(a, b, n_boot=200, seed=1)
        assert r.ci_low <= r.effect <= r.ci_high
