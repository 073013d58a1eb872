"""The catalog of today at the command line: `models` lists the current families with
sources; `consult` takes device_class and language and names uncovered tasks; `run`
refuses what this install cannot carry out (QLoRA, non-classification plans)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_models_lists_the_current_families_with_sources():
    r = invoke(["models", "--task", "text_generation"])
    assert r.exit_code == 0, r.output
    for name in ("qwen2.5-7b", "llama-3.1-8b", "mistral-7b", "phi-3.5-mini-instruct", "gemma-2-2b", "smollm2-1.7b"):
        assert name in r.output
    assert "qwen2024qwen25" in r.output and "Apache-2.0" in r.output
    assert "1.8T*" in r.output  # GPT-4's parameter count: a reported estimate
    data = json.loads(invoke(["models", "--task", "image_classification", "--format", "json"]).output)
    by_id = {m["id"]: m for m in data}
    assert by_id["resnet-50"]["speed"] != by_id["mobilenet-v3-small"]["speed"]
    assert by_id["dinov2-vit-s14"]["quality"]["image_classification"]["source"] == "oquab2023dinov2"
    assert by_id["convnext-tiny"]["cite"]["gflops"] == "torchvision-weights"


def test_consult_with_device_and_language_flags():
    r = invoke(["consult", "--task", "image_classification", "--dataset-size", "800", "--compute", "cpu",
                "--deployment", "edge", "--device-class", "Raspberry Pi", "--latency-ms", "200", "--no-input"])
    assert r.exit_code == 0, r.output
    assert "VGG-16: ~850 ms per image on a Raspberry Pi 4 CPU" in r.output and "budget 200 ms" in r.output
    assert "Assumed (not given" in r.output and "gpu_memory_gb = 16" in r.output
    plan = json.loads(invoke(["consult", "--task", "ner", "--language", "German", "--dataset-size", "3000",
                              "--format", "json", "--no-input"]).output)
    assert plan["scenario"]["task"] == "token_classification" and plan["scenario"]["language"] == "german"
    assert all("english" not in c["languages"] or "german" in c["languages"] for c in plan["candidates"])


@pytest.mark.parametrize("args, words", [
    (["--task", "tabular"], ["not cover", "gradient-boosted trees", "baseline to beat"]),
    (["--task", "speech recognition"], ["not cover", "Whisper"]),
    (["--task", "text_classification", "--language", "klingon"], ["'language'", "german"]),
    (["--task", "image_classification", "--device-class", "toaster"], ["'device_class'", "raspberry_pi_cpu"]),
])
def test_consult_refuses_clearly(args, words):
    r = invoke(["consult", *args, "--dataset-size", "500", "--no-input"])
    assert r.exit_code == 2, r.output
    text = r.output
    assert text.count("Error:") == 1 and "Traceback" not in text
    for w in words:
        assert w in text, text


@pytest.mark.parametrize("scenario, words", [
    ({"task": "text_generation", "dataset_size": 20000, "compute": "consumer_gpu", "gpu_memory_gb": 12},
     ["QLoRA", "CUDA GPU"]),
    ({"task": "ner", "dataset_size": 3000}, ["text_classification, text_generation only", "token_classification"]),
])
def test_run_refuses_what_this_install_cannot_carry_out(tmp_path, scenario, words):
    f = tmp_path / "scenario.json"
    f.write_text(json.dumps(scenario), encoding="utf-8")
    r = invoke(["run", f, "--seeds", "2", "--out", tmp_path / "out"])
    assert r.exit_code == 2, r.output
    text = r.output
    assert "Error:" in text and "Traceback" not in text
    for w in words:
        assert w in text, text
    assert not (tmp_path / "out").exists()  # nothing half-written
