"""The Scenario contract (rules/scenario.py): normalize checks and fills a scenario."""

from __future__ import annotations

import pytest

from knowledge.loader import read_yaml
from rules.scenario import DEFAULTS, FIELDS, ScenarioError, normalize


def test_defaults_and_derived_modality(kb):
    sc = normalize({"task": "text_classification", "dataset_size": 10}, kb)
    assert set(sc) == {*FIELDS, "assumed"}
    assert sc["modality"] == "text"
    for key, value in DEFAULTS.items():
        assert sc[key] == value
    assert sc["assumed"] == [k for k in FIELDS if k in DEFAULTS]  # the plan names the defaults it used
    assert sc["num_classes"] is None and sc["gpu_memory_gb"] is None and sc["latency_ms"] is None
    assert sc["source_domain"] == [] and sc["target_domain"] == [] and sc["symptoms"] == []


@pytest.mark.parametrize("raw, key, value", [
    ({"task": "Text Classification"}, "task", "text_classification"),
    ({"task": "image-classification"}, "task", "image_classification"),
    ({"dataset_size": "5_000"}, "dataset_size", 5000),
    ({"dataset_size": "5,000"}, "dataset_size", 5000),
    ({"dataset_size": "1e3"}, "dataset_size", 1000),
    ({"dataset_size": 1000.0}, "dataset_size", 1000),
    ({"compute": "Consumer-GPU"}, "compute", "consumer_gpu"),
    ({"latency_ms": 0}, "latency_ms", None),
    ({"latency_ms": "30"}, "latency_ms", 30),
    ({"gpu_memory_gb": "7.5"}, "gpu_memory_gb", 7.5),
    ({"source_domain": "wikipedia, news;books"}, "source_domain", ["wikipedia", "news", "books"]),
    ({"target_domain": ["reviews", 2020]}, "target_domain", ["reviews", "2020"]),
    ({"symptoms": "loss_nan"}, "symptoms", ["loss_nan"]),
    ({"symptoms": ["loss_nan", "loss_nan"]}, "symptoms", ["loss_nan"]),
    ({"name": "case", "id": 7}, "id", "7"),
])
def test_normalizes_values(kb, raw, key, value):
    sc = normalize({"task": "text_classification", "dataset_size": 10, **raw}, kb)
    assert sc[key] == value


def test_expect_is_allowed_and_dropped(kb):
    sc = normalize({"task": "text_classification", "dataset_size": 10, "expect": {"technique": "lora"}}, kb)
    assert "expect" not in sc


@pytest.mark.parametrize("raw, words", [
    ({"dataset_size": True}, ["'dataset_size'", "positive integer"]),
    ({"dataset_size": 0}, ["'dataset_size'", "positive integer"]),
    ({"dataset_size": float("nan")}, ["'dataset_size'"]),
    ({"dataset_size": [10]}, ["'dataset_size'"]),
    ({"num_classes": 2.5}, ["'num_classes'", "at least 2"]),
    ({"gpu_memory_gb": -1}, ["'gpu_memory_gb'", "positive number"]),
    ({"modality": "image"}, ["'modality'", "'text'"]),
    ({"deployment": "phone"}, ["'deployment'", "mobile"]),
    ({"task_similarity": "similar"}, ["'task_similarity'", "same"]),
    ({"source_domain": {"a": 1}}, ["'source_domain'", "tag"]),
    ({"symptoms": [""]}, ["'symptoms[0]'"]),
    ({"symptoms": {"loss_nan": 1}}, ["'symptoms'"]),
    ({"symptoms": ["loss_nan", "made up"]}, ["'symptoms[1]'", "must be one of"]),
    ({"tasks": "x"}, ["'tasks'", "Did you mean 'task'"]),
])
def test_refuses_with_one_message_shape(kb, raw, words):
    with pytest.raises(ScenarioError) as info:
        normalize({"task": "text_classification", "dataset_size": 10, **raw}, kb, origin="s.yaml")
    msg = str(info.value)
    assert msg.startswith("The '") and "s.yaml" in msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg


def test_errors_name_the_file_and_line(kb, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("task: text_classification\n\ndataset_size: -3\n")
    with pytest.raises(ScenarioError, match=r"s\.yaml:3 must be a positive integer\. Got -3 instead\."):
        normalize(read_yaml(f), kb, origin=str(f))


@pytest.mark.parametrize("raw", [[], "task: x", None, 3])
def test_a_scenario_must_be_a_mapping(kb, raw):
    with pytest.raises(ScenarioError, match="must be a mapping"):
        normalize(raw, kb)


@pytest.mark.parametrize("missing", ["task", "dataset_size"])
def test_required_fields(kb, missing):
    raw = {"task": "text_classification", "dataset_size": 10}
    raw[missing] = ""
    with pytest.raises(ScenarioError, match=f"'{missing}'.*required"):
        normalize(raw, kb)


def test_unknown_task_suggests_the_nearest(kb):
    with pytest.raises(ScenarioError, match="Did you mean 'text_classification'"):
        normalize({"task": "text_clasification", "dataset_size": 10}, kb)


def test_a_task_given_by_another_name_is_planned_under_its_id_and_says_so(kb):
    from harness.reporting.render import render_plan
    from rules.engine import get_engine

    sc = normalize({"task": "summarization", "dataset_size": 2000}, kb)
    assert sc["task"] == "text_generation"
    assert sc["read_as"] == [{"field": "task", "given": "summarization", "as": "text_generation",
                              "why": "'summarization' is one of the names of the task 'text_generation' in the "
                                     "knowledge base"}]
    plan = get_engine(kb).consult(sc)
    assert "Read as: task 'summarization' as text_generation" in render_plan(plan, kb)
    # the plan's scenario read again keeps the note once; the id itself, in any case, needs none
    assert normalize(plan.scenario, kb)["read_as"] == sc["read_as"]
    assert "read_as" not in normalize({"task": "Text Classification", "dataset_size": 10}, kb)
