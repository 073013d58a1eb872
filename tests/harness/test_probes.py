"""Symptoms from the harness's tests: a significant result becomes a symptom only when its
effect is large enough to matter."""

from __future__ import annotations

import numpy as np

from harness.evaluation import stats
from harness.evaluation.probes import symptoms_from


def retention(before, after):
    return stats.compare_paired(np.array(before), np.array(after), alternative="less")  # after < before


def test_retention_drop_needs_significance_and_size(kb):
    before = [0.725] * 5
    # the course's fix with 5 seeds: 0.7 points below, tight across seeds: significant, not forgetting
    small = retention(before, [0.7167, 0.7117, 0.7250, 0.7183, 0.7167])
    assert small.significant and -small.effect < kb.threshold("forgetting_min_drop")
    assert symptoms_from({"forgetting.retention": small}, unk_rate=None, kb=kb, cka=[]) == []
    # the bad configuration: 6.4 points below
    big = retention(before, [0.71, 0.64, 0.66, 0.6667, 0.63])
    got = symptoms_from({"forgetting.retention": big}, unk_rate=None, kb=kb, cka=[])
    assert [s["id"] for s in got] == ["retention_drop"] and got[0]["evidence"]["effect"] < -0.05
