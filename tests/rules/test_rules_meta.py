"""Properties of the rule set as a whole: coverage by tests, docstrings, ids,
determinism, the trace and the explanation contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rules.engine  # noqa: F401  (defines the rules)
from rules.base import RULES
from rules.engine import TransferEngine
from rules.scenario import normalize

HERE = Path(__file__).resolve().parent
TOPICS = {"profile", "architecture", "approach", "technique", "selection", "tuning", "risk", "diagnosis", "evaluation"}

SCENARIOS = [
    dict(task="text_classification", dataset_size=5000),
    dict(task="text_classification", dataset_size=3000, num_classes=3, compute="cpu", domain_similarity="low",
         source_domain=["wikipedia", "news"], target_domain=["reviews"], symptoms=["emoji_sentiment_missed"]),
    dict(task="image_classification", dataset_size=500, deployment="mobile", latency_ms=30),
    dict(task="question_answering", dataset_size=50_000, compute="datacenter_gpu", symptoms=["loss_nan"]),
    dict(task="image_captioning", dataset_size=2_000_000, compute="tpu", task_similarity="different"),
    dict(task="object_detection", dataset_size=20_000, deployment="edge", latency_ms=20, gpu_memory_gb=6),
]


def _rule_functions():
    out = {}
    for name in dir(TransferEngine):
        wrapped = getattr(getattr(TransferEngine, name), "_wrapped", None)
        if wrapped is not None and hasattr(wrapped, "rule_id"):
            out[wrapped.rule_id] = wrapped
    return out


def test_every_rule_is_named_in_a_topic_test():
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(HERE.glob("test_rules_*.py"))
                     if p.name != Path(__file__).name)
    missing = [rid for rid in RULES if f'"{rid}"' not in text]
    assert not missing, f"rules without a fires/silent test: {missing}"


def test_rule_ids_are_topic_dot_name_and_match_the_engine():
    funcs = _rule_functions()
    assert set(funcs) == set(RULES)
    for rid, info in RULES.items():
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", rid), rid
        assert info.topic == rid.split(".")[0] and info.topic in TOPICS, rid


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_has_a_one_line_docstring(rule_id):
    fn = _rule_functions()[rule_id]
    doc = (fn.__doc__ or "").strip()
    assert doc, f"{rule_id} has no docstring"
    assert "\n" not in doc, f"{rule_id}: docstring is not one line: {doc!r}"
    assert RULES[rule_id].doc == doc


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_basis_names_an_existing_knowledge_entry(rule_id, kb):
    for ref in RULES[rule_id].basis:
        section, _, key = ref.partition(":")
        assert section in kb.sections and key in kb.sections[section], f"{rule_id}: {ref}"


@pytest.mark.parametrize("fields", SCENARIOS, ids=lambda f: f["task"])
def test_same_input_same_plan(fields, kb, engine):
    scenario = normalize(fields, kb)
    first = json.dumps(engine.consult(scenario).to_dict(), sort_keys=True)
    engine.consult(normalize(dict(task="vision_language", dataset_size=7), kb)).to_dict()  # something else between
    second = json.dumps(engine.consult(scenario).to_dict(), sort_keys=True)
    assert first == second


def _without_trace(plan):
    return json.dumps({k: v for k, v in plan.items() if k != "trace"}, sort_keys=True)


@pytest.mark.parametrize("fields", SCENARIOS, ids=lambda f: f["task"])
def test_same_input_same_plan_across_fresh_engines_apart_from_the_trace(fields, kb, engine):
    scenario = normalize(fields, kb)
    expected = _without_trace(engine.consult(scenario).to_dict())
    for _ in range(3):
        assert _without_trace(TransferEngine(kb).consult(scenario).to_dict()) == expected


def test_same_input_same_trace_across_fresh_engines(kb):
    scenario = normalize(SCENARIOS[1], kb)
    traces = {json.dumps(TransferEngine(kb).consult(scenario).to_dict()["trace"]) for _ in range(20)}
    assert len(traces) == 1


@pytest.mark.parametrize("fields", SCENARIOS, ids=lambda f: f["task"])
def test_trace_contract(fields, consult, facts_dump):
    plan, engine = consult(**fields)
    json.dumps(plan, allow_nan=False)  # plain JSON types only, no default=str needed
    trace = plan["trace"]
    assert [t["step"] for t in trace] == list(range(1, len(trace) + 1))
    for t in trace:
        assert set(t) == {"step", "rule", "matched", "after", "concluded"}
        assert t["rule"] in RULES
        assert t["concluded"] and all(isinstance(c, str) for c in t["concluded"])
        assert all(a in RULES for a in t["after"]) and t["rule"] not in t["after"]
    # every concluded fact in working memory names a rule that is in the trace
    concluded_by = {f["rule"] for f in engine.facts.values() if "rule" in f}
    assert concluded_by <= {t["rule"] for t in trace}, facts_dump(engine)


def _whys(plan):
    yield "architecture", plan["architecture"]["why"]
    yield "approach", plan["approach"]["why"]
    yield "technique", plan["technique"]["why"]
    for key in ("criteria", "candidates", "risks", "diagnoses"):
        for i, item in enumerate(plan[key]):
            yield f"{key}[{i}]", item["why"]
    for name, w in plan["hyperparameters_why"].items():
        yield f"hyperparameters.{name}", w


def _check_whys(plan, kb):
    bad = []
    for where, w in _whys(plan):
        if w["rule"] not in RULES:
            bad.append((where, "unknown rule", w["rule"]))
        if not w["knowledge"]:
            bad.append((where, w["rule"], "names no knowledge entry"))
        for ref in w["knowledge"]:
            section, _, key = ref.partition(":")
            if key not in kb.sections.get(section, {}):
                bad.append((where, w["rule"], f"unknown entry {ref}"))
    return bad


@pytest.mark.parametrize("fields", SCENARIOS, ids=lambda f: f["task"])
def test_every_why_names_its_rule_and_knowledge_entries(fields, consult, kb):
    plan, _ = consult(**fields)
    assert not _check_whys(plan, kb)


def test_why_of_no_text_augmentation_names_a_knowledge_entry(consult, kb):
    plan, _ = consult(task="text_classification", dataset_size=5000, domain_similarity="high")
    assert plan["hyperparameters_why"]["augmentation"]["rule"] == "tuning.no_text_augmentation"
    assert not _check_whys(plan, kb)


def test_the_faster_rule_preparation_builds_what_experta_builds(kb):
    """rules/_experta.py skips experta's second normal-form pass when it would change nothing; every
    rule must come out with the same conditions, in the same order, as experta's own preparation."""
    from experta.matchers.rete import utils as rete_utils
    from experta.rule import Rule

    from rules.engine import get_engine

    fast, original = rete_utils.prepare_rule.registry[Rule], rete_utils._tlexpert_original_prepare
    rules = list(get_engine(kb).get_rules())
    assert len(rules) > 50
    for r in rules:
        a, b = fast(r), original(r)
        assert type(a) is type(b) and tuple(a) == tuple(b) and a._wrapped is b._wrapped, r


def test_the_restored_knowledge_gives_the_plans_experta_own_reset_gives(kb):
    """The engine declares a task's static knowledge once and restores it afterwards (rules._experta.Snapshot).
    Plans, traces included, must equal those of experta's own reset (which a matcher watcher switches on),
    whatever was consulted before: other tasks, other benchmarks, symptoms, the same scenario again."""
    import logging

    from experta import watchers

    from rules.engine import TransferEngine
    from rules.scenario import normalize

    scenarios = [dict(task="text_classification", dataset_size=3000, compute="cpu", symptoms=["val_loss_rising"]),
                 dict(task="image_classification", dataset_size=500, deployment="mobile", latency_ms=30),
                 dict(task="text_generation", dataset_size=20000, compute="consumer_gpu", gpu_memory_gb=24),
                 dict(task="text_classification", dataset_size=3000, compute="cpu", symptoms=["val_loss_rising"]),
                 dict(task="question_answering", dataset_size=50000, language="de")]
    restored = TransferEngine(kb)
    plans = [restored.consult(normalize(s, kb)).to_dict() for s in scenarios]
    assert len(restored._snapshots) >= 3 and plans[0] == plans[3]
    own = TransferEngine(kb)
    level = watchers.MATCHER.level
    watchers.MATCHER.setLevel(logging.DEBUG)  # experta's own reset and matching paths, with their log lines
    try:
        expected = [own.consult(normalize(s, kb)).to_dict() for s in scenarios]
    finally:
        watchers.MATCHER.setLevel(level)
    assert own._snapshots == {}
    assert plans == expected
