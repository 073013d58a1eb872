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
  activation factor + a fixed overhead (framework, CUDA context, one batch).
"""

from __future__ import annotations

GIB = 2**30


def input_tokens(model, generative: bool, sequence_tokens: int) -> int:
    """Tokens in one input of a text model: one generated token, or one sequence to classify."""
    if model.per != "token":
        return 1
    return 1 if generative else sequence_tokens


def latency_ms(model, device, *, generative: bool = False, sequence_tokens: int = 128) -> float:
    """Estimated milliseconds per input (per generated token for generation) at batch size 1."""
    gflop = model.gflops * input_tokens(model, generative, sequence_tokens)
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


def fmt_ms(ms: float) -> str:
    """'~2.4 s' or '~85 ms'."""
    if ms >= 1000:
        v = ms / 1000
        return f"~{v:.2g} s" if v < 10 else f"~{v:,.0f} s"
    return f"~{ms:.2g} ms" if ms < 10 else f"~{ms:.0f} ms"
