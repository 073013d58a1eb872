"""Contract tests over the catalog of today: every number has a source, and is
within what that source states; memory estimates fall within published figures."""

from __future__ import annotations

import pytest

from knowledge import get_kb
from knowledge.estimates import training_memory_gb

KB = get_kb()
NUMBER_FIELDS = ("params", "gflops", "context_length", "vocab", "activation_mb")
TOLERANCE = 0.02  # a single stated figure is rounded by its source: within 2%


def within(value: float, stated) -> bool:
    if isinstance(stated, list):
        lo, hi = stated
        return lo <= value <= hi
    return abs(value - stated) <= TOLERANCE * abs(stated)


@pytest.mark.parametrize("model", sorted(KB.models), ids=str)
def test_every_number_cites_a_source_that_states_it(model):
    m = KB.models[model]
    for name in NUMBER_FIELDS:
        value = getattr(m, name)
        if not value:
            continue
        src = m.cite.get(name)
        assert src, f"{model}.{name} = {value} cites no source"
        if src == "kaplan2020scaling":  # derived: non-embedding parameters per token
            assert m.per == "token" and value <= m.params / 1e9 * 1.01, (model, value)
            continue
        stated = KB.sources[src].figures.get(f"{model}.{name}")
        assert stated is not None, f"{model}.{name}: source {src} states no figure for it"
        assert within(value, stated), f"{model}.{name} = {value}, but {src} states {stated}"


@pytest.mark.parametrize("model", sorted(KB.models), ids=str)
def test_every_benchmark_figure_is_what_its_source_states(model):
    m = KB.models[model]
    for key, task, q in [*(("quality", t, q) for t, q in m.quality.items()),
                         *(("frozen_quality", t, q) for t, q in m.frozen_quality.items())]:
        stated = KB.sources[q.source].figures.get(f"{model}.{key}.{task}")
        assert stated is not None, f"{model} {task}: {q.source} states no {q.metric} figure"
        assert within(q.value, stated), (model, task, q.value, stated)
        assert q.date, f"{model} {task}: the figure needs its source's date"


def test_unconfirmed_figures_are_marked_as_reported_estimates():
    gpt4 = KB.models["gpt-4"]
    assert "params" in gpt4.reported and not gpt4.open_weights
    assert "unconfirmed" in KB.sources["openai2023gpt4"].reference
    assert "small scale" not in KB.models["mistral-large-2"].best_use.split(";")[0].lower()


@pytest.mark.parametrize("technique", [t for t in sorted(KB.techniques) if KB.techniques[t].memory_figures])
def test_memory_estimates_fall_within_published_figures(technique):
    t = KB.techniques[technique]
    f, ovh = KB.threshold("activation_memory_factor"), KB.threshold("training_overhead_gb")
    for fig in t.memory_figures:
        est = training_memory_gb(fig.params, t.memory_bytes_per_param, f, ovh)
        assert fig.low_gb <= est <= fig.high_gb, f"{technique} on {fig.params:.3g}: ~{est:.1f} GiB, " \
                                                 f"published {fig.low_gb}-{fig.high_gb} ({fig.what})"


def test_seven_b_memory_matches_the_usual_figures():
    """7B: full fine-tuning with AdamW far beyond 24 GB, 16-bit LoRA 16+ GB, QLoRA under 10 GB."""
    f, ovh = KB.threshold("activation_memory_factor"), KB.threshold("training_overhead_gb")
    est = {t: training_memory_gb(7e9, KB.techniques[t].memory_bytes_per_param, f, ovh)
           for t in ("fine_tuning", "lora", "qlora")}
    assert est["fine_tuning"] > 4 * 24
    assert 16 <= est["lora"] <= 24
    assert est["qlora"] < 10


@pytest.mark.parametrize("device", sorted(KB.devices), ids=str)
def test_every_device_cites_its_throughput(device):
    d = KB.devices[device]
    assert d.sources and all(s in KB.sources for s in d.sources)
    assert d.reference is not None or d.reported, f"{device}: an unmeasured throughput must be marked reported"
    if d.reference is not None:
        assert d.reference.source in KB.sources


def test_the_catalog_holds_the_families_people_adapt_today():
    ids = set(KB.models)
    for family in ("qwen2.5-7b", "qwen2.5-0.5b-instruct", "llama-3.1-8b", "llama-3.2-1b", "mistral-7b",
                   "phi-3.5-mini-instruct", "gemma-2-2b", "smollm2-1.7b", "deberta-v3-base", "deberta-v3-small",
                   "deberta-v3-xsmall", "modernbert-base", "roberta-base", "xlm-roberta-base",
                   "multilingual-e5-small", "minilm-l12-h384", "tinybert-4l", "convnext-tiny",
                   "efficientnet-v2-s", "mobilenet-v4-conv-small", "mobilevit-s", "efficientnet-lite0",
                   "deit-small", "dinov2-vit-s14", "clip-vit-b-32", "siglip-base-16", "blip2-opt-2.7b"):
        assert family in ids, family
    for m in KB.models.values():  # text models say which languages they cover
        if m.per == "token":
            assert m.languages and m.licence and m.context_length, m.id


# --- training memory from first principles (knowledge.estimates.transformer_memory)


def _mem(params, layers, tech, batch, seq, ckpt=False, vocab=32_000):
    from knowledge.estimates import transformer_memory

    return transformer_memory(params, layers, KB.techniques[tech].memory_bytes_per_param, batch=batch, seq=seq,
                              backprop=True, checkpointing=ckpt, vocab=vocab,
                              overhead_gb=KB.threshold("training_context_gb"))["total"]


def test_training_memory_grows_with_batch_and_sequence_and_checkpointing_cuts_it():
    a = _mem(7e9, 32, "lora", 1, 512)
    assert _mem(7e9, 32, "lora", 8, 512) > a + 10  # activations and logits scale with the tokens in a step
    assert _mem(7e9, 32, "lora", 1, 2048) > a + 5
    assert _mem(7e9, 32, "lora", 8, 512) - _mem(7e9, 32, "lora", 8, 512, ckpt=True) > 10


@pytest.mark.parametrize("tech,published", [("lora", [16, 32, 80, 160]), ("qlora", [6, 12, 24, 48])])
def test_training_memory_matches_llama_factorys_table(tech, published):
    """LLaMA 7B/13B/30B/65B at batch 1 of 512 tokens, from parameters and layers only: within 0.75-1.3x the
    published requirement (bench/bench_memory.py prints the whole comparison)."""
    for (params, layers), pub in zip([(6.74e9, 32), (13.0e9, 40), (32.5e9, 60), (65.2e9, 80)], published):
        est = _mem(params, layers, tech, 1, 512, ckpt=True)
        assert 0.75 <= est / (pub * 1e9 / 2**30) <= 1.3, (tech, params, est, pub)


def test_a_batch_that_does_not_fit_is_split_into_accumulated_micro_batches():
    """7B LoRA at batch 32 of 512 tokens does not fit 24 GB in one pass; accumulation, then checkpointing,
    make it fit, and the effective batch stays 32. QLoRA at batch 16 on 12 GB likewise."""
    from knowledge.estimates import fit_batch

    usable = 24 * KB.threshold("usable_memory_share")
    assert _mem(7e9, 32, "lora", 32, 512) > usable
    fit = fit_batch(lambda m, c: _mem(7e9, 32, "lora", m, 512, c), 32, usable)
    assert fit and fit["micro_batch"] * fit["accumulation"] == 32 and fit["micro_batch"] < 32 and fit["gb"] <= usable
    fit = fit_batch(lambda m, c: _mem(7e9, 32, "qlora", m, 512, c), 16, 12 * KB.threshold("usable_memory_share"))
    assert fit and (fit["micro_batch"] < 16 or fit["checkpointing"])
    assert fit["micro_batch"] * fit["accumulation"] == 16
    assert fit_batch(lambda m, c: _mem(70e9, 80, "lora", m, 512, c), 32, 24 * 0.9) is None


def test_the_plan_says_how_the_batch_fits():
    from rules.engine import get_engine
    from rules.scenario import normalize

    plan = get_engine(KB).consult(normalize({"task": "text_generation", "dataset_size": 60000,
                                             "compute": "consumer_gpu", "gpu_memory_gb": 24}, KB)).to_dict()
    assert plan["technique"]["choice"] == "lora"
    why = plan["technique"]["why"]["text"]
    assert "at batch 16 of 512 tokens" in why and "gradient checkpointing" in why, why
    small = get_engine(KB).consult(normalize({"task": "text_generation", "dataset_size": 60000,
                                              "compute": "consumer_gpu", "gpu_memory_gb": 12}, KB)).to_dict()
    assert any("accumulated micro-batches" in c["why"]["text"] for c in small["candidates"])
    # QLoRA of the 7B on 10 GB: the 152k-token vocabulary's logits and the rank-64 all-linear adapters
    # (with their optimizer state) do not fit at the recipe's rank; the plan lowers it and says so
    tight = get_engine(KB).consult(normalize({"task": "text_generation", "dataset_size": 20000,
                                              "compute": "consumer_gpu", "gpu_memory_gb": 10}, KB)).to_dict()
    assert tight["technique"]["choice"] == "qlora" and tight["hyperparameters"]["lora"]["rank"] < 64
    assert "at LoRA rank" in tight["technique"]["why"]["text"]
    assert "halved" in tight["hyperparameters_why"]["lora"]["text"]


def test_an_image_plan_counts_the_activations_of_its_batch():
    """Segmentation at 520 px on 6 GB: the measured activations (DeepLabV3's ~373 MB per image in float32)
    do not fit a batch of 8 in one pass; the plan accumulates micro-batches and says so. The estimate grows
    with the batch."""
    from knowledge.estimates import image_memory
    from rules.engine import get_engine
    from rules.scenario import normalize

    m = KB.models["deeplabv3-mobilenet-v3-large"]
    one, eight = (image_memory(m.params, 16, m.activation_mb, batch=b, backprop=True)["total"] for b in (1, 8))
    assert eight > one + 1.0
    plan = get_engine(KB).consult(normalize({"task": "semantic_segmentation", "dataset_size": 800,
                                             "compute": "consumer_gpu", "gpu_memory_gb": 6}, KB)).to_dict()
    why = plan["technique"]["why"]["text"]
    assert "520x520 images" in why and "accumulated micro-batches" in why, why


def test_the_plan_carries_how_its_batch_is_trained():
    """memory.batching: the batch, micro-batch, accumulation and checkpointing the memory fit chose for the
    model the plan runs, consistent with each other and within the usable memory."""
    from rules.engine import get_engine
    from rules.scenario import normalize

    for sc in ({"task": "text_generation", "dataset_size": 20000, "compute": "consumer_gpu", "gpu_memory_gb": 12},
               {"task": "semantic_segmentation", "dataset_size": 800, "compute": "consumer_gpu", "gpu_memory_gb": 6}):
        plan = get_engine(KB).consult(normalize(sc, KB)).to_dict()
        b = plan["memory"]["batching"]
        assert b["batch_size"] == plan["hyperparameters"]["batch_size"]
        assert b["micro_batch"] * b["gradient_accumulation"] >= b["batch_size"] > b["micro_batch"]
        assert b["estimated_gb"] <= plan["memory"]["usable_gb"]
