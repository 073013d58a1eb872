"""Fixtures for the image-backbone tests: torchvision/timm models saved as local weights files.

These tests need torchvision and timm, which the image-backbone install path
provides (`make vision`, the environment .venv-vision); elsewhere they skip.
"""

from __future__ import annotations

import os

import pytest


def _build(library: str, arch: str):
    import torch

    torch.manual_seed(0)
    if library == "torchvision":
        import torchvision

        return torchvision.models.get_model(arch, weights=None)
    import timm

    return timm.create_model(arch, pretrained=False)


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    """``weights_file(library, arch, fmt)``: the path of a seeded random model's weights (cached)."""
    made = {}

    def make(library: str, arch: str, fmt: str = "safetensors"):
        key = (library, arch, fmt)
        if key not in made:
            import torch
            from safetensors.torch import save_file

            state = {k: v.contiguous() for k, v in _build(library, arch).state_dict().items()}
            path = tmp_path_factory.mktemp("weights") / f"{arch}.{fmt}"
            if fmt == "safetensors":
                save_file(state, str(path))
            else:
                torch.save(state, path)
            made[key] = str(path)
        return made[key]

    return make


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
