"""The three probes: forgetting, negative transfer, domain shift.

Each returns ``(tests, symptoms)``: ``tests`` maps a test name to a
``stats.TestResult`` (Holm correction is applied by the caller across all the
tests of a run); ``symptoms`` lists ``{"id", "evidence"}`` for the rules
engine, built from the *corrected* tests by ``symptoms_from``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from harness.evaluation import stats


def linear_probe_accuracy(X_train, y_train, X_test, y_test, seed: int = 0) -> float:
    """Accuracy of a logistic-regression probe on frozen features (the retention skill)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    clf.fit(X_train, y_train)
    return float((clf.predict(X_test) == np.asarray(y_test)).mean())


def forgetting_tests(before_acc: Optional[float], after_acc: list[float], cka: list[float],
                     alpha: float, seed: int = 0) -> dict:
    """Retention accuracy before vs after (paired by seed, one-sided: after < before) and CKA."""
    tests = {}
    if before_acc is not None and len(after_acc) >= 2:
        before = np.full(len(after_acc), before_acc)
        tests["forgetting.retention"] = stats.compare_paired(before, np.asarray(after_acc), alpha=alpha,
                                                             alternative="less", seed=seed)
    return tests


def negative_transfer_tests(transfer_acc: dict, baseline_acc: list[float], alpha: float,
                            seed: int = 0, transfer_correct: dict | None = None,
                            baseline_correct=None) -> dict:
    """NTG = err(transfer) - err(no transfer) > 0, tested per technique across seeds (one-sided).

    When neither side varies across seeds (a deterministic fit, like the linear probe against
    TF-IDF), the seeds hold no information and a paired test over them would call any gap
    exact; then the test runs over the test examples instead: McNemar on seed 0's per-example
    correctness (``transfer_correct[tech]``, ``baseline_correct``: bool arrays, n_examples)."""
    tests = {}
    base = np.asarray(baseline_acc)
    for tech, accs in transfer_acc.items():
        accs = np.asarray(accs)
        if len(accs) < 2 or len(accs) != len(base):
            continue
        fixed = np.ptp(accs) == 0 and np.ptp(base) == 0
        if fixed and transfer_correct and tech in transfer_correct and baseline_correct is not None:
            tests[f"negative_transfer.{tech}"] = stats.mcnemar(baseline_correct, transfer_correct[tech],
                                                               alpha=alpha, alternative="less")
            continue
        tests[f"negative_transfer.{tech}"] = stats.compare_paired(base, accs, alpha=alpha,
                                                                  alternative="less", seed=seed)
    return tests


def slice_gap_tests(correct: dict, slice_mask: np.ndarray, alpha: float, seed: int = 0) -> dict:
    """Accuracy of the slice vs the rest, per seed, paired by seed (one-sided: slice < rest).

    One seed, or seeds that all gave the same predictions (a deterministic fit): the test runs
    over the examples of seed 0 instead (unpaired, slice vs rest)."""
    tests = {}
    mask = np.asarray(slice_mask, bool)
    if mask.sum() == 0 or (~mask).sum() == 0:
        return tests
    for tech, per_seed in correct.items():
        rest = np.array([np.asarray(c)[~mask].mean() for c in per_seed])
        sl = np.array([np.asarray(c)[mask].mean() for c in per_seed])
        if len(per_seed) >= 2 and (np.ptp(rest) > 0 or np.ptp(sl) > 0):
            tests[f"domain_shift.slice_gap.{tech}"] = stats.compare_paired(rest, sl, alpha=alpha,
                                                                          alternative="less", seed=seed)
        else:
            c = np.asarray(per_seed[0], bool)
            tests[f"domain_shift.slice_gap.{tech}"] = stats.compare_unpaired(
                c[~mask].astype(float), c[mask].astype(float), alpha=alpha, alternative="less", seed=seed)
    return tests


def two_sample_test(X_source, X_target, alpha: float, seed: int = 0, max_rows: int = 600) -> dict:
    """Classifier two-sample test between source/train and target/test embeddings."""
    rng = np.random.default_rng(seed)
    a = X_source[rng.permutation(len(X_source))[:max_rows]]
    b = X_target[rng.permutation(len(X_target))[:max_rows]]
    if len(a) < 10 or len(b) < 10:
        return {}
    return {"domain_shift.two_sample": stats.classifier_two_sample_test(a, b, n_permutations=100,
                                                                        alpha=alpha, seed=seed)}


def symptoms_from(tests: dict, *, unk_rate: Optional[float], kb, cka: list[float],
                  slice_name: str = "emoji", majority: Optional[dict] = None,
                  forgetting_symptom: str = "retention_drop", prefer: str = "") -> list[dict]:
    """Symptom facts for the rules engine from (Holm-corrected) tests and measurements."""
    out = []

    def add(sid, **evidence):
        out.append({"id": sid, "evidence": {k: _plain(v) for k, v in evidence.items()}})

    t = tests.get("forgetting.retention")
    # significant and large enough to matter: with 5 tight seeds a 0.7-point drop is significant
    if t is not None and t.significant and -t.effect >= kb.threshold("forgetting_min_drop"):
        add(forgetting_symptom, test="forgetting", effect=round(t.effect, 4),
            p_value=round(t.p_value, 5), method=t.method)
    if cka:
        floor = kb.threshold("cka_drift_max")
        mean_cka = float(np.mean(cka))
        if mean_cka < floor:
            add("representation_drift", linear_cka=round(mean_cka, 4), threshold=floor)
    nt = sorted((n for n in tests if n.startswith("negative_transfer.")),
                key=lambda n: n != f"negative_transfer.{prefer}")
    for name in nt:
        t = tests[name]
        if t.significant:
            add("below_baseline", test=name, ntg=round(-t.effect, 4), p_value=round(t.p_value, 5),
                method=t.method)
            break
    if unk_rate is not None and unk_rate > kb.threshold("unk_rate_shift"):
        add("unknown_tokens", unk_rate=round(unk_rate, 4), threshold=kb.threshold("unk_rate_shift"))
    gap_min = kb.threshold("slice_gap_min")
    gaps = sorted((n for n in tests if n.startswith("domain_shift.slice_gap.")),
                  key=lambda n: n != f"domain_shift.slice_gap.{prefer}")
    for name in gaps:
        t = tests[name]
        if t.significant and -t.effect >= gap_min:
            add("slice_gap", test=name, slice=slice_name, gap=round(-t.effect, 4),
                p_value=round(t.p_value, 5))
            break
    t = tests.get("domain_shift.two_sample")
    if t is not None and t.significant:
        add("distribution_gap", auc=round(t.statistic, 4), p_value=round(t.p_value, 5))
    for tech, (acc, rate) in (majority or {}).items():
        if acc <= rate + 1e-9:
            add("majority_class_collapse", technique=tech, accuracy=round(acc, 4),
                majority_rate=round(rate, 4))
            break
    return out


def _plain(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v
