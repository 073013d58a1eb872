"""Profile rules (rules/profile.py): data size, compute, memory, latency.

Each rule has a scenario where it fires (its conclusion is in working memory
and its id is in the trace) and one where it stays silent.
"""

from __future__ import annotations

import pytest
from ruletools import RuleCase

from knowledge import get_kb
from rules.base import ComputeLimited, LatencyCritical, MemoryBudget, SizeClass

BASE = dict(task="text_classification", dataset_size=5000)
KB = get_kb()
SMALL = KB.threshold("dataset_small_max")
MEDIUM = KB.threshold("dataset_medium_max")
HUGE = KB.threshold("full_training_min_examples")
LOW_GB = KB.threshold("limited_gpu_memory_gb")
CRITICAL_MS = KB.threshold("latency_critical_ms")


CASES = [
    RuleCase("profile.size_small", dict(dataset_size=500), SizeClass, {"value": "small"},
             dict(dataset_size=5000)),
    RuleCase("profile.size_medium", dict(dataset_size=5000), SizeClass, {"value": "medium"},
             dict(dataset_size=500)),
    RuleCase("profile.size_large", dict(dataset_size=50_000), SizeClass, {"value": "large"},
             dict(dataset_size=5000)),
    RuleCase("profile.size_huge", dict(dataset_size=2_000_000), SizeClass, {"value": "huge"},
             dict(dataset_size=50_000)),
    RuleCase("profile.compute_limited_device", dict(compute="cpu"), ComputeLimited, {"value": True},
             dict(compute="consumer_gpu")),
    RuleCase("profile.compute_limited_memory", dict(compute="consumer_gpu", gpu_memory_gb=4),
             ComputeLimited, {"value": True}, dict(compute="consumer_gpu", gpu_memory_gb=16)),
    RuleCase("profile.compute_sufficient", dict(compute="datacenter_gpu"), ComputeLimited,
             {"value": False}, dict(compute="cpu")),
    RuleCase("profile.memory_given", dict(gpu_memory_gb=24), MemoryBudget, {"gb": 24},
             dict(compute="tpu")),
    RuleCase("profile.memory_default", dict(compute="tpu"), MemoryBudget,
             {"gb": KB.threshold("default_memory_gb")["tpu"]},
             dict(compute="tpu", gpu_memory_gb=24)),
    RuleCase("profile.latency_critical_budget", dict(latency_ms=50), LatencyCritical, {},
             dict(latency_ms=500)),
    RuleCase("profile.latency_critical_mobile", dict(deployment="mobile"), LatencyCritical, {},
             dict(deployment="edge")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires(case, rule_fires):
    plan, engine = rule_fires(case.rule, {**BASE, **case.fires}, case.cls, **case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent(case, rule_silent):
    plan, engine = rule_silent(case.rule, {**BASE, **case.silent})


# --- boundaries of the size classes (knowledge/thresholds.yaml)


@pytest.mark.parametrize("n, size", [
    (1, "small"), (SMALL, "small"), (SMALL + 1, "medium"), (MEDIUM, "medium"), (MEDIUM + 1, "large"),
    (HUGE - 1, "large"), (HUGE, "huge"), (10**8, "huge"),
])
def test_exactly_one_size_class_at_the_boundaries(n, size, consult, facts_dump):
    _, engine = consult(task="text_classification", dataset_size=n)
    values = [f["value"] for f in engine.facts_of(SizeClass)]
    assert values == [size], facts_dump(engine)


@pytest.mark.parametrize("fields, limited", [
    (dict(compute="cpu"), True),
    (dict(compute="cpu", gpu_memory_gb=64), True),
    (dict(compute="consumer_gpu", gpu_memory_gb=LOW_GB - 0.1), True),
    (dict(compute="consumer_gpu", gpu_memory_gb=LOW_GB), False),
    (dict(compute="consumer_gpu"), False),
    (dict(compute="tpu", gpu_memory_gb=2), True),
])
def test_exactly_one_compute_verdict(fields, limited, consult, facts_dump):
    _, engine = consult(task="text_classification", dataset_size=5000, **fields)
    values = [f["value"] for f in engine.facts_of(ComputeLimited)]
    assert values == [limited], facts_dump(engine)


@pytest.mark.parametrize("compute", ["cpu", "consumer_gpu", "datacenter_gpu", "tpu"])
def test_memory_default_comes_from_the_knowledge_base(compute, consult, kb, facts_dump):
    _, engine = consult(task="text_classification", dataset_size=5000, compute=compute)
    gb = kb.threshold("default_memory_gb")[compute]
    assert [f["gb"] for f in engine.facts_of(MemoryBudget)] == [gb], facts_dump(engine)


@pytest.mark.parametrize("fields, critical", [
    (dict(latency_ms=CRITICAL_MS), True),       # at latency_critical_ms: real time
    (dict(latency_ms=CRITICAL_MS + 1), False),
    (dict(deployment="mobile", latency_ms=30), True),
    (dict(deployment="mobile", latency_ms=5000), True),
    (dict(deployment="server"), False),
    (dict(latency_ms=0), False),        # 0 means "no budget"
])
def test_latency_critical_at_most_once(fields, critical, consult, facts_dump):
    _, engine = consult(task="image_classification", dataset_size=5000, **fields)
    assert len(engine.facts_of(LatencyCritical)) == int(critical), facts_dump(engine)


def test_a_cpu_scenario_without_a_device_is_served_on_a_cpu():
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    plan = get_engine(kb).consult(normalize({"task": "text_classification", "dataset_size": 2000, "compute": "cpu"}, kb)).to_dict()
    assumed = {a["field"]: a["value"] for a in plan["assumptions"]}
    assert assumed["device_class"] == "laptop_cpu"
    for compute, device in (("consumer_gpu", "consumer_gpu"), ("datacenter_gpu", "datacenter_gpu"), ("tpu", "tpu")):
        gpu = get_engine(kb).consult(normalize({"task": "text_classification", "dataset_size": 2000,
                                                "compute": compute}, kb)).to_dict()
        assert {a["field"]: a["value"] for a in gpu["assumptions"]}["device_class"] == device
    phone = get_engine(kb).consult(normalize({"task": "text_classification", "dataset_size": 2000,
                                              "compute": "consumer_gpu", "deployment": "mobile"}, kb)).to_dict()
    assert {a["field"]: a["value"] for a in phone["assumptions"]}["device_class"] == "phone_npu"


@pytest.mark.parametrize("device,deployment", [("raspberry_pi_cpu", "edge"), ("microcontroller", "edge"),
                                               ("phone_cpu", "mobile"), ("datacenter_gpu", "server")])
def test_a_named_device_implies_its_deployment(device, deployment):
    """A scenario naming a Raspberry Pi but no deployment is an edge deployment (shown as assumed); a
    deployment that is given stays as given."""
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    s = normalize({"task": "image_classification", "dataset_size": 2000, "device_class": device}, kb)
    assert s["deployment"] == deployment and "deployment" in s["assumed"]
    plan = get_engine(kb).consult(s).to_dict()
    assert {a["field"]: a["value"] for a in plan["assumptions"]}["deployment"] == deployment
    again = normalize(plan["scenario"], kb)
    assert again["deployment"] == deployment and "deployment" in again["assumed"]
    given = normalize({"task": "image_classification", "dataset_size": 2000, "device_class": device,
                       "deployment": "batch"}, kb)
    assert given["deployment"] == "batch" and "deployment" not in given["assumed"]


def test_sequence_length_sets_the_latency_and_memory_of_text_inputs():
    """A 10 ms budget for ~10-token search queries on a laptop CPU rejects every model at the default 128
    tokens, and admits small encoders at 10; the memory estimate follows the length too."""
    from click.testing import CliRunner

    from cli import main
    from rules.engine import get_engine
    from rules.scenario import ScenarioError, normalize

    kb = get_kb()
    base = {"task": "text_classification", "dataset_size": 5000, "device_class": "laptop_cpu", "latency_ms": 10}
    long = get_engine(kb).consult(normalize(base, kb)).to_dict()
    short = get_engine(kb).consult(normalize({**base, "sequence_length": 10}, kb)).to_dict()
    assert not long["candidates"][0]["meets_constraints"]
    assert short["candidates"][0]["meets_constraints"] and short["candidates"][0]["latency_ms"] <= 10
    assert "per 10-token input" in short["candidates"][0]["why"]["text"]
    r = CliRunner().invoke(main, ["consult", "--task", "text_classification", "--dataset-size", "500",
                                  "--sequence-length", "-3", "--no-input"])
    assert r.exit_code == 2 and "sequence_length" in r.output and "Traceback" not in r.output
    with pytest.raises(ScenarioError):
        normalize({**base, "sequence_length": "many"}, kb)


def test_image_size_sets_the_latency_and_memory_of_image_inputs():
    """At 1024 px instead of 224 an image model computes ~21x more per image: a Jetson budget that every
    small model meets at 224 px rejects DINOv2-S at 1024; the training memory grows with the area; a bad
    size is refused by the CLI with exit status 2."""
    from click.testing import CliRunner

    from cli import main
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    base = {"task": "image_classification", "dataset_size": 5000, "device_class": "jetson_gpu", "latency_ms": 50}
    small = get_engine(kb).consult(normalize(base, kb)).to_dict()
    large = get_engine(kb).consult(normalize({**base, "image_size": 1024}, kb)).to_dict()
    assert "dinov2-vit-s14" not in {r["model"] for r in small["rejected"]}
    assert "dinov2-vit-s14" in {r["model"] for r in large["rejected"]}
    assert "1024x1024 images" in large["technique"]["why"]["text"]
    assert "accumulated micro-batches" in large["technique"]["why"]["text"]  # the batch no longer fits in one pass
    assert "accumulated micro-batches" not in small["technique"]["why"]["text"]
    r = CliRunner().invoke(main, ["consult", "--task", "image_classification", "--dataset-size", "100",
                                  "--image-size", "-5", "--no-input"])
    assert r.exit_code == 2 and "image_size" in r.output
