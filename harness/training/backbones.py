"""Image backbones from torchvision and timm, built here and loaded from local weights.

A backbone is named on the command line as

- ``torchvision:<arch>`` (any name of ``torchvision.models.list_models()``),
- ``timm:<arch>`` (any name of ``timm.list_models()``),
- a catalog name or alias with a ``builder`` (``resnet-18``, ``mobilenet_v3_small``...),
- or a local timm folder: ``config.json`` naming its ``architecture`` beside
  ``model.safetensors`` (or ``pytorch_model.bin``), the layout timm saves.

The architecture is built with random weights (nothing is ever fetched) and
the weights come from a local file: safetensors, or a plain state dict read
with ``torch.load(weights_only=True)``, so no pickled object is ever
unpickled. The source classifier is dropped: ``TransferNet`` wraps the body
(pooled features out), a new linear head for the target classes, and the
input preprocessing the weights expect (grey to RGB, resize, normalise).

Layer groups, for freezing the first k and for discriminative learning rates,
come from timm's own ``group_matcher`` for timm models, and from the module
tree for torchvision models (stem, then each stage, then the top).
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness.training.models import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
INSTALL_HINT = ("torchvision and timm are installed by the image-backbone install path: "
                "`make vision` (a separate environment, .venv-vision, with `pip install -e \".[vision]\"`).")


@dataclass
class BackboneSpec:
    library: str  # "torchvision" | "timm"
    arch: str
    weights: Optional[str] = None
    display: str = ""
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    input_size: int = 224

    @property
    def name(self) -> str:
        return self.display or f"{self.library}:{self.arch}"


def _require(library: str):
    import importlib

    try:
        return importlib.import_module(library)
    except ImportError as exc:
        raise ModelError(f"{library} is not installed in this environment ({exc}). {INSTALL_HINT}") from None


def is_backbone_name(name: Optional[str], kb=None) -> bool:
    """Whether ``name`` names a torchvision/timm backbone (not the small CNN or a weights file)."""
    if not name:
        return False
    if name.startswith(("torchvision:", "timm:")):
        return True
    p = Path(name).expanduser()
    if p.is_dir() and (p / "config.json").exists():
        return _timm_config(p) is not None
    entry = kb.find_model(name) if kb is not None else None
    return bool(entry is not None and entry.builder)


def _timm_config(folder: Path) -> Optional[dict]:
    from knowledge.reading import read_json
    from knowledge.schema import KnowledgeError

    try:
        cfg = read_json(folder / "config.json", kind="structured", what="model config")
    except KnowledgeError:
        return None
    return cfg if isinstance(cfg, dict) and isinstance(cfg.get("architecture"), str) else None


def resolve_backbone(name: str, weights: Optional[str], kb=None) -> BackboneSpec:
    """A ``BackboneSpec`` for a builder name, catalog entry or timm folder, with its weights file."""
    p = Path(name).expanduser()
    if p.is_dir():
        cfg = _timm_config(p)
        if cfg is None:
            raise ModelError(f"{p}/config.json: no 'architecture' field (expected a timm model folder)")
        files = [p / f for f in ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth")]
        found = weights or next((str(f) for f in files if f.exists()), None)
        if found is None:
            raise ModelError(f"{p}: no weights file (expected model.safetensors or pytorch_model.bin)")
        pre = cfg.get("pretrained_cfg") or {}
        try:
            if not isinstance(pre, dict):
                raise TypeError("'pretrained_cfg' is not a mapping")
            mean = tuple(float(v) for v in (pre.get("mean") or IMAGENET_MEAN))
            std = tuple(float(v) for v in (pre.get("std") or IMAGENET_STD))
            size = int(list(pre.get("input_size") or [3, 224, 224])[-1])
            if len(mean) != 3 or len(std) != 3 or size < 1:
                raise ValueError("mean and std need 3 values and input_size a positive size")
        except (TypeError, ValueError) as exc:
            raise ModelError(f"The 'pretrained_cfg' field of {p}/config.json must hold mean, std (3 numbers "
                             f"each) and input_size ([channels, height, width]): {exc}") from None
        _check_timm_arch(cfg["architecture"], f"{p}/config.json")
        return BackboneSpec("timm", cfg["architecture"], found, p.name, mean, std, size)
    if name.startswith(("torchvision:", "timm:")):
        library, arch = name.split(":", 1)
        display = name
    else:
        entry = kb.find_model(name) if kb is not None else None
        if entry is None or not entry.builder:
            raise ModelError(f"The model {name!r} has no torchvision or timm builder in the catalog "
                             f"(use torchvision:<arch> or timm:<arch>).")
        library, arch = entry.builder.split(":", 1)
        display = entry.id
    if not weights:
        raise ModelError(f"The weights of {display} are not on this machine and cannot be downloaded here: "
                         f"pass a local file with --weights (safetensors, or a state dict saved with torch.save).")
    spec = BackboneSpec(library, arch, weights, display)
    if library == "timm":
        timm = _check_timm_arch(arch, "--model")
        cfg = _timm_pretrained_cfg(timm, arch)
        spec.mean, spec.std = tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
        spec.input_size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    elif library == "torchvision":
        tv = _require("torchvision")
        classifiers = tv.models.list_models(module=tv.models)  # image classifiers only, not detection etc.
        if arch not in classifiers:
            from knowledge.schema import nearest

            close = nearest(arch, classifiers)
            raise ModelError(f"torchvision has no image-classification architecture {arch!r}."
                             + (f" Nearest: {', '.join(close)}." if close else ""))
    else:
        raise ModelError(f"unknown model library {library!r} (expected torchvision or timm)")
    return spec


def _check_timm_arch(arch: str, where: str):
    timm = _require("timm")
    if not timm.is_model(arch):  # an exact name: list_models() would take "resnet*" as a pattern
        from knowledge.schema import nearest

        close = nearest(arch, timm.list_models())
        raise ModelError(f"timm has no architecture {arch!r} ({where})."
                         + (f" Nearest: {', '.join(close)}." if close else ""))
    return timm


def _timm_pretrained_cfg(timm, arch: str) -> dict:
    try:
        cfg = timm.models.get_pretrained_cfg(arch)
        return cfg.to_dict() if cfg is not None else {}
    except Exception:  # noqa: BLE001 - a missing pretrained config only means ImageNet defaults
        return {}


def read_state_dict(path: str | Path) -> dict:
    """Tensors from safetensors, or a plain state dict via ``torch.load(weights_only=True)``."""
    import torch

    from harness.training.data import DataError

    from knowledge.reading import safe_path
    from knowledge.schema import KnowledgeError

    try:  # a loop, a folder, a FIFO or a device is refused before any reader opens it
        path = safe_path(path, what="weights file")
    except KnowledgeError as exc:
        raise DataError(str(exc)) from None
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read weights is the user's file
        raise DataError(f"{path}: not a loadable weights file ({str(exc).splitlines()[0]})") from None
    for key in ("state_dict", "model", "model_state_dict"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


# --- the module tree: classifier and layer groups


def _torchvision_classifier(model) -> str:
    """Name of the last linear layer: the ImageNet classifier of every torchvision classification model."""
    import torch.nn as nn

    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ModelError(f"{type(model).__name__}: no linear classifier to replace")
    return names[-1]


_CONTAINERS = ("features", "layers", "blocks", "stages", "encoder.layers", "trunk_output")


def _stage_key(name: str) -> tuple[str, bool]:
    """(group key, is a stage) for a parameter name: stages are children of a known container."""
    for c in _CONTAINERS:
        if name.startswith(c + "."):
            rest = name[len(c) + 1:]
            return f"{c}.{rest.split('.')[0]}", True
    return name.split(".")[0], bool(re.match(r"layer\d+$", name.split(".")[0]))


def torchvision_groups(param_names: list[str], model=None) -> list[list[str]]:
    """Parameter names grouped stem, stage..., in forward order; loose leaves join their neighbour.

    With the model: a group of normalisation layers only joins the group before it (a conv and its
    batch norm freeze together), and where the names give fewer than 3 groups, each top-level child
    is a group (shufflenet, googlenet, inception)."""
    groups: list[list[str]] = []
    keys: list[tuple[str, bool]] = []
    for n in param_names:
        key, stage = _stage_key(n)
        if keys and (keys[-1][0] == key or (not stage and not keys[-1][1])):
            groups[-1].append(n)
            continue
        if not stage and keys and len(groups) > 1:  # a trailing leaf (final norm) joins the last stage
            groups[-1].append(n)
            continue
        groups.append([n])
        keys.append((key, stage))
    if model is None:
        return groups
    if len(groups) < 3:
        groups = []
        for n in param_names:
            if groups and groups[-1][0].split(".")[0] == n.split(".")[0]:
                groups[-1].append(n)
            else:
                groups.append([n])
    return _merge_norm_groups(groups, model)


def _merge_norm_groups(groups: list[list[str]], model) -> list[list[str]]:
    import torch.nn as nn

    norms = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
    owner = {}
    for mname, m in model.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = m
    out: list[list[str]] = []
    for g in groups:
        if out and all(isinstance(owner.get(n), norms) for n in g):
            out[-1].extend(g)
        else:
            out.append(list(g))
    return out


def timm_groups(model) -> list[list[str]]:
    from timm.models import group_parameters

    grouped = group_parameters(model, model.group_matcher(coarse=True))
    return [list(v) for _, v in sorted(grouped.items()) if v]


# --- the wrapped network


def transfer_net(spec: BackboneSpec, n_classes: int, in_channels: int, image_size: Optional[int] = None,
                 pretrained: bool = True, dropout: float = 0.1):
    """A ``TransferNet`` for ``spec``: its weights (if ``pretrained``), a new head of ``n_classes``."""
    import torch
    import torch.nn as nn

    from harness.training.data import DataError

    try:
        if spec.library == "timm":
            body = _require("timm").create_model(spec.arch, pretrained=False)
            classifier = body.default_cfg.get("classifier") or "head"
            classifiers = list(classifier) if isinstance(classifier, (list, tuple)) else [classifier]
        else:
            tv = _require("torchvision")
            # googlenet/inception: no auxiliary heads, and the input transform their published weights expect
            extra = ({"aux_logits": False, "transform_input": True} if spec.arch in ("googlenet", "inception_v3")
                     else {})
            body = tv.models.get_model(spec.arch, weights=None, **extra)
            classifiers = [_torchvision_classifier(body)]
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ModelError(f"{spec.name}: cannot be built ({str(exc).splitlines()[0]})") from None
    if pretrained:
        own = body.state_dict()
        state = _fit_keys(read_state_dict(spec.weights), own, spec.arch)
        drop = tuple(c + "." for c in classifiers) + ("AuxLogits.", "aux1.", "aux2.")
        state = {k: v for k, v in state.items() if not k.startswith(drop)}
        missing = [k for k in own if k not in state and not k.startswith(drop)
                   and not k.endswith("num_batches_tracked")]  # a counter older files do not carry
        unexpected = [k for k in state if k not in own]
        wrong = [k for k in state if k in own and own[k].shape != state[k].shape]
        if missing or unexpected or wrong:
            raise DataError(
                f"{spec.weights}: the weights do not fit {spec.name} ({len(missing)} missing, e.g. {missing[:2]}; "
                f"{len(unexpected)} unexpected, e.g. {unexpected[:2]}; {len(wrong)} of another shape, e.g. "
                f"{wrong[:2]})")
        ordered = OrderedDict(state)
        ordered._metadata = getattr(own, "_metadata", None)  # layer versions (mnasnet checks them)
        try:
            body.load_state_dict(ordered, strict=False)
        except (RuntimeError, ValueError) as exc:
            raise DataError(f"{spec.weights}: the weights do not load into {spec.name} "
                            f"({str(exc).splitlines()[0]})") from None
    if spec.library == "timm":
        body.reset_classifier(0)
        groups = timm_groups(body)
    else:
        name = classifiers[0]
        parent = body.get_submodule(name.rsplit(".", 1)[0]) if "." in name else body
        setattr(parent, name.rsplit(".", 1)[-1], nn.Identity())
        groups = torchvision_groups([n for n, _ in body.named_parameters()], body)
    size = int(image_size or spec.input_size)
    body.eval()  # (in train mode the size check below would move the batch-norm statistics)
    with torch.no_grad():  # the body must give one feature vector per image at this size
        try:
            out = body(torch.zeros(2, 3, size, size))
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise ModelError(f"{spec.name} does not run at --image-size {size} ({str(exc).splitlines()[0]})") \
                from None
    if not isinstance(out, torch.Tensor) or out.dim() < 2 or out.shape[0] != 2:
        raise ModelError(f"{spec.name}: the body does not give one feature vector per image")
    feature_dim = int(out.flatten(1).shape[1])
    net = _module_class()(body, feature_dim, n_classes, groups, spec.mean, spec.std, size, in_channels, dropout)
    return net.eval()


_DENSENET_LEGACY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def _fit_keys(state: dict, own: dict, arch: str) -> dict:
    """The published files' legacy key names, renamed as torchvision's own loader does (densenet)."""
    if not arch.startswith("densenet"):
        return state
    renamed = {}
    for k, v in state.items():
        m = _DENSENET_LEGACY.match(k)
        renamed[m.group(1) + m.group(2) if m and k not in own else k] = v
    return renamed


@functools.lru_cache(maxsize=None)
def _module_class():
    import torch.nn as nn

    class TransferNet(nn.Module):
        """Preprocess -> pretrained body (classifier removed) -> dropout -> new linear head."""

        def __init__(self, body, feature_dim, n_classes, groups, mean, std, size, in_channels, dropout):
            import torch

            super().__init__()
            self.body = body
            self.feature_dim = feature_dim
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(feature_dim, n_classes)
            self.size = size
            self.in_channels = in_channels
            self.group_names = [[f"body.{n}" for n in g] for g in groups]
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1),
                                 persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1),
                                 persistent=False)

        def preprocess(self, x):
            if x.shape[1] == 1 and self.mean.shape[1] == 3:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[-1] != self.size or x.shape[-2] != self.size:
                x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                              align_corners=False)
            return (x - self.mean) / self.std

        def features(self, x):
            return self.body(self.preprocess(x)).flatten(1)

        def forward(self, x):
            return self.head(self.dropout(self.features(x)))

        def param_blocks(self) -> list[list]:
            params = dict(self.named_parameters())
            return [[params[n] for n in g if n in params] for g in self.group_names]

    return TransferNet


def lora_targets_image(net) -> list[str]:
    """LoRA targets in a backbone, never the new head: the linear layers (attention, MLP) where they
    hold most of the weights (vision transformers, ConvNeXt), else the ordinary convolutions (CNNs;
    depthwise convolutions are left out). torch's nn.MultiheadAttention (torchvision's ViT) calls its
    projections' raw weights, so adapters there would never train: those ViTs get MLP adapters only."""
    import torch.nn as nn

    inside_mha = {f"{n}.out_proj" for n, m in net.body.named_modules() if isinstance(m, nn.MultiheadAttention)}
    linear = [(n, m) for n, m in net.body.named_modules() if isinstance(m, nn.Linear) and n not in inside_mha]
    conv = [(n, m) for n, m in net.body.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    size = lambda mods: sum(m.weight.numel() for _, m in mods)  # noqa: E731
    chosen = linear if size(linear) >= size(conv) else conv
    if not chosen:
        raise ModelError(f"no linear or convolution layers found for LoRA in {type(net.body).__name__}")
    return [f"body.{n}" for n, _ in chosen]
