"""Devices, latency budgets, languages, memory fit and the technique that follows
(rules/profile.py, rules/selection.py): each rule fires and stays silent, and the
scenarios of the model catalog of today get the plans an engineer would choose."""

from __future__ import annotations

import pytest
from ruletools import RuleCase

from knowledge import get_kb
from knowledge.estimates import latency_ms, training_memory_gb
from rules.base import Assumed, Candidate, DeployDevice, Fit, Language, LatencyBudget, Rejected, Technique

KB = get_kb()
IMAGE = dict(task="image_classification", dataset_size=5000)
TEXT = dict(task="text_classification", dataset_size=5000)
GEN = dict(task="text_generation", dataset_size=20_000, compute="consumer_gpu")


CASES = [
    RuleCase("profile.device_given", {**IMAGE, "device_class": "raspberry_pi_cpu"}, DeployDevice,
             {"id": "raspberry_pi_cpu"}, IMAGE),
    RuleCase("profile.device_default", {**IMAGE, "deployment": "mobile"}, DeployDevice, {"id": "phone_npu"},
             {**IMAGE, "device_class": "phone_cpu"}),
    RuleCase("profile.latency_given", {**IMAGE, "latency_ms": 80}, LatencyBudget, {"ms": 80}, IMAGE),
    RuleCase("profile.latency_default", {**IMAGE, "deployment": "mobile"}, LatencyBudget,
             {"ms": KB.threshold("default_latency_ms")["mobile"]}, {**IMAGE, "deployment": "server"}),
    RuleCase("profile.language_given", {**TEXT, "language": "German"}, Language, {"value": "german"}, TEXT),
    RuleCase("profile.language_default", TEXT, Language, {"value": "english"}, IMAGE),
    RuleCase("selection.reject_device_memory", {**IMAGE, "device_class": "microcontroller"}, Rejected,
             {"model": "resnet-18"}, {**IMAGE, "device_class": "laptop_cpu"}),
    RuleCase("selection.reject_language", {**TEXT, "language": "german"}, Rejected, {"model": "roberta-base"},
             {**TEXT, "language": "english"}),
    RuleCase("technique.from_top_candidate", {**GEN, "gpu_memory_gb": 24}, Technique, {"value": "lora"},
             {**IMAGE, "device_class": "microcontroller"}),
    RuleCase("technique.nothing_fits", {**IMAGE, "device_class": "microcontroller"}, Technique,
             {"value": "fine_tuning"}, IMAGE),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_fires(case, rule_fires):
    rule_fires(case.rule, case.fires, case.cls, **case.expect)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.rule)
def test_rule_silent(case, rule_silent):
    rule_silent(case.rule, case.silent)


def test_no_candidates_fires_only_for_a_task_without_models(tmp_path, facts_dump):
    """technique.no_candidates: a team's new task with no model still gets one technique."""
    from knowledge.loader import load
    from rules.engine import TransferEngine
    from rules.scenario import normalize

    (tmp_path / "team.yaml").write_text(
        "tasks:\n  - {id: intent_spotting, modality: text, family: nlp_transformer, "
        "description: 'Spot intents', sources: [tlexpert-heuristic]}\n", encoding="utf-8")
    kb = load([tmp_path])
    eng = TransferEngine(kb)
    plan = eng.consult(normalize({"task": "intent_spotting", "dataset_size": 5000}, kb)).to_dict()
    assert plan["candidates"] == [] and plan["technique"]["choice"] == "fine_tuning"
    # tuning.no_model_in_catalog: no model to size freezing by, the technique's plain recipe
    assert plan["model"] is None and plan["hyperparameters"]["frozen_layers"] == 0
    assert "tuning.no_model_in_catalog" in [t["rule"] for t in plan["trace"]]
    assert "technique.no_candidates" in [t["rule"] for t in plan["trace"]], facts_dump(eng)
    plan = eng.consult(normalize(dict(TEXT), kb)).to_dict()
    assert "technique.no_candidates" not in [t["rule"] for t in plan["trace"]]


# --- the scenarios of issue 11 and 15


def names(plan):
    return [c["model"] for c in plan["candidates"]]


def test_24gb_gpu_text_generation_gets_an_open_7_8b_model_with_lora_or_qlora(consult, facts_dump):
    plan, engine = consult(**GEN, gpu_memory_gb=24, num_classes=None)
    top = plan["candidates"][0]
    assert 7e9 <= top["params"] <= 8.1e9, facts_dump(engine)
    assert KB.models[top["model"]].open_weights
    assert plan["technique"]["choice"] in ("lora", "qlora")
    assert top["technique"] == plan["technique"]["choice"]
    assert "full fine-tuning needs" in plan["technique"]["why"]["text"]
    assert "distilgpt2" != top["model"]


def test_4gb_laptop_gpu_gets_a_small_model_or_lora_on_a_small_one(consult, facts_dump):
    plan, engine = consult(**GEN, gpu_memory_gb=4)
    top = plan["candidates"][0]
    # a small model; or adapters on one up to ~4B, QLoRA then at micro-batches with gradient checkpointing
    assert top["params"] <= 1.6e9 or (plan["technique"]["choice"] in ("lora", "qlora") and top["params"] <= 4e9), \
        facts_dump(engine)
    if plan["technique"]["choice"] == "qlora":
        assert "gradient checkpointing" in plan["technique"]["why"]["text"]
    assert top["memory_gb"] <= 4 * KB.threshold("usable_memory_share")
    rejected = {r["model"]: r["reasons"] for r in plan["rejected"]}
    assert any("QLoRA (4-bit) needs" in r for r in rejected["llama-3.1-8b"])


def test_qlora_is_chosen_only_when_full_fine_tuning_and_16bit_lora_do_not_fit(consult, facts_dump):
    plan, engine = consult(**GEN, gpu_memory_gb=12)
    assert plan["technique"]["choice"] == "qlora", facts_dump(engine)
    top = KB.models[plan["candidates"][0]["model"]]
    f, share, ovh = KB.threshold("activation_memory_factor"), KB.threshold("usable_memory_share"), \
        KB.threshold("training_overhead_gb")
    for tech in ("fine_tuning", "lora"):
        need = training_memory_gb(top.params, KB.techniques[tech].memory_bytes_per_param, f, ovh)
        assert need > 12 * share
    assert "quantization" in plan["hyperparameters"] and plan["hyperparameters"]["quantization"]["bits"] == 4
    assert plan["technique"]["costs"] and plan["technique"]["runs_here"] is False
    # on a CPU QLoRA is never offered (it needs a CUDA GPU)
    plan, engine = consult(task="text_generation", dataset_size=20_000, compute="cpu")
    assert plan["technique"]["choice"] != "qlora" and all(c["technique"] != "qlora" for c in plan["candidates"])


def test_cpu_only_text_classification_gets_a_small_encoder(consult, facts_dump):
    plan, engine = consult(**TEXT, compute="cpu", device_class="laptop_cpu", num_classes=4)
    top = KB.models[plan["candidates"][0]["model"]]
    assert top.params <= KB.threshold("cpu_max_train_params"), facts_dump(engine)
    assert "text_generation" not in top.tasks and top.family.value == "nlp_transformer"
    assert plan["technique"]["choice"] == "lora"


def test_raspberry_pi_200ms_images_get_mobile_models_not_vgg_vit_resnet50(consult, facts_dump):
    plan, engine = consult(task="image_classification", dataset_size=800, num_classes=5, compute="cpu",
                           deployment="edge", device_class="raspberry pi", latency_ms=200)
    cands = names(plan)
    assert not {"vgg-16", "vit-base-16", "resnet-50", "vit-large"} & set(cands), facts_dump(engine)
    assert any(m.startswith(("mobilenet", "efficientnet", "mobilevit")) for m in cands[:3])
    reasons = {r["model"]: " ".join(r["reasons"]) for r in plan["rejected"]}
    assert "per image on a Raspberry Pi 4 CPU" in reasons["vgg-16"] and "budget 200 ms" in reasons["vgg-16"]
    assert all(c["latency_ms"] <= 200 for c in plan["candidates"])


def test_speed_classes_come_from_numbers_not_labels():
    pi = KB.devices["raspberry_pi_cpu"]
    assert latency_ms(KB.models["resnet-50"], pi) > 10 * latency_ms(KB.models["mobilenet-v3-small"], pi)
    assert KB.models["resnet-50"].speed.value != KB.models["mobilenet-v3-small"].speed.value
    # the device's throughput follows from its published reference latency
    ref = pi.reference
    assert abs(ref.gflops / ref.latency_ms * 1000 - pi.gflops) / pi.gflops < 0.05


def test_multilingual_routing_gets_multilingual_encoders_only(consult, facts_dump):
    plan, engine = consult(**TEXT, num_classes=12, language="multilingual", compute="consumer_gpu")
    for c in plan["candidates"]:
        assert "multilingual" in KB.models[c["model"]].languages, facts_dump(engine)
    rejected = {r["model"]: " ".join(r["reasons"]) for r in plan["rejected"]}
    assert "english text only" in rejected["deberta-v3-base"]


def test_german_ner_is_token_classification_with_multilingual_candidates(consult, facts_dump):
    plan, engine = consult(task="NER", dataset_size=3000, language="de", compute="consumer_gpu",
                           domain_similarity="low")
    assert plan["scenario"]["task"] == "token_classification"
    assert plan["candidates"] and all("english" not in KB.models[c]["languages"] or
                                      "german" in KB.models[c]["languages"]
                                      for c in []), facts_dump(engine)
    for c in plan["candidates"]:
        langs = KB.models[c["model"]].languages
        assert "multilingual" in langs or "german" in langs, facts_dump(engine)


@pytest.mark.parametrize("task, words", [
    ("tabular", ["not cover", "gradient-boosted trees"]),
    ("tabular_regression", ["not cover", "gradient-boosted trees"]),
    ("Speech recognition", ["not cover", "Whisper"]),
    ("time series forecasting", ["not cover", "seasonal naive"]),
])
def test_a_task_outside_the_knowledge_base_is_named_not_replaced(task, words):
    from rules.scenario import NotCovered, normalize

    with pytest.raises(NotCovered) as info:
        normalize({"task": task, "dataset_size": 1000}, KB)
    for w in words:
        assert w in str(info.value), str(info.value)


def test_assumed_values_are_marked(consult, facts_dump):
    plan, engine = consult(**TEXT)
    fields = {a["field"] for a in plan["assumptions"]}
    assert {"gpu_memory_gb", "device_class", "language"} <= fields, facts_dump(engine)
    plan, engine = consult(**TEXT, gpu_memory_gb=24, device_class="laptop_cpu", language="english")
    assert not {"gpu_memory_gb", "device_class", "language"} & {a["field"] for a in plan["assumptions"]}
    assert all(f["rule"].startswith("profile.") for f in engine.facts_of(Assumed))


def test_quality_is_compared_only_within_one_benchmark(consult, facts_dump):
    plan, engine = consult(**IMAGE, compute="datacenter_gpu")
    bench = KB.tasks["image_classification"].benchmark
    compared = [c for c in plan["candidates"] if c["quality"] and c["quality"]["compared"]]
    assert all(c["quality"]["metric"] == bench for c in compared)
    dino = next(c for c in plan["candidates"] if c["model"] == "dinov2-vit-s14")
    assert dino["quality"]["compared"] is False and "not compared" in dino["why"]["text"]


def test_fit_facts_name_a_technique_of_the_chain(consult, facts_dump):
    plan, engine = consult(**GEN, gpu_memory_gb=16)
    for f in engine.facts_of(Fit):
        assert f["technique"] in ("fine_tuning", "lora", "qlora"), facts_dump(engine)
    assert [c["technique"] for c in engine.facts_of(Candidate) if c["rank"] == 1] == \
        [plan["technique"]["choice"]]
