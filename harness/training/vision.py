"""Image classification: data, a small CNN the harness pre-trains itself, techniques.

The built-in image case uses scikit-learn's bundled digits: a small CNN is
pre-trained on the *source* split (digits 0-4) and transferred to the *target*
split (digits 5-9), so "source knowledge" is measurable: the source-task
accuracy of the adapted backbone with the original source head, before vs
after adaptation (the forgetting probe).

Local weights load from safetensors or ``torch.load(weights_only=True)``;
arbitrary pickled objects are never unpickled.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from harness.training.data import DataError
from harness.training.common import scores, seed_everything
from harness.training.registry import technique_spec
from harness.training.techniques import TrainResult

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


@dataclass
class ImageData:
    """Images as float32 (n, channels, height, width) in [0, 1], labels as class indices."""

    X: np.ndarray
    y: np.ndarray
    classes: list
    origin: str = ""

    def __len__(self):
        return len(self.y)

    def subset(self, idx) -> "ImageData":
        return ImageData(self.X[idx], self.y[idx], self.classes, self.origin)


def load_image_folder(path: str | Path, size: int = 32, grayscale: bool = False) -> ImageData:
    """An image-folder tree: one sub-folder per class holding its images."""
    from PIL import Image, UnidentifiedImageError

    from knowledge.reading import safe_path

    root = safe_path(path, want="any", what="image folder")
    if not root.is_dir():
        raise DataError(f"{root}: not an image folder (expected one sub-folder per class)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{root}: found {len(classes)} class folder(s); at least two are needed")
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file():  # no FIFO, socket or folder
                continue
            try:
                with Image.open(f) as im:
                    im = im.convert("L" if grayscale else "RGB").resize((size, size))
                    a = np.asarray(im, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{f}: not a readable image ({exc})") from None
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(ci)
    if not xs:
        raise DataError(f"{root}: no images found")
    return ImageData(np.stack(xs), np.array(ys), classes, str(root))


def load_arrays(path: str | Path) -> ImageData:
    """An .npz file with arrays ``X`` (n, h, w) or (n, c, h, w) and ``y`` (n,)."""
    import zipfile

    from knowledge.reading import LIMITS, safe_path

    path = safe_path(path, what=".npz data file")
    try:
        with zipfile.ZipFile(path) as zf:  # bound what the arrays expand to (a zip bomb)
            size = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if size > LIMITS.data_bytes:
        raise DataError(f"{path}: the arrays expand to {size / 2 ** 30:.1f} GiB, more than the "
                        f"{LIMITS.data_bytes / 2 ** 30:.0f} GiB accepted for a data file")
    try:
        with np.load(path, allow_pickle=False) as z:
            X, y = z["X"], z["y"]
    except KeyError as exc:
        raise DataError(f"The {exc} array of {path} is missing (expected X and y)") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if X.dtype.kind not in "biuf" or y.dtype.kind not in "biuU" or y.ndim != 1 or len(y) == 0:
        raise DataError(f"The arrays of {path} must be numeric X and a non-empty 1-D y of class labels. "
                        f"Got X {X.dtype} {X.shape} and y {y.dtype} {y.shape} instead.")
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim != 4 or len(X) != len(y):
        raise DataError(f"The 'X' array of {path} must be (n, h, w) or (n, c, h, w) with n = len(y). "
                        f"Got {X.shape} and {y.shape} instead.")
    X = X.astype(np.float32)
    if not np.isfinite(X).all():
        raise DataError(f"The 'X' array of {path} holds NaN or infinite values.")
    if X.max() > 1.0:
        X = X / X.max()
    classes = sorted(set(y.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    return ImageData(X, np.array([index[v] for v in y.tolist()]), [str(c) for c in classes], str(path))


def digits(source: bool) -> ImageData:
    """scikit-learn's bundled 8x8 digits: source = digits 0-4, target = digits 5-9."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = d.target < 5 if source else d.target >= 5
    X = (d.images[keep] / 16.0).astype(np.float32)[:, None]
    y = d.target[keep] - (0 if source else 5)
    classes = [str(c) for c in (range(5) if source else range(5, 10))]
    return ImageData(X, y.astype(np.int64), classes, "digits " + ("0-4" if source else "5-9"))


def split(data: ImageData, test_size: float, seed: int) -> tuple[ImageData, ImageData]:
    from sklearn.model_selection import train_test_split

    a, b = train_test_split(np.arange(len(data)), test_size=test_size, random_state=seed, stratify=data.y)
    return data.subset(np.sort(a)), data.subset(np.sort(b))


# --- the small CNN


def small_cnn(in_channels: int, n_classes: int, width: int = 16):
    """Three conv blocks (the 'layers' frozen from the bottom) -> global pool -> linear head."""
    import torch.nn as nn

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([block(in_channels, width), block(width, 2 * width),
                                         block(2 * width, 4 * width)])
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.dropout = nn.Dropout(0.1)
            self.head = nn.Linear(4 * width, n_classes)
            self.feature_dim = 4 * width

        def features(self, x):
            for i, b in enumerate(self.blocks):
                x = b(x)
                if i < 2 and x.shape[-1] >= 4:
                    x = nn.functional.max_pool2d(x, 2)
            return self.pool(x).flatten(1)

        def forward(self, x):
            return self.head(self.dropout(self.features(x)))

    return SmallCNN()


def load_weights(model, path: str | Path) -> None:
    """Weights from safetensors, or a plain state dict via torch.load(weights_only=True)."""
    from harness.training.backbones import read_state_dict

    state = read_state_dict(path)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("head.") or own[k].shape == v.shape}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.startswith("head.")]:
        raise DataError(f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


def save_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    from knowledge.writing import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))


def param_blocks(model) -> list[list]:
    """The model's layer groups in forward order (bottom first), as lists of parameters."""
    if hasattr(model, "param_blocks"):
        return model.param_blocks()
    return [list(b.parameters()) for b in model.blocks]


# The recipe that makes the built-in example's source model (the small CNN on digits 0-4): part of the
# example, not a plan default; every field of the one loop is given.
SOURCE_RECIPE = {"learning_rate": 3e-3, "epochs": 15, "batch_size": 64, "weight_decay": 0.0,
                 "warmup_ratio": 0.0, "max_grad_norm": 0.0, "early_stopping_patience": 0,
                 "discriminative_lr_decay": 1.0, "l2_sp": 0.0}


def train_recipe(**fields) -> dict:
    """``SOURCE_RECIPE`` with ``fields`` changed (for pre-training sources in benchmarks and tests)."""
    unknown = set(fields) - set(SOURCE_RECIPE) - {"unfreeze"}
    if unknown:
        raise KeyError(f"not a training field: {sorted(unknown)}")
    return {**SOURCE_RECIPE, **fields}


def _image_param_groups(model, blocks, lr: float, decay: float, weight_decay: float) -> list[dict]:
    """The one loop's AdamW groups (harness.training.loop.param_groups) for an image model's blocks."""
    from harness.training.loop import param_groups

    return param_groups(model, blocks, [], lr, decay, weight_decay)


def _fit(model, train: ImageData, val: Optional[ImageData], seed: int, hyper: dict, augment: bool = False,
         device: str = "cpu", frozen_n: int = 0, gradual: bool = False, progress=None, label: str = "") -> list:
    """Train an image model with the one loop (harness.training.loop.fit): ``hyper`` gives every training field."""
    import torch

    from harness.training.loop import fit

    X, y = torch.from_numpy(train.X), torch.from_numpy(train.y)
    bs = int(hyper["batch_size"])
    g = torch.Generator().manual_seed(seed)
    lossf = torch.nn.CrossEntropyLoss()

    def batches(epoch):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), bs):
            b = perm[i:i + bs]
            xb = X[b]
            if augment:  # small random shifts: the standard augmentation for digits
                dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
                xb = torch.roll(xb, shifts=(dx, dy), dims=(2, 3))
            yield xb, y[b]

    def loss_of(batch):
        xb, yb = batch
        return lossf(model(xb.to(device)), yb.to(device)), len(yb)

    def validate():
        return scores(val.y, predict_images(model, val, device=device), val.classes)[1]

    return fit(model, param_blocks(model), hyper, steps_per_epoch=math.ceil(len(X) / bs), batches=batches,
               loss_of=loss_of, validate=validate if val is not None else None, floor=frozen_n,
               gradual=gradual, progress=progress, label=label)


def predict_images(model, data: ImageData, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(data), batch_size):
            out.append(model(torch.from_numpy(data.X[i:i + batch_size]).to(device)).argmax(1).cpu().numpy())
    return np.concatenate(out)


def image_features(model, data: ImageData, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(data), batch_size):
            out.append(model.features(torch.from_numpy(data.X[i:i + batch_size]).to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.feature_dim), np.float32)


def pretrained_source(cache: Optional[Path], seed: int = 0, epochs: int = 15):
    """The source model: a small CNN trained on digits 0-4 (cached as safetensors)."""
    src = digits(source=True)
    tr, te = split(src, 0.3, seed=0)
    model = small_cnn(1, 5)
    f = cache / f"digits-source-cnn-s{seed}-e{epochs}.safetensors" if cache is not None else None
    if f is not None and f.exists():
        load_weights(model, f)  # safetensors: tensors only, nothing executes
    else:
        seed_everything(seed)
        _fit(model, tr, None, seed, train_recipe(epochs=epochs))
        if f is not None:
            save_weights(model, f)
    return model, tr, te


def run_image(technique: str, source_model, target: tuple, seed: int, hyper: dict,
              source_test: Optional[ImageData] = None, *, device: str = "cpu", fresh=None,
              features: Optional[tuple] = None, probe_data: Optional[ImageData] = None,
              probe_before=None, retention: Optional[tuple] = None,
              retention_before: Optional[float] = None) -> TrainResult:
    """feature_extraction | fine_tuning | lora | from_scratch on the target split, from the source model.

    ``source_model``: the small CNN or a ``TransferNet`` (torchvision/timm backbone).
    ``fresh``: builds the same architecture with random weights (for from_scratch).
    ``features``: the frozen source model's (train, validation, test) features; with them,
    feature extraction trains only a head on them (computed once, shared by all seeds).
    ``probe_data``: images whose features before/after give the representation drift (linear CKA);
    ``probe_before``: the source model's features of them, when the caller already has them.
    ``retention``: (train, test) images of another labeled task: the linear-probe accuracy on the
    adapted model's features (the forgetting probe for a backbone pre-trained elsewhere);
    ``retention_before``: that accuracy for the unchanged source model, when already measured."""
    import copy

    import torch

    from harness.training.techniques import run_head

    t0 = time.perf_counter()
    seed_everything(seed)
    train, val, test = target
    k = len(train.classes)
    spec = technique_spec(technique)
    if spec.head_only and features is not None:
        X_tr, X_va, X_te = features
        res = run_head(X_tr, train.y, X_va, val.y, X_te, test.y, train.classes, seed, hyper,
                       hidden=256 if hyper["head"] == "mlp" else 0)
        res.extra = {"frozen_layers": len(param_blocks(source_model)), "layers": len(param_blocks(source_model))}
        if probe_data is not None:
            res.extra["cka_to_pretrained"] = 1.0  # the backbone is not changed
        if retention is not None:  # the backbone is not changed: its retention is the source's
            res.extra["retention_after"] = (retention_before if retention_before is not None
                                            else retention_accuracy(source_model, retention, device))
        res.seconds = time.perf_counter() - t0
        return res
    if not spec.pretrained:
        model = fresh() if fresh is not None else small_cnn(train.X.shape[1], k)
    else:
        model = copy.deepcopy(source_model)
        model.head = torch.nn.Linear(model.feature_dim, k)
    model.to(device)
    if hasattr(model, "dropout"):
        model.dropout.p = float(hyper["dropout"])
    blocks = param_blocks(model)
    n_blocks = len(blocks)
    frozen = hyper["frozen_layers"]
    frozen_n = n_blocks if (spec.head_only or frozen == "all") else min(int(frozen), n_blocks)
    if spec.adapters:
        model = _with_lora(model, hyper)
        frozen_n = n_blocks  # peft froze the backbone; the adapters and the head train
    else:
        for b in blocks[:frozen_n]:
            for p in b:
                p.requires_grad_(False)
    # every image policy ('standard' for photos, or a domain's) shares the small random shifts carried out here
    augment = bool(hyper["augmentation"])
    gradual = hyper["unfreeze"] == "gradual" and spec.full_update
    curves = _fit(model, train, val, seed, hyper, augment=augment, device=device, frozen_n=frozen_n,
                  gradual=gradual, label=f"{technique} seed {seed}")
    pred = predict_images(model, test, device=device)
    acc, f1, per = scores(test.y, pred, train.classes)
    extra = {"frozen_layers": frozen_n, "layers": n_blocks}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)  # (before LoRA is merged)
    adapted = model.merge_and_unload() if spec.adapters else model
    if spec.pretrained:
        if source_test is not None:
            # the adapted backbone with the source model's own head: what is left of the source skill
            probe = copy.deepcopy(adapted)
            probe.head = copy.deepcopy(source_model.head)
            extra["source_accuracy_after"] = float((predict_images(probe, source_test, device=device)
                                                    == source_test.y).mean())
        if probe_data is not None:
            from harness.evaluation.stats import linear_cka

            before = probe_before if probe_before is not None else image_features(source_model, probe_data,
                                                                                  device=device)
            extra["cka_to_pretrained"] = float(linear_cka(before, image_features(adapted, probe_data, device=device)))
        if retention is not None:
            extra["retention_after"] = retention_accuracy(adapted, retention, device)
    return TrainResult(technique, seed, acc, f1, per, pred.tolist(), curves, time.perf_counter() - t0,
                       trainable, extra=extra)


def retention_accuracy(model, retention: tuple, device: str = "cpu") -> float:
    """Linear-probe accuracy of ``model``'s features on a second labeled image task."""
    from harness.evaluation.probes import linear_probe_accuracy

    r_tr, r_te = retention
    return linear_probe_accuracy(image_features(model, r_tr, device=device), r_tr.y,
                                 image_features(model, r_te, device=device), r_te.y)


def _with_lora(model, hyper: dict):
    """LoRA adapters (peft) on the backbone's convolutions or linear layers; the new head trains in full."""
    from peft import LoraConfig, get_peft_model

    cfg = hyper["lora"]
    if hasattr(model, "param_blocks"):
        from harness.training.backbones import lora_targets_image

        targets = lora_targets_image(model)
    else:
        targets = [f"blocks.{i}.0" for i in range(len(model.blocks))]  # the small CNN's convolutions
    # peft picks modules_to_save by name suffix: where the backbone has its own "...head" module
    # (timm's conv_head), the new head is set trainable directly instead.
    clash = any(n.endswith("head") and n != "head" for n, _ in model.named_modules())
    peft_cfg = LoraConfig(r=int(cfg["rank"]), lora_alpha=cfg["alpha"],
                          lora_dropout=float(cfg["dropout"]), target_modules=targets,
                          modules_to_save=None if clash else ["head"])
    peft_model = get_peft_model(model, peft_cfg)
    if clash:
        for p in model.head.parameters():
            p.requires_grad_(True)
    return peft_model


def run_pixel_baseline(target: tuple, seed: int) -> TrainResult:
    """No transfer, no deep model: logistic regression on raw pixels."""
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    train, _, test = target
    clf = LogisticRegression(max_iter=3000, random_state=seed)
    clf.fit(train.X.reshape(len(train), -1), train.y)
    pred = clf.predict(test.X.reshape(len(test), -1))
    acc, f1, per = scores(test.y, pred, train.classes)
    return TrainResult("pixel_baseline", seed, acc, f1, per, pred.tolist(), [], time.perf_counter() - t0)
