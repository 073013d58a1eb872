"""How a model's training fits the memory: the estimate of ``knowledge.estimates`` at the plan's batch,
with the micro-batch, gradient accumulation, checkpointing and (for adapters) LoRA rank that make it fit.

``memory_plan`` answers for one model and technique: (GiB, how, fits, batching), where ``how`` is the
phrase the plan prints and ``batching`` the fit (micro_batch, accumulation, checkpointing, gb, rank), or
None for a model the first-principles estimate does not cover (no layer count, audio)."""

from __future__ import annotations

from knowledge.estimates import ASSUMED_VOCAB, area_scale, fit_batch, image_memory, transformer_memory
from rules.base import sequence_tokens
from rules.tuning import scaled_values


def _describe(fit: dict, batch: int, unit: str, whole_gb: float, lowered: str = "") -> str:
    """The plan's phrase for a batch that fits: as is, or accumulated and checkpointed."""
    if fit["micro_batch"] == batch and not fit["checkpointing"]:
        return f" at batch {batch} of {unit}{lowered}"
    return (f" at batch {batch} of {unit}{lowered}"
            + (f" as {fit['accumulation']} accumulated micro-batches of {fit['micro_batch']}"
               if fit["accumulation"] > 1 else "")
            + (" with gradient checkpointing" if fit["checkpointing"] else "")
            + f" (~{whole_gb:,.1f} GiB in one pass)")


def _batch(kb, tech: str, model: str, generative: bool, scenario: dict) -> int:
    scaled = scaled_values(kb, tech, model, generative, int(scenario.get("dataset_size") or 0),
                           scenario.get("task", ""), scenario.get("compute", ""))[0]
    return int(scaled.get("batch_size", kb.techniques[tech].defaults.get("batch_size", 32))), scaled


def memory_plan(kb, model: str, tech: str, usable: float, scenario: dict):
    entry = kb.models[model]
    if entry.per == "image" and entry.activation_mb:
        return _image_plan(kb, entry, tech, usable, scenario)
    if entry.per != "token" or not entry.layers:
        return None
    t = kb.techniques[tech]
    task = kb.tasks.get(scenario.get("task"))
    generative = bool(task is not None and task.generative)
    seq = sequence_tokens(kb, scenario, generative, training=True)
    batch, scaled = _batch(kb, tech, model, generative, scenario)
    vocab = (entry.vocab or ASSUMED_VOCAB) if generative else 0  # the logits of a large vocabulary weigh
    ctx = kb.threshold("training_context_gb")
    lora = t.defaults.get("lora") or {}
    planned = int(lora.get("rank", 0)) if t.adapters else 0
    matrices = "all" if "all-linear" in (lora.get("target_modules"), scaled.get("lora_target_modules")) else "attention"

    def need_at(rank):
        return lambda micro, ckpt: transformer_memory(
            entry.params, entry.layers, t.memory_bytes_per_param, batch=micro, seq=seq, backprop=t.trains_backbone,
            checkpointing=ckpt, vocab=vocab, overhead_gb=ctx, adapter_rank=rank, adapter_matrices=matrices)["total"]

    # adapters that do not fit at the recipe's rank are tried at half the rank, down to 8: the rank is the
    # first setting people lower (a smaller adapter, the same base model)
    ranks = [planned] + [r for r in (planned // 2, planned // 4, planned // 8) if r >= 8] if planned else [0]
    for rank in ranks:
        need = need_at(rank)
        fit = fit_batch(need, batch, usable)
        if fit is not None:
            break
    if fit is None:
        return need_at(planned)(1, True), f" even at batch 1 of {seq} tokens with gradient checkpointing", False, None
    lowered = f" at LoRA rank {rank} (not {planned})" if rank != planned else ""
    if lowered:
        fit = {**fit, "rank": rank}
    return fit["gb"], _describe(fit, batch, f"{seq} tokens", need(batch, False), lowered), True, fit


def _image_plan(kb, entry, tech: str, usable: float, scenario: dict):
    """An image model: weights and optimizer state plus the measured activations per image at the scenario's
    image size, batched, accumulated and checkpointed as the text models are."""
    t = kb.techniques[tech]
    batch, _ = _batch(kb, tech, entry.id, False, scenario)
    ctx = kb.threshold("training_context_gb")
    px = scenario.get("image_size")
    size = f"{px}x{px}" if px else entry.input
    scale = area_scale(entry, px or 0)

    def need(micro, ckpt):
        return image_memory(entry.params, t.memory_bytes_per_param, entry.activation_mb, batch=micro,
                            backprop=t.trains_backbone, checkpointing=ckpt, area_scale=scale, overhead_gb=ctx)["total"]

    fit = fit_batch(need, batch, usable)
    if fit is None:
        return need(1, True), f" even at batch 1 of {size} images with gradient checkpointing", False, None
    return fit["gb"], _describe(fit, batch, f"{size} images", need(batch, False)), True, fit
