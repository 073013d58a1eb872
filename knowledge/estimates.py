"""Estimates computed from the knowledge base's numbers: latency on a device, speed
class, training memory per technique.

The formulas live here, once; every number they use comes from ``knowledge/``
(model GFLOPs and parameters, device throughput and bandwidth, technique bytes
per parameter, thresholds), so the rules, the catalog listing and the tests all
give the same figure.

- latency (ms per input) = device overhead + max(compute, weight traffic), where
  compute = model GFLOPs per input / device effective GFLOP/s, and weight
  traffic = parameters x deployed bytes per parameter / device bandwidth (the
  bound that dominates per-token generation with a large model).
- training memory (GiB) = parameters x the technique's bytes per parameter x the
  activation factor + a fixed overhead (framework, CUDA context, one batch): the coarse
  estimate, for models without a layer count or not run per token (images).
- training memory of a text transformer, from first principles (``transformer_memory``):
  weights, gradients and optimizer state (the technique's bytes per parameter) + activations
  kept for the backward pass, 34 x hidden bytes per token per layer in 16-bit (Korthikanti et
  al. 2022, attention by a memory-efficient kernel, so no sequence-squared term), or 2 x hidden
  per token per layer with gradient checkpointing (a layer's input only, plus one layer
  recomputed) + for weights stored below 16 bits (QLoRA) one layer's dequantised 16-bit copy + the
  output logits of a language model (batch x sequence x vocabulary, 16-bit
  logits and a 32-bit copy for the loss) + the fixed overhead. Hidden size, where the catalog
  gives none, from parameters and layers: P ~ 12 L h^2.
"""

from __future__ import annotations

import math

GIB = 2**30


def input_tokens(model, generative: bool, sequence_tokens: int) -> int:
    """Tokens in one input of a text model: one generated token, or one sequence to classify."""
    if model.per != "token":
        return 1
    return 1 if generative else sequence_tokens


def input_side(model) -> int:
    """The side in pixels of an image model's usual input ('224x224' -> 224); 0 when not an image size."""
    head = str(getattr(model, "input", "") or "").split("x")[0]
    return int(head) if head.isdigit() else 0


def area_scale(model, image_size: int = 0) -> float:
    """How an image model's compute and activations grow at ``image_size`` pixels: the area ratio to its
    usual input (1 for text models or when no size is given)."""
    side = input_side(model)
    if getattr(model, "per", "") != "image" or not image_size or not side:
        return 1.0
    return (image_size / side) ** 2


def latency_ms(model, device, *, generative: bool = False, sequence_tokens: int = 128,
               image_size: int = 0) -> float:
    """Estimated milliseconds per input (per generated token for generation) at batch size 1; an image
    model's compute at ``image_size`` pixels (its usual input when 0)."""
    gflop = model.gflops * input_tokens(model, generative, sequence_tokens) * area_scale(model, image_size)
    compute = gflop / device.gflops * 1000.0
    traffic = model.params * device.bytes_per_param / (device.bandwidth_gbs * 1e9) * 1000.0
    return device.overhead_ms + max(compute, traffic)


def deployed_gb(model, device) -> float:
    """Memory the model's weights take on the device (GiB)."""
    return model.params * device.bytes_per_param / GIB


def speed_class(ms: float, bounds: dict) -> str:
    """fast | medium | slow | very_slow from a latency and the ``speed_class_ms`` bounds."""
    for name in ("fast", "medium", "slow"):
        if ms <= bounds[name]:
            return name
    return "very_slow"


def training_memory_gb(params: int, bytes_per_param: float, factor: float, overhead_gb: float) -> float:
    """Estimated training memory (GiB) of a technique on a model of ``params`` parameters."""
    return params * bytes_per_param * factor / GIB + overhead_gb


ACT_BYTES = 34          # x hidden, per token per layer, 16-bit activations kept for backward (Korthikanti et al.)
CKPT_BYTES = 2          # x hidden, per token per layer, with gradient checkpointing (the layer's input)
LOGIT_BYTES = 6         # per logit: 16-bit logits and a 32-bit copy for the loss
ASSUMED_VOCAB = 32_000  # a language model's vocabulary when the catalog gives none (Llama 2, Mistral)


def hidden_size(params: float, layers: int) -> int:
    """A transformer's hidden size from its parameters and layers (P ~ 12 L h^2), to a multiple of 64."""
    return max(64, int(round(math.sqrt(params / (12 * layers)) / 64)) * 64)


ADAPTER_BYTES = 16      # per adapter parameter: 32-bit weight, gradient and two AdamW moments
# adapted matrix widths (in + out) per layer, in units of the hidden size: q, k, v, o (2h each) and a
# gated MLP's gate, up and down (h + 8h/3 each, LLaMA's proportions) for all-linear; q and v alone
ADAPTER_WIDTH = {"all": 8 + 3 * (1 + 8 / 3), "attention": 4}


IMAGE_ACT_SHARE = 0.5   # mixed precision keeps the measured float32 activations in 16-bit
IMAGE_CKPT_SHARE = 0.25  # checkpointing of a CNN's stages (Chen et al. 2016: sub-linear, ~sqrt of the layers)


def image_memory(params: float, bytes_per_param: float, activation_mb: float, *, batch: int, backprop: bool,
                 checkpointing: bool = False, area_scale: float = 1.0, overhead_gb: float = 0.0) -> dict:
    """GiB by part for training an image model on batches of ``batch`` images: weights and optimizer state
    (the technique's bytes per parameter), the activations autograd keeps (``activation_mb`` measured per
    image at the model's input size in float32, kept in 16-bit, scaled by the image area), overhead."""
    act = activation_mb * 2**20 * IMAGE_ACT_SHARE * batch * area_scale if backprop else 0.0
    if checkpointing:
        act *= IMAGE_CKPT_SHARE
    parts = {"weights_states": params * bytes_per_param / GIB, "activations": act / GIB, "overhead": overhead_gb}
    parts["total"] = sum(parts.values())
    return {k: round(v, 3) for k, v in parts.items()}


def transformer_memory(params: float, layers: int, bytes_per_param: float, *, batch: int, seq: int,
                       backprop: bool, checkpointing: bool = False, vocab: int = 0,
                       overhead_gb: float = 0.0, hidden: int = 0, adapter_rank: int = 0,
                       adapter_matrices: str = "attention") -> dict:
    """GiB by part for training (or, ``backprop`` False, running) a text transformer on batches of
    ``batch`` sequences of ``seq`` tokens: weights_states, adapters, activations, logits, overhead, total.
    Weights stored below 16 bits keep the token embeddings and output head (vocab x hidden, each) in 16-bit;
    LoRA adapters of ``adapter_rank`` on ``adapter_matrices`` ('all' linear layers or q/v 'attention')
    train in 32-bit with AdamW."""
    h = hidden or hidden_size(params, layers)
    tokens = batch * seq
    if backprop:
        act = (CKPT_BYTES * layers + ACT_BYTES) * tokens * h if checkpointing else ACT_BYTES * layers * tokens * h
    else:  # a forward pass keeps one layer's activations at a time
        act = 2 * ACT_BYTES * tokens * h
    # weights stored below 16 bits are dequantised a layer at a time for each matmul: one layer's 16-bit copy
    workspace = 2 * params / layers if bytes_per_param < 2 else 0.0
    embeddings = min(params / 2, 2 * vocab * h) if bytes_per_param < 2 else 0.0  # not quantised
    weights = (params - embeddings) * bytes_per_param + embeddings * 2 + workspace
    adapters = ADAPTER_BYTES * adapter_rank * layers * ADAPTER_WIDTH[adapter_matrices] * h if adapter_rank else 0.0
    parts = {"weights_states": weights / GIB, "adapters": adapters / GIB, "activations": act / GIB,
             "logits": tokens * vocab * LOGIT_BYTES / GIB if vocab else 0.0, "overhead": overhead_gb}
    parts["total"] = sum(parts.values())
    return {k: round(v, 3) for k, v in parts.items()}


def fit_batch(need, batch: int, usable_gb: float) -> "dict | None":
    """How to train a batch of ``batch`` in ``usable_gb``: the largest micro-batch that fits, the
    gradient accumulation that keeps the batch, and checkpointing only when accumulation down to a
    micro-batch of 4 does not fit (accumulation first, then checkpointing, as the usual advice for one
    GPU goes). ``need(micro, checkpointing)`` -> GiB. None when a micro-batch of 1 with
    checkpointing does not fit."""
    batch = max(1, int(batch))

    def micro_sizes(floor):
        m = batch
        while m >= floor:
            yield m
            m //= 2

    for ckpt, floor in ((False, min(4, batch)), (True, 1)):
        for m in micro_sizes(floor):
            gb = need(m, ckpt)
            if gb <= usable_gb:
                return {"micro_batch": m, "accumulation": math.ceil(batch / m), "checkpointing": ckpt, "gb": gb}
    return None


def fmt_ms(ms: float) -> str:
    """'~2.4 s' or '~85 ms'."""
    if ms >= 1000:
        v = ms / 1000
        return f"~{v:.2g} s" if v < 10 else f"~{v:,.0f} s"
    return f"~{ms:.2g} ms" if ms < 10 else f"~{ms:.0f} ms"


def holdout_counts(n: float, validation_share: float, test_share: float, cap: int = 0) -> tuple:
    """(training, validation, test) examples of ``n`` under a held-out protocol: each held-out set its
    share of ``n``, at most ``cap`` examples (0: no cap), the rest for training. The plan states these
    shares (``evaluation``); the run splits them and the time estimate counts them."""
    n_val = n * validation_share
    n_test = n * test_share
    if cap:
        n_val, n_test = min(n_val, cap), min(n_test, cap)
    return n - n_val - n_test, n_val, n_test
