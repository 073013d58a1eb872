"""Contract tests over the catalog of today: every number has a source, and is
within what that source states; memory estimates fall within published figures."""

from __future__ import annotations

import pytest

from knowledge import get_kb
from knowledge.estimates import training_memory_gb

KB = get_kb()
NUMBER_FIELDS = ("params", "gflops", "context_length")
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
    for task, q in KB.models[model].quality.items():
        stated = KB.sources[q.source].figures.get(f"{model}.quality.{task}")
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
