"""Measured-ranking rules (rules/empirical.py): when transferability scores on the user's
data reorder the catalog's candidates. Asserted on working memory and on the plan."""

from __future__ import annotations

from knowledge import get_kb
from rules.base import EmpiricalComparison, EmpiricalVerdict
from rules.engine import get_engine
from rules.scenario import normalize

KB = get_kb()
W_MIN = KB.threshold("rank_overturn_min_agreement")
SERVER = dict(task="text_classification", dataset_size=1500, num_classes=3, compute="cpu", deployment="server")
MOBILE = dict(SERVER, deployment="mobile")


def typed_lint(plan, kb):
    """``rules.lint.lint`` on a plan or its JSON form (tests edit the JSON form to break invariants)."""
    from rules.contract import Plan
    from rules.lint import lint

    return lint(Plan.from_dict(plan, "the test's plan", kb) if isinstance(plan, dict) else plan, kb)


def ranking(order: list[str], w, extra_rows=()) -> dict:
    """A rank-models result: ``order`` best first, all scored, agreement W."""
    rows = [{"candidate": m, "model": m, "catalog_id": m, "status": "ok", "rank": i, "mean_rank": float(i),
             "scores": {"logme": -float(i), "knn": 1.0 / i}, "error": ""} for i, m in enumerate(order, 1)]
    return {"rows": rows + list(extra_rows), "agreement": {"kendall_w": w, "estimators": ["logme", "knn"]},
            "data": {"examples": 1500}, "warnings": []}


def consult(fields, rank):
    eng = get_engine(KB)
    plan = eng.consult(normalize(dict(fields), KB), ranking=rank).to_dict()
    return plan, eng


def verdicts(eng):
    return {v["rule"]: v for v in eng.facts_of(EmpiricalVerdict)}


def catalog_order(fields=SERVER):
    return [c["model"] for c in get_engine(KB).consult(normalize(dict(fields), KB)).to_dict()["candidates"]]


def test_catalog_order_is_the_reference():
    order = catalog_order()
    assert len(order) >= 3 and "all-MiniLM-L6-v2" in order and order[0] != "all-MiniLM-L6-v2"


def test_measured_compare_orders_and_overturn(facts_dump):
    first, second = catalog_order()[:2]
    measured = ["all-MiniLM-L6-v2", second, first]  # three of the plan's candidates, scored
    plan, eng = consult(SERVER, ranking(measured, W_MIN + 0.1))
    comp = eng.facts_of(EmpiricalComparison)
    assert len(comp) == 1 and comp[0]["same_order"] is False, facts_dump(eng)
    assert comp[0]["rule"] == "selection.measured_compare_orders"
    v = verdicts(eng)
    assert set(v) == {"selection.measured_overturns_catalog"}, facts_dump(eng)
    assert list(v["selection.measured_overturns_catalog"]["order"]) == measured
    got = [c["model"] for c in plan["candidates"]]
    assert [m for m in got if m in measured] == measured  # the scored ones in measured order ...
    assert [m for m in got if m not in measured] == [m for m in catalog_order() if m not in measured]  # ... the rest stay
    assert [c["rank"] for c in plan["candidates"]] == list(range(1, len(got) + 1))
    er = plan["empirical_ranking"]
    assert er["verdict"] == "overturns" and er["why"]["rule"] == "selection.measured_overturns_catalog"
    assert f"all-MiniLM-L6-v2 now comes first instead of {first}" in er["why"]["text"]
    assert plan["candidates"][0]["empirical"]["rank"] == 1


def test_measured_confirms_catalog():
    plan, eng = consult(SERVER, ranking(catalog_order()[:3], 0.95))
    assert set(verdicts(eng)) == {"selection.measured_confirms_catalog"}
    assert plan["empirical_ranking"]["verdict"] == "confirms"
    assert [c["model"] for c in plan["candidates"]] == catalog_order()


def test_measured_estimators_disagree_keeps_the_catalog_order():
    reversed_ = list(reversed(catalog_order()[:3]))
    for w in (W_MIN - 0.2, None):  # low agreement, or a single estimator
        plan, eng = consult(SERVER, ranking(reversed_, w))
        assert set(verdicts(eng)) == {"selection.measured_estimators_disagree"}
        assert plan["empirical_ranking"]["verdict"] == "inconclusive"
        assert [c["model"] for c in plan["candidates"]] == catalog_order()


def test_measured_too_few_scored():
    # only one of the plan's candidates loads here; a local folder is listed but is not a plan candidate
    folder = {"candidate": "./my-model", "model": "my-model", "catalog_id": None, "status": "ok", "rank": 1,
              "mean_rank": 1.0, "scores": {"logme": 1.0}, "error": ""}
    failed = {"candidate": "bert-base", "model": "bert-base", "catalog_id": "bert-base", "status": "error",
              "rank": None, "mean_rank": None, "scores": {}, "error": "weights not on this machine"}
    rank = ranking(["all-MiniLM-L6-v2"], None, [folder, failed])
    rank["rows"][0]["rank"] = 2
    plan, eng = consult(SERVER, rank)
    assert set(verdicts(eng)) == {"selection.measured_too_few_scored"}
    assert [c["model"] for c in plan["candidates"]] == catalog_order()
    by_model = {c["model"]: c for c in plan["candidates"]}
    assert by_model["bert-base"]["empirical"]["status"] == "error"
    assert {r["model"] for r in plan["empirical_ranking"]["rows"]} == {"all-MiniLM-L6-v2", "my-model", "bert-base"}


def test_measured_best_rejected_stays_rejected():
    # on a phone, bert-base is over the size limit: scoring best does not bring it back
    plan, eng = consult(MOBILE, ranking(["bert-base", "all-MiniLM-L6-v2"], 0.9))
    v = verdicts(eng)
    assert "selection.measured_best_rejected" in v
    assert "bert-base" in {r["model"] for r in plan["rejected"]}
    assert "bert-base" not in [c["model"] for c in plan["candidates"]]
    assert any("stays rejected" in n["text"] for n in plan["empirical_ranking"]["notes"])


def test_no_ranking_no_measured_rules_and_no_plan_field():
    plan, eng = consult(SERVER, None)
    assert not eng.facts_of(EmpiricalVerdict) and not eng.facts_of(EmpiricalComparison)
    assert "empirical_ranking" not in plan and "rank" not in plan["candidates"][0]


def test_measured_order_keeps_speed_first_when_latency_is_critical():
    """A phone app with a latency budget: a slower model that scores better does not jump a faster one."""
    fields = dict(task="text_classification", dataset_size=1500, num_classes=3, deployment="edge", latency_ms=50)
    order = catalog_order(fields)
    assert len(order) >= 2
    plan, eng = consult(fields, ranking(list(reversed(order)), 0.9))
    assert not [v for v in typed_lint(plan, KB) if v["check"] == "criteria_ranking"], plan["candidates"]
    comp = eng.facts_of(EmpiricalComparison)[0]
    assert comp["latency_first"] is True
