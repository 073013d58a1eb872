"""A measured finding travels only with plans for the task it was measured on."""

from __future__ import annotations

import pytest

from knowledge import get_kb
from rules.engine import get_engine
from rules.scenario import normalize

KB = get_kb()


def consult(scenario: dict, kb) -> dict:
    return get_engine(kb).consult(normalize(scenario, kb), trace=False).to_dict()


def _findings(plan: dict) -> list[dict]:
    out = list(plan["technique"].get("findings") or [])
    for block in (*plan["risks"], *plan["diagnoses"]):
        for f in block.get("mitigations", []) + block.get("fixes", []):
            out += f.get("findings") or []
    return out


@pytest.mark.parametrize("scenario", [
    {"task": "image_classification", "dataset_size": 300, "compute": "cpu"},
    {"task": "image_classification", "dataset_size": 3000, "compute": "cpu", "retain_source": "yes",
     "symptoms": ["source_accuracy_drop"]},
    {"task": "text_classification", "dataset_size": 300, "compute": "cpu"},
    {"task": "text_classification", "dataset_size": 5000, "compute": "consumer_gpu", "retain_source": "yes",
     "symptoms": ["source_accuracy_drop"]},
    {"task": "text_generation", "dataset_size": 2000, "compute": "consumer_gpu", "gpu_memory_gb": 24},
], ids=["image-fe", "image-forgetting", "text-fe", "text-forgetting", "generation"])
def test_findings_are_those_measured_on_the_plans_task(scenario):
    plan = consult(scenario, KB)
    found = _findings(plan)
    assert all(f["task"] == scenario["task"] for f in found), [(f["task"], f["text"][:60]) for f in found]


def test_a_text_plan_still_carries_its_tweeteval_findings():
    plan = consult({"task": "text_classification", "dataset_size": 300, "compute": "cpu"}, KB)
    assert any("TweetEval" in f["text"] for f in _findings(plan))
