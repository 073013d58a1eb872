"""Statistics for comparing transfer-learning runs: pure functions on arrays.

Every function here takes plain arrays (lists or numpy arrays), returns
plain values or a frozen :class:`TestResult`, never prints, and takes an
explicit ``seed`` wherever randomness is involved (resampling, permutations,
cross-validation folds), so the same inputs always give the same answer.

Shapes used in the docstrings:

* ``n_seeds``    -- one value per training seed (e.g. final accuracy per seed).
* ``n_examples`` -- one row per evaluation example.
* ``n_features`` -- width of a feature / embedding matrix.

Which test is used when, and why, is explained in ``docs/STATISTICS.md``.

Conventions shared by all tests:

* ``alternative`` is about ``b`` relative to ``a`` (or ``y`` relative to
  ``x``): ``"greater"`` means b - a > 0, ``"less"`` means b - a < 0.
* ``significant`` is ``p_value <= alpha``.
* Confidence intervals are two-sided at level ``1 - alpha`` and are for
  ``effect``; they are not adjusted for multiple testing.
* ``n_boot=0`` skips the bootstrap; the interval is then ``(nan, nan)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np
from scipy import stats as _st

__all__ = [
    "TestResult",
    "bootstrap_ci",
    "compare_paired",
    "compare_unpaired",
    "mcnemar",
    "holm",
    "apply_holm",
    "linear_cka",
    "classifier_two_sample_test",
    "mmd_rbf_test",
    "power_paired_t",
]

_ALTERNATIVES = ("two-sided", "greater", "less")
_METHODS = ("auto", "t", "rank")
# Below this many seeds "auto" always uses the t-test (see compare_paired).
_MIN_RANK_N = 6
# Discordant-pair count from which McNemar switches to the chi-square form.
_MCNEMAR_EXACT_BELOW = 25
# Ceiling on the number of sign flips / relabellings enumerated exactly.
_MAX_ENUMERATION = 9999


# --------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class TestResult:
    """Outcome of one statistical comparison.

    Attributes:
        statistic: the test statistic (t, W, U, b01, chi2, AUC, MMD^2, ...).
        p_value: p-value for ``alternative`` (after Holm if ``apply_holm``).
        effect: effect size on the natural scale of the data (see each
            function; e.g. mean(b - a)).
        ci_low, ci_high: two-sided ``1 - alpha`` confidence interval for
            ``effect``; ``nan`` when not computed.
        significant: ``p_value <= alpha``.
        method: a sentence naming the test and why it was chosen.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
        alpha: significance level used.
        n: number of units the test ran on (seeds, examples or rows).
    """

    __test__ = False  # not a pytest test class despite the name

    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    significant: bool
    method: str
    alternative: str
    alpha: float
    n: int

    def to_dict(self) -> dict:
        """JSON-safe dict: plain float/bool/str/int; NaN and +-inf become None."""
        return {
            "statistic": _json_float(self.statistic),
            "p_value": _json_float(self.p_value),
            "effect": _json_float(self.effect),
            "ci_low": _json_float(self.ci_low),
            "ci_high": _json_float(self.ci_high),
            "significant": bool(self.significant),
            "method": str(self.method),
            "alternative": str(self.alternative),
            "alpha": _json_float(self.alpha),
            "n": int(self.n),
        }


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _as_1d(values, name: str, min_len: int = 2) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] < min_len:
        raise ValueError(
            f"{name} needs at least {min_len} values, got {arr.shape[0]}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _as_2d(values, name: str, min_rows: int = 2) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_examples, n_features), got shape {arr.shape}"
        )
    if arr.shape[0] < min_rows:
        raise ValueError(
            f"{name} needs at least {min_rows} rows, got {arr.shape[0]}"
        )
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return alpha


def _check_alternative(alternative: str) -> str:
    if alternative not in _ALTERNATIVES:
        raise ValueError(
            f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}"
        )
    return alternative


def _check_method(method: str) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    return method


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _tie_tol(*arrays: np.ndarray) -> float:
    """Tolerance below which differences are float rounding of the inputs."""
    scale = max(float(np.max(np.abs(a))) for a in arrays)
    return 16.0 * np.finfo(float).eps * scale


def _infinite_t_p(direction: float, alternative: str) -> float:
    """p-value of an infinite t statistic with sign ``direction``."""
    if alternative == "two-sided":
        return 0.0
    if alternative == "greater":
        return 0.0 if direction > 0 else 1.0
    return 0.0 if direction < 0 else 1.0


def _result(statistic, p, effect, ci, alpha, method, alternative, n) -> TestResult:
    p = float(min(max(float(p), 0.0), 1.0))
    return TestResult(
        statistic=float(statistic),
        p_value=p,
        effect=float(effect),
        ci_low=float(ci[0]),
        ci_high=float(ci[1]),
        significant=bool(p <= alpha),
        method=method,
        alternative=alternative,
        alpha=float(alpha),
        n=int(n),
    )


# --------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------


def _apply_statistic(statistic: Callable, samples: np.ndarray) -> np.ndarray:
    """statistic over axis 1 of ``samples`` (n_boot, n, ...) -> (n_boot,)."""
    n_boot = samples.shape[0]
    try:
        out = np.asarray(statistic(samples, axis=1), dtype=float)
        if out.shape == (n_boot,):
            return out
    except TypeError:  # statistic does not accept ``axis``
        pass
    return np.array([float(statistic(s)) for s in samples])


def bootstrap_ci(
    values,
    statistic: Callable = np.mean,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed=0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval.

    Args:
        values: shape (n,) -- e.g. (n_seeds,) per-seed scores or differences.
            Resampling is over the first axis; ``statistic`` must map a sample
            to a scalar (it is called with ``axis=1`` on a batch of resamples
            if it accepts that, else once per resample).
        statistic: function of a sample, default ``np.mean``.
        confidence: two-sided coverage in (0, 1).
        n_boot: number of bootstrap resamples (>= 1).
        seed: seed for ``np.random.default_rng``.

    Returns:
        ``(low, high)`` as floats. If all values are equal the interval is
        degenerate, ``(v, v)`` with ``v = statistic(values)``.

    Raises:
        ValueError: fewer than 2 values, NaN/inf, or a bad argument.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        raise ValueError("values must be an array, got a scalar")
    if arr.shape[0] < 2:
        raise ValueError(f"values needs at least 2 entries, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("values contains NaN or infinite values")
    confidence = float(confidence)
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_boot = _check_count(n_boot, "n_boot", 1)

    if np.all(arr == arr[0]):
        v = float(statistic(arr))
        return (v, v)

    rng = np.random.default_rng(seed)
    n = arr.shape[0]
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = _apply_statistic(statistic, arr[idx])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boots, [tail, 1.0 - tail])
    return (float(low), float(high))


def _bootstrap_diff_ci(a, b, confidence, n_boot, seed) -> tuple[float, float]:
    """CI of mean(b) - mean(a), resampling each group independently."""
    if n_boot == 0:
        return (math.nan, math.nan)
    if np.all(a == a[0]) and np.all(b == b[0]):
        v = float(b.mean() - a.mean())
        return (v, v)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(n_boot, a.size))
    ib = rng.integers(0, b.size, size=(n_boot, b.size))
    boots = b[ib].mean(axis=1) - a[ia].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boots, [tail, 1.0 - tail])
    return (float(low), float(high))


# --------------------------------------------------------------------------
# Seed-level comparisons
# --------------------------------------------------------------------------


def _shapiro_p(values: np.ndarray) -> float:
    """Shapiro-Wilk p-value; 0 for zero-range data (not a normal sample)."""
    if np.ptp(values) == 0:
        return 0.0
    return float(_st.shapiro(values).pvalue)


def _min_signed_rank_p(n: int, alternative: str) -> float:
    return (2.0 if alternative == "two-sided" else 1.0) / 2.0**n


def _wilcoxon(d: np.ndarray, alternative: str, tol: float):
    """Wilcoxon signed-rank test choosing exact/enumerated/normal explicitly."""
    nonzero = np.abs(d) > tol
    d = np.where(nonzero, d, 0.0)
    abs_nz = np.abs(d[nonzero])
    has_zeros = not np.all(nonzero)
    has_ties = np.unique(abs_nz).size < abs_nz.size
    n = d.size
    if not has_zeros and not has_ties and n <= 50:
        kind = "exact"
        res = _st.wilcoxon(d, alternative=alternative, method="exact")
    elif 2**n <= _MAX_ENUMERATION:
        kind = "exact by enumerating all sign flips (ties/zeros present)"
        res = _st.wilcoxon(
            d,
            alternative=alternative,
            method=_st.PermutationMethod(n_resamples=_MAX_ENUMERATION),
        )
    else:
        kind = "normal approximation with continuity correction"
        res = _st.wilcoxon(d, alternative=alternative, method="asymptotic")
    return float(res.statistic), float(res.pvalue), kind


def compare_paired(
    a,
    b,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    method: str = "auto",
    n_boot: int = 2000,
    seed=0,
) -> TestResult:
    """Compare two conditions run on the same seeds (paired by index).

    Args:
        a: shape (n_seeds,), metric of the baseline per seed.
        b: shape (n_seeds,), metric of the candidate per seed; ``b[i]`` and
            ``a[i]`` share seed ``i``.
        alpha: significance level.
        alternative: ``"two-sided"``, ``"greater"`` (b - a > 0) or
            ``"less"`` (b - a < 0).
        method: ``"t"`` (paired t-test, ``scipy.stats.ttest_rel``),
            ``"rank"`` (Wilcoxon signed-rank, ``scipy.stats.wilcoxon``; exact
            when there are no ties or zero differences and n <= 50, exact by
            enumerating the 2**n sign flips when there are ties/zeros and
            n <= 13, else the normal approximation), or ``"auto"``: the
            t-test when n_seeds < 6 (the signed-rank test is too coarse: its
            smallest two-sided p is 2/2**n = 0.0625 at n = 5, and a Shapiro-
            Wilk check on < 6 values says nothing), or when the differences
            pass Shapiro-Wilk (p > 0.05); the rank test otherwise.
        n_boot: bootstrap resamples for the CI of mean(b - a); 0 skips it.
        seed: seed for the bootstrap.

    Returns:
        TestResult with ``effect = mean(b - a)``, ``n = n_seeds``. Zero-
        variance differences under the t-test: all differences equal and
        nonzero means t is infinite, reported as p = 0 (p = 1 if the sign
        opposes a one-sided alternative); all differences zero gives p = 1.
        Differences are treated as equal/zero up to float rounding of inputs.

    Raises:
        ValueError: shapes differ, fewer than 2 seeds, NaN/inf, bad option.
    """
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same length (paired by seed), "
            f"got {a.size} and {b.size}"
        )
    alpha = _check_alpha(alpha)
    alternative = _check_alternative(alternative)
    method = _check_method(method)
    n_boot = _check_count(n_boot, "n_boot", 0)

    n = a.size
    d = b - a
    effect = float(d.mean())
    tol = _tie_tol(a, b)
    all_zero = bool(np.all(np.abs(d) <= tol))
    constant = bool(np.ptp(d) <= tol)

    if n_boot == 0:
        ci = (math.nan, math.nan)
    elif constant:
        ci = (effect, effect)
    else:
        ci = bootstrap_ci(d, np.mean, 1.0 - alpha, n_boot, seed)

    if all_zero:
        name = {"t": "paired t-test", "rank": "Wilcoxon signed-rank test"}.get(
            method, "paired test"
        )
        return _result(
            0.0, 1.0, 0.0, (0.0, 0.0) if n_boot else ci, alpha,
            f"{name} (n={n} seeds; all differences are zero, so p = 1)",
            alternative, n,
        )

    # Decide which test.
    if method == "t":
        use_t, why = True, "requested"
    elif method == "rank":
        use_t, why = False, "requested"
    elif n < _MIN_RANK_N:
        use_t = True
        p_min = _min_signed_rank_p(n, alternative)
        if p_min > alpha:
            why = (
                f"a rank test cannot reach p<{alpha:g} with fewer than "
                f"{_MIN_RANK_N} pairs: smallest attainable "
                f"{'two' if alternative == 'two-sided' else 'one'}-sided "
                f"signed-rank p is {p_min:.4g}"
            )
        else:
            why = (
                f"with fewer than {_MIN_RANK_N} pairs the signed-rank test is "
                f"very coarse (smallest attainable one-sided p is {p_min:.4g}) "
                f"and a normality check is uninformative"
            )
    elif constant:
        use_t = True
        why = "differences are all equal, so normality cannot be checked"
    else:
        sw = _shapiro_p(d)
        use_t = sw > 0.05
        why = (
            f"differences {'pass' if use_t else 'fail'} the Shapiro-Wilk "
            f"normality check, p={_fmt_p(sw)}"
        )

    if use_t:
        if constant:
            stat = math.copysign(math.inf, effect)
            p = _infinite_t_p(effect, alternative)
            desc = (
                f"paired t-test (n={n} seeds; {why}; all differences equal "
                f"{effect:.4g} with zero variance, so t is infinite and p is "
                f"reported as {p:g})"
            )
            return _result(stat, p, effect, ci, alpha, desc, alternative, n)
        res = _st.ttest_rel(b, a, alternative=alternative)
        desc = f"paired t-test (n={n} seeds; {why})"
        return _result(res.statistic, res.pvalue, effect, ci, alpha, desc,
                       alternative, n)

    stat, p, kind = _wilcoxon(d, alternative, tol)
    desc = f"Wilcoxon signed-rank test, {kind} (n={n} seeds; {why})"
    return _result(stat, p, effect, ci, alpha, desc, alternative, n)


def _mannwhitney(a, b, alternative):
    """Mann-Whitney U of b vs a choosing exact/enumerated/normal explicitly."""
    pooled = np.concatenate([a, b])
    has_ties = np.unique(pooled).size < pooled.size
    n_relabel = math.comb(a.size + b.size, a.size)
    if not has_ties and n_relabel <= 10**7:
        kind = "exact"
        res = _st.mannwhitneyu(b, a, alternative=alternative, method="exact")
    elif n_relabel <= _MAX_ENUMERATION:
        kind = "exact by enumerating all relabellings (ties present)"
        res = _st.mannwhitneyu(
            b, a, alternative=alternative,
            method=_st.PermutationMethod(n_resamples=_MAX_ENUMERATION),
        )
    else:
        kind = "normal approximation with tie and continuity correction"
        res = _st.mannwhitneyu(b, a, alternative=alternative,
                               method="asymptotic")
    return float(res.statistic), float(res.pvalue), kind


def compare_unpaired(
    a,
    b,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    method: str = "auto",
    n_boot: int = 2000,
    seed=0,
) -> TestResult:
    """Compare two independent groups of runs (no pairing by seed).

    Args:
        a: shape (n_a,), metric per run of the baseline.
        b: shape (n_b,), metric per run of the candidate.
        alpha: significance level.
        alternative: ``"two-sided"``, ``"greater"`` (b above a) or ``"less"``.
        method: ``"t"`` (Welch's t-test, ``ttest_ind(equal_var=False)``),
            ``"rank"`` (Mann-Whitney U, exact when there are no ties, exact by
            enumerating relabellings when there are ties and at most 9999 of
            them, else the normal approximation), or ``"auto"``: Welch when
            the smaller group has fewer than 6 runs (a Shapiro-Wilk check on
            so few values is uninformative and the rank test is coarse) or
            when both groups pass Shapiro-Wilk (p > 0.05); Mann-Whitney
            otherwise.
        n_boot: bootstrap resamples for the CI (each group resampled
            independently); 0 skips it.
        seed: seed for the bootstrap.

    Returns:
        TestResult with ``effect = mean(b) - mean(a)``, ``n = n_a + n_b``.
        If both groups have zero variance Welch's t is undefined: equal means
        give p = 1, different means give an infinite t and p = 0 (p = 1 if
        the sign opposes a one-sided alternative).

    Raises:
        ValueError: fewer than 2 values in a group, NaN/inf, bad option.
    """
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    alpha = _check_alpha(alpha)
    alternative = _check_alternative(alternative)
    method = _check_method(method)
    n_boot = _check_count(n_boot, "n_boot", 0)

    n_a, n_b = a.size, b.size
    n = n_a + n_b
    effect = float(b.mean() - a.mean())
    ci = _bootstrap_diff_ci(a, b, 1.0 - alpha, n_boot, seed)
    tol = _tie_tol(a, b)
    both_constant = bool(np.ptp(a) <= tol and np.ptp(b) <= tol)
    sizes = f"n={n_a}+{n_b} runs"

    if method == "t":
        use_t, why = True, "requested"
    elif method == "rank":
        use_t, why = False, "requested"
    elif min(n_a, n_b) < _MIN_RANK_N:
        use_t = True
        p_min = (2.0 if alternative == "two-sided" else 1.0) / math.comb(n, n_a)
        why = (
            f"fewer than {_MIN_RANK_N} runs in a group, too few for a "
            f"normality check; Mann-Whitney's smallest attainable p would be "
            f"{p_min:.2g}"
        )
        if p_min > alpha:
            why += f", so it could not reach p<{alpha:g}"
    elif both_constant:
        use_t = True
        why = "both groups are constant, so normality cannot be checked"
    else:
        sw_a, sw_b = _shapiro_p(a), _shapiro_p(b)
        use_t = sw_a > 0.05 and sw_b > 0.05
        why = (
            f"Shapiro-Wilk normality check p={_fmt_p(sw_a)} (a), "
            f"p={_fmt_p(sw_b)} (b): "
            + ("both pass" if use_t else "at least one fails")
        )

    if use_t:
        if both_constant:
            if abs(effect) <= tol:
                desc = (f"Welch t-test ({sizes}; {why}; both groups constant "
                        f"and equal, so p = 1)")
                return _result(0.0, 1.0, 0.0, ci, alpha, desc, alternative, n)
            p = _infinite_t_p(effect, alternative)
            desc = (f"Welch t-test ({sizes}; {why}; both groups have zero "
                    f"variance and different means, so t is infinite and p is "
                    f"reported as {p:g})")
            return _result(math.copysign(math.inf, effect), p, effect, ci,
                           alpha, desc, alternative, n)
        res = _st.ttest_ind(b, a, equal_var=False, alternative=alternative)
        desc = f"Welch t-test ({sizes}; {why})"
        return _result(res.statistic, res.pvalue, effect, ci, alpha, desc,
                       alternative, n)

    stat, p, kind = _mannwhitney(a, b, alternative)
    desc = f"Mann-Whitney U test, {kind} ({sizes}; {why}); statistic is U of b"
    return _result(stat, p, effect, ci, alpha, desc, alternative, n)


# --------------------------------------------------------------------------
# Example-level comparison (one seed)
# --------------------------------------------------------------------------


def _as_bool_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 examples, got {arr.size}")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be boolean (or 0/1), got dtype {arr.dtype}")
    arr_f = arr.astype(float)
    if np.any(np.isnan(arr_f)):
        raise ValueError(f"{name} contains NaN")
    if not np.all((arr_f == 0) | (arr_f == 1)):
        raise ValueError(f"{name} must contain only True/False (or 0/1)")
    return arr_f == 1


def mcnemar(
    correct_a,
    correct_b,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> TestResult:
    """McNemar's test: two models scored on the same examples (one seed each).

    Args:
        correct_a: bool, shape (n_examples,): model A got example i right.
        correct_b: bool, shape (n_examples,): model B got example i right.
        alpha: significance level.
        alternative: ``"two-sided"``, ``"greater"`` (B more accurate) or
            ``"less"``.

    Only the discordant examples matter: ``b01`` = A wrong & B right,
    ``b10`` = A right & B wrong. Under H0 each discordant example is a fair
    coin. Two-sided with ``b01 + b10 < 25``: exact binomial test
    (``scipy.stats.binomtest``), ``statistic = b01``. Two-sided with
    ``b01 + b10 >= 25``: chi-square with continuity correction,
    ``chi2 = max(|b01 - b10| - 1, 0)**2 / (b01 + b10)`` on 1 df,
    ``statistic = chi2``. One-sided: always the exact binomial test.
    No discordant pairs: p = 1.

    Returns:
        TestResult with ``effect = (b01 - b10) / n_examples`` (accuracy of B
        minus accuracy of A) and a Wald-type CI for a difference of paired
        proportions: ``effect +- z * sqrt(b01 + b10 - (b01 - b10)**2 / n) / n``
        (z for two-sided ``1 - alpha``), clipped to [-1, 1]; it has zero
        width when there are no discordant pairs. ``n = n_examples``.

    Raises:
        ValueError: lengths differ, not boolean/0-1, fewer than 2 examples.
    """
    ca = _as_bool_1d(correct_a, "correct_a")
    cb = _as_bool_1d(correct_b, "correct_b")
    if ca.shape != cb.shape:
        raise ValueError(
            f"correct_a and correct_b must have the same length (same "
            f"examples), got {ca.size} and {cb.size}"
        )
    alpha = _check_alpha(alpha)
    alternative = _check_alternative(alternative)

    n = ca.size
    b01 = int(np.sum(~ca & cb))
    b10 = int(np.sum(ca & ~cb))
    disc = b01 + b10
    effect = (b01 - b10) / n
    z = float(_st.norm.ppf(1.0 - alpha / 2.0))
    se = math.sqrt(max(disc - (b01 - b10) ** 2 / n, 0.0)) / n
    ci = (max(effect - z * se, -1.0), min(effect + z * se, 1.0))
    counts = f"b01={b01} (A wrong, B right), b10={b10} (A right, B wrong), n={n} examples"

    if disc == 0:
        desc = f"McNemar test ({counts}; no discordant pairs, so p = 1)"
        return _result(0.0, 1.0, 0.0, ci, alpha, desc, alternative, n)

    if alternative != "two-sided" or disc < _MCNEMAR_EXACT_BELOW:
        res = _st.binomtest(b01, disc, 0.5, alternative=alternative)
        why = ("one-sided alternative" if alternative != "two-sided"
               else f"{disc} < {_MCNEMAR_EXACT_BELOW} discordant pairs")
        desc = (f"McNemar exact binomial test on discordant pairs ({counts}; "
                f"{why}); statistic is b01")
        return _result(b01, res.pvalue, effect, ci, alpha, desc, alternative, n)

    chi2 = max(abs(b01 - b10) - 1.0, 0.0) ** 2 / disc
    p = float(_st.chi2.sf(chi2, 1))
    desc = (f"McNemar chi-square test with continuity correction ({counts}; "
            f"{disc} >= {_MCNEMAR_EXACT_BELOW} discordant pairs); statistic "
            f"is chi2 on 1 df")
    return _result(chi2, p, effect, ci, alpha, desc, alternative, n)


# --------------------------------------------------------------------------
# Multiple testing
# --------------------------------------------------------------------------


def holm(p_values, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm-Bonferroni step-down adjustment.

    Args:
        p_values: shape (k,) raw p-values in [0, 1] (k may be 0).
        alpha: family-wise error rate.

    Returns:
        ``(adjusted, reject)``: adjusted p-values, shape (k,), in the input
        order, monotone in the sorted order and capped at 1; ``reject`` is
        the bool array ``adjusted <= alpha``.

    Raises:
        ValueError: not 1-D, NaN, or values outside [0, 1].
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if np.any(np.isnan(p)):
        raise ValueError("p_values contains NaN")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1]")
    alpha = _check_alpha(alpha)
    k = p.size
    if k == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    scaled = (k - np.arange(k)) * p[order]
    stepped = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(k)
    adjusted[order] = stepped
    return adjusted, adjusted <= alpha


def apply_holm(results: Sequence[TestResult], alpha: float = 0.05) -> list[TestResult]:
    """Holm-adjust a family of results (e.g. all the tests of one run).

    Args:
        results: k TestResults.
        alpha: family-wise error rate; stored in the returned results.

    Returns:
        New TestResults (inputs are untouched) with ``p_value`` replaced by
        the Holm-adjusted value, ``significant`` recomputed, ``alpha`` set,
        and ``method`` suffixed with ", Holm-adjusted over k tests".
        Effects and confidence intervals are left unadjusted.
    """
    results = list(results)
    for r in results:
        if not isinstance(r, TestResult):
            raise ValueError(f"apply_holm expects TestResult items, got {type(r)!r}")
    adjusted, reject = holm([r.p_value for r in results], alpha)
    k = len(results)
    return [
        replace(
            r,
            p_value=float(adj),
            significant=bool(rej),
            alpha=float(alpha),
            method=f"{r.method}, Holm-adjusted over {k} tests",
        )
        for r, adj, rej in zip(results, adjusted, reject)
    ]


# --------------------------------------------------------------------------
# Representation similarity and distribution shift
# --------------------------------------------------------------------------


def linear_cka(x, y) -> float:
    """Linear centred kernel alignment (Kornblith et al., ICML 2019).

    Args:
        x: shape (n_examples, d1) features of model/layer 1.
        y: shape (n_examples, d2) features of model/layer 2, same rows.

    Returns:
        ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on column-centred X, Y
        (feature-space form, O(n d^2) rather than O(n^2)). 1.0 for identical
        features; invariant to orthogonal transforms and isotropic scaling;
        in [0, 1].

    Raises:
        ValueError: not 2-D, row counts differ, fewer than 2 rows, NaN/inf,
            or a matrix with no variance (CKA undefined).
    """
    x = _as_2d(x, "x")
    y = _as_2d(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of rows (examples), "
            f"got {x.shape[0]} and {y.shape[0]}"
        )
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    # Rescale each matrix (CKA is scale-invariant) to avoid overflow.
    sx, sy = np.abs(x).max(), np.abs(y).max()
    if sx == 0 or sy == 0:
        raise ValueError("linear CKA is undefined for features with zero variance")
    x, y = x / sx, y / sy
    cross = np.linalg.norm(y.T @ x, "fro") ** 2
    norm_x = np.linalg.norm(x.T @ x, "fro")
    norm_y = np.linalg.norm(y.T @ y, "fro")
    return float(min(max(cross / (norm_x * norm_y), 0.0), 1.0))


def _auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of scores for labels (1 = positive), vectorised over rows.

    scores: (..., N); labels: (..., N) bools broadcastable to scores.
    """
    ranks = _st.rankdata(scores, axis=-1)
    labels = np.broadcast_to(labels, scores.shape)
    n_pos = labels.sum(axis=-1)
    n_neg = labels.shape[-1] - n_pos
    rank_sum = np.where(labels, ranks, 0.0).sum(axis=-1)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _check_two_samples(x, y, min_rows: int):
    x = _as_2d(x, "x", min_rows)
    y = _as_2d(y, "y", min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have the same number of features, "
            f"got {x.shape[1]} and {y.shape[1]}"
        )
    return x, y


def classifier_two_sample_test(
    x,
    y,
    n_permutations: int = 200,
    alpha: float = 0.05,
    seed=0,
    n_folds: int = 5,
    n_boot: int = 2000,
    max_components: int = 32,
    stop_after: Optional[int] = 10,
) -> TestResult:
    """Classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017).

    Can a classifier tell rows of ``x`` from rows of ``y``? Rows of x are
    labelled 0 and rows of y 1. The pooled rows are centred and projected
    onto at most ``max_components`` whitened principal components (fitted on
    the pooled rows without labels, so the projection is the same under
    every relabelling and the permutation test stays exact; this is what
    keeps 2 x 300 rows x 384 dims under ~2 s on 2 cores). Then an
    L2-regularised logistic regression (scikit-learn, C=1) is fitted in
    stratified ``n_folds``-fold cross-validation (shuffled with ``seed``),
    and the ROC AUC of the out-of-fold decision scores is the statistic.

    The p-value is one-sided (greater): the whole procedure (same folds
    seed, refit per fold) is rerun on ``n_permutations`` random
    relabellings, ``p = (1 + #{AUC_perm >= AUC_obs}) / (1 + n_permutations)``.
    Sequential Monte Carlo (Besag & Clifford, Biometrika 1991): the
    relabellings stop once ``stop_after`` of them reach the observed AUC,
    with ``p = stop_after / relabellings done``, a valid p-value that is
    then at least ``stop_after / n_permutations`` (0.1 with the defaults:
    never significant at 0.05, as the full run would not be). Without a
    shift that happens after about ``2 * stop_after`` relabellings instead
    of all of them; a shift still runs every relabelling. ``None`` runs all.

    Args:
        x: shape (n_x, n_features), e.g. source-domain embeddings.
        y: shape (n_y, n_features), e.g. target-domain embeddings.
        n_permutations: relabellings for the null (>= 1; cost is at most
            ``n_folds * (n_permutations + 1)`` logistic fits).
        alpha: significance level.
        seed: seeds the folds, the permutations and the bootstrap.
        n_folds: cross-validation folds (>= 2; each group needs this many rows).
        n_boot: bootstrap resamples of the observed out-of-fold scores (each
            group resampled separately) for the CI of the effect; 0 skips.
        max_components: PCA dimensionality cap.

    Returns:
        TestResult with ``statistic = AUC``, ``effect = AUC - 0.5`` (CI on the
        same scale), ``alternative = "greater"``, ``n = n_x + n_y``.

    Raises:
        ValueError: not 2-D, feature counts differ, a group smaller than
            ``n_folds``, NaN/inf, bad option.
    """
    n_folds = _check_count(n_folds, "n_folds", 2)
    x, y = _check_two_samples(x, y, n_folds)
    n_permutations = _check_count(n_permutations, "n_permutations", 1)
    n_boot = _check_count(n_boot, "n_boot", 0)
    max_components = _check_count(max_components, "max_components", 1)
    stop_after = None if stop_after is None else _check_count(stop_after, "stop_after", 1)
    alpha = _check_alpha(alpha)

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    z = np.vstack([x, y])
    labels = np.r_[np.zeros(x.shape[0], dtype=int), np.ones(y.shape[0], dtype=int)]
    n = z.shape[0]

    # Label-free whitened PCA of the pooled rows.
    zc = z - z.mean(axis=0)
    u, s, _ = np.linalg.svd(zc, full_matrices=False)
    keep = s > s[0] * 1e-10 if s[0] > 0 else np.zeros_like(s, dtype=bool)
    k = int(min(max_components, keep.sum()))
    desc_base = (
        f"classifier two-sample test: {n_folds}-fold logistic regression on "
        f"{k} whitened PCA components of {x.shape[1]} features "
        f"(n={x.shape[0]}+{y.shape[0]} rows), ROC AUC of out-of-fold scores, "
        f"one-sided permutation p over {n_permutations} relabellings"
    )
    if k == 0:  # every row identical: nothing to learn
        ci = (math.nan, math.nan) if n_boot == 0 else (0.0, 0.0)
        return _result(0.5, 1.0, 0.0, ci, alpha,
                       desc_base + "; all rows identical, so p = 1",
                       "greater", n)
    feats = u[:, :k] * math.sqrt(n - 1)
    rng = np.random.default_rng(seed)
    fold_seed = int(rng.integers(0, 2**31 - 1))

    def oof_scores(lab: np.ndarray) -> np.ndarray:
        out = np.empty(n)
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=fold_seed)
        for tr, te in folds.split(feats, lab):
            clf = LogisticRegression(C=1.0, max_iter=1000)
            clf.fit(feats[tr], lab[tr])
            out[te] = clf.decision_function(feats[te])
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        observed_scores = oof_scores(labels)
        auc_obs = float(_auc(observed_scores, labels == 1))
        reached, done = 0, 0
        for _ in range(n_permutations):
            perm = rng.permutation(labels)
            done += 1
            reached += int(_auc(oof_scores(perm), perm == 1) >= auc_obs - 1e-12)
            if stop_after is not None and reached >= stop_after:
                break
    if stop_after is not None and reached >= stop_after:
        p = reached / done
        desc_base += f" (stopped after {done}: {reached} reached the observed AUC; Besag-Clifford p)"
    else:
        p = (1.0 + reached) / (1.0 + n_permutations)

    if n_boot == 0:
        ci = (math.nan, math.nan)
    else:
        s0 = observed_scores[labels == 0]
        s1 = observed_scores[labels == 1]
        i0 = rng.integers(0, s0.size, size=(n_boot, s0.size))
        i1 = rng.integers(0, s1.size, size=(n_boot, s1.size))
        boot_scores = np.concatenate([s0[i0], s1[i1]], axis=1)
        boot_labels = np.r_[np.zeros(s0.size, bool), np.ones(s1.size, bool)]
        tail = alpha / 2.0
        lo, hi = np.quantile(_auc(boot_scores, boot_labels), [tail, 1.0 - tail])
        ci = (float(lo) - 0.5, float(hi) - 0.5)

    return _result(auc_obs, p, auc_obs - 0.5, ci, alpha, desc_base, "greater", n)


def mmd_rbf_test(
    x,
    y,
    n_permutations: int = 200,
    alpha: float = 0.05,
    seed=0,
) -> TestResult:
    """Kernel two-sample test: unbiased MMD^2 with an RBF kernel.

    ``k(u, v) = exp(-||u - v||^2 / (2 sigma^2))`` with the median heuristic:
    ``sigma^2`` = median squared distance over distinct pairs of the pooled
    rows (label-free, so it is the same under every relabelling). The
    statistic is the unbiased U-statistic estimate of MMD^2 (Gretton et al.,
    JMLR 2012), which can be slightly negative when the distributions agree.
    p-value: one-sided permutation test,
    ``p = (1 + #{MMD^2_perm >= MMD^2_obs}) / (1 + n_permutations)``.
    Memory and time are O((n_x + n_y)^2): subsample beyond a few thousand rows.

    Args:
        x: shape (n_x, n_features), n_x >= 2.
        y: shape (n_y, n_features), n_y >= 2.
        n_permutations: relabellings for the null (>= 1).
        alpha: significance level.
        seed: seeds the permutations.

    Returns:
        TestResult with ``statistic = effect = MMD^2``, ``alternative =
        "greater"``, ``n = n_x + n_y``. No confidence interval (ci is nan):
        a bootstrap with duplicated rows biases the U-statistic.

    Raises:
        ValueError: not 2-D, feature counts differ, < 2 rows, NaN/inf.
    """
    x, y = _check_two_samples(x, y, 2)
    n_permutations = _check_count(n_permutations, "n_permutations", 1)
    alpha = _check_alpha(alpha)

    m, n_y = x.shape[0], y.shape[0]
    z = np.vstack([x, y])
    z = z - z.mean(axis=0)
    n = z.shape[0]
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    np.fill_diagonal(d2, 0.0)
    off = d2[np.triu_indices(n, k=1)]
    sigma2 = float(np.median(off))
    if sigma2 <= 0.0:
        positive = off[off > 0]
        sigma2 = float(positive.mean()) if positive.size else 0.0
    desc = (
        f"MMD^2 permutation test (unbiased estimate, RBF kernel, median-"
        f"heuristic bandwidth; n={m}+{n_y} rows, one-sided p over "
        f"{n_permutations} relabellings)"
    )
    if sigma2 == 0.0:  # every row identical
        return _result(0.0, 1.0, 0.0, (math.nan, math.nan), alpha,
                       desc + "; all rows identical, so p = 1", "greater", n)
    kmat = np.exp(-d2 / (2.0 * sigma2))
    row = kmat.sum(axis=1)
    total = row.sum()

    def mmd2(g: np.ndarray) -> np.ndarray:
        # g: (P, n) float indicators of group y. Diagonal of K is exactly 1.
        gkg = np.einsum("pi,pi->p", g @ kmat, g)
        rg = g @ row
        akg = rg - gkg
        aka = total - 2.0 * rg + gkg
        return ((aka - m) / (m * (m - 1)) + (gkg - n_y) / (n_y * (n_y - 1))
                - 2.0 * akg / (m * n_y))

    labels = np.r_[np.zeros(m), np.ones(n_y)]
    observed = float(mmd2(labels[None, :])[0])
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    chunk = max(1, int(2e7 // (n * 8)))  # keep (P, n) blocks ~20 MB
    for start in range(0, n_permutations, chunk):
        stop = min(start + chunk, n_permutations)
        g = np.stack([rng.permutation(labels) for _ in range(stop - start)])
        null[start:stop] = mmd2(g)
    tol = 1e-12 * max(1.0, abs(observed))
    p = (1.0 + np.sum(null >= observed - tol)) / (1.0 + n_permutations)
    return _result(observed, p, observed, (math.nan, math.nan), alpha, desc,
                   "greater", n)


# --------------------------------------------------------------------------
# Power
# --------------------------------------------------------------------------


def power_paired_t(
    effect_size: float,
    n: int,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> float:
    """Analytic power of the paired t-test (noncentral t).

    Args:
        effect_size: standardized effect d = mean(b - a) / sd(b - a); its
            sign matters for one-sided alternatives.
        n: number of pairs (seeds), >= 2.
        alpha: significance level.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.

    Returns:
        Probability of rejecting H0 when the true standardized effect is d:
        with df = n - 1 and noncentrality d * sqrt(n), ``scipy.stats.nct``
        tail mass beyond the critical t value(s).
    """
    d = float(effect_size)
    if not math.isfinite(d):
        raise ValueError(f"effect_size must be finite, got {effect_size!r}")
    n = _check_count(n, "n", 2)
    alpha = _check_alpha(alpha)
    alternative = _check_alternative(alternative)
    df = n - 1
    nc = d * math.sqrt(n)
    if alternative == "two-sided":
        crit = _st.t.ppf(1.0 - alpha / 2.0, df)
        power = _st.nct.sf(crit, df, nc) + _st.nct.cdf(-crit, df, nc)
    elif alternative == "greater":
        power = _st.nct.sf(_st.t.ppf(1.0 - alpha, df), df, nc)
    else:
        power = _st.nct.cdf(_st.t.ppf(alpha, df), df, nc)
    return float(min(max(power, 0.0), 1.0))
