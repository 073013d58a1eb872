"""Activation memory of the catalog's image models, measured: the bytes of every tensor autograd saves
for the backward pass, per image (two images, halved) at the model's input size (float32), summed by a saved-tensors hook.

    .venv-vision/bin/python bench/bench_image_memory.py            # prints a YAML map id -> MB per image

Measured on the CPU: what autograd keeps does not depend on the device. The figures go into
knowledge/data/models.yaml (``activation_mb``, source ``measured-image-activations``), where the
training-memory estimate of an image model scales them by batch size and image area.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def saved_bytes(model, size: int) -> int:
    import torch

    total = 0
    weights = {p.data_ptr() for p in model.parameters()}  # saved weights are not copies: not activations

    def pack(t):
        nonlocal total
        if t.data_ptr() not in weights:
            total += t.numel() * t.element_size()
        return t

    x = torch.randn(2, 3, size, size)  # two images: batch norm needs more than one value per channel
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
        if isinstance(out, dict):  # segmentation models return {"out": ..., "aux": ...}
            out = out["out"]
        elif isinstance(out, (list, tuple)):
            out = out[0]
    del out
    return total // 2


def build(builder: str, size: int):
    library, arch = builder.split(":", 1)
    if library == "torchvision":
        import torchvision

        fn = getattr(torchvision.models, arch, None) or getattr(torchvision.models.segmentation, arch)
        kw = {"weights": None}
        if "segmentation" in fn.__module__:
            kw.update(weights_backbone=None, num_classes=21)
        return fn(**kw)
    import timm

    try:  # ViTs built for the size they are measured at (DINOv2's default is 518 px)
        return timm.create_model(arch, pretrained=False, img_size=size)
    except TypeError:
        return timm.create_model(arch, pretrained=False)


def main() -> int:
    from knowledge import get_kb

    kb = get_kb()
    for m in sorted(kb.models.values(), key=lambda m: m.id):
        if not m.builder or m.per != "image" or "x" not in m.input:
            continue
        size = int(m.input.split("x")[0])
        try:
            mb = saved_bytes(build(m.builder, size), size) / 2**20
        except Exception as exc:  # an architecture this torchvision/timm lacks: say so, go on
            print(f"# {m.id}: not measured ({type(exc).__name__}: {exc})")
            continue
        print(f"{m.id}: {mb:.1f}  # MB per image at {size}x{size}, float32")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
