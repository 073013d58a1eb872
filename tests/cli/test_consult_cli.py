"""consult's text output: what a user reads."""

from __future__ import annotations


def test_the_measured_ranking_prints_one_line_per_row_and_names_absent_weights_once(consult):
    """consult --data: the measured ranking is printed line by line (no literal \\n, nothing cut), and the
    candidates whose weights are not here are named on one line with the option that scores them."""
    from harness.reporting.render import render_plan

    plan, _ = consult(task="text_classification", dataset_size=60, compute="cpu")
    missing = "The weights of {m} are not on this machine and cannot be downloaded here: give a local folder"
    plan["empirical_ranking"] = {
        "verdict": "inconclusive", "why": {"text": "only 1 scored", "rule": "selection.measured_too_few_scored"},
        "estimators": ["logme"], "kendall_w": None, "data": {"examples": 60}, "notes": [],
        "rows": [{"model": "all-MiniLM-L6-v2", "status": "ok", "rank": 1, "mean_rank": 1, "scores": {"logme": 1.2}},
                 *({"model": m, "status": "error", "error": missing.format(m=m)} for m in ("bert-base", "roberta-base"))]}
    from rules.contract import Plan

    text = render_plan(Plan.from_dict(plan))
    assert "\\n" not in text and "characters)" not in text
    line = next(ln for ln in text.splitlines() if "weights not on this machine" in ln)
    assert "bert-base, roberta-base" in line and "--rank-candidates" in line and "--model" not in line
