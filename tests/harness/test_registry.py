"""The technique registry: every field a technique declares it honours changes its training.

For each (technique, modality, declared training field), the same seed is trained twice, once
with the field changed: the loss curve, the predictions or the trained-parameter count must
differ. A field declared but ignored (the fault the registry exists to stop) fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.training.data import make_reviews, stratified_split
from harness.training.registry import REGISTRY, TEXT_DATA
from harness.training.techniques import run_head, run_transformer

pytestmark = pytest.mark.slow

# field -> (settings the base run uses for the field to matter, the changed value)
CHANGES = {
    "learning_rate": ({}, 3e-2),
    "epochs": ({}, 3),
    "batch_size": ({}, 5),
    "weight_decay": ({"learning_rate": 3e-2}, 5.0),
    "dropout": ({}, 0.5),
    "warmup_ratio": ({}, 0.5),
    "max_grad_norm": ({}, 0.01),
    "early_stopping_patience": ({"epochs": 4, "learning_rate": 1e-9}, 1),
    "discriminative_lr_decay": ({}, 10.0),
    "l2_sp": ({"learning_rate": 3e-2}, 50.0),
    "frozen_layers": ({}, 1),
    "unfreeze": ({}, "gradual"),
    "head": ({}, "mlp"),
    "lora": ({}, {"rank": 2, "alpha": 2.0, "dropout": 0.3, "target_modules": ["query"]}),
    "probe": ({}, {"c_min": 1e-4, "c_max": 1e-4, "steps": 1, "tol": 1e-6, "max_iter": 2000, "select": "log_loss",
                   "patience": 4}),
}
BASE = {"learning_rate": 1e-2, "epochs": 2, "batch_size": 16, "weight_decay": 0.0, "dropout": 0.0,
        "warmup_ratio": 0.0, "max_grad_norm": 0.0, "early_stopping_patience": 0, "discriminative_lr_decay": 1.0,
        "l2_sp": 0.0, "frozen_layers": 0, "unfreeze": "none", "head": "linear"}


def _cases(modality):
    for tech, spec in REGISTRY.items():
        for f in spec.honoured(modality):
            if f not in TEXT_DATA and not (modality == "image" and f == "augmentation"):
                yield tech, f


@pytest.fixture(scope="module")
def splits():
    d = make_reviews(90, seed=0)
    tr, te = stratified_split(d, 0.25, seed=0)
    tr, va = stratified_split(tr, 0.25, seed=0)
    return tr, va, te


def _signature(res):
    return ([round(c["train_loss"], 6) for c in res.curves], res.predictions, res.trainable_params, len(res.curves))


def _text_run(tiny_bert, splits, tech, hyper):
    tr, va, te = splits
    if tech == "feature_extraction":
        rng = np.random.default_rng(0)
        X = {n: rng.normal(size=(len(d), 16)).astype(np.float32) for n, d in (("tr", tr), ("va", va), ("te", te))}
        return run_head(X["tr"], tr.y, X["va"], va.y, X["te"], te.y, tr.classes, 0, hyper,
                        hidden=256 if hyper["head"] == "mlp" else 0)
    res, _, _ = run_transformer(tiny_bert, tr, va, te, 0, hyper, technique=tech, max_length=16)
    return res


@pytest.mark.parametrize("tech, field", list(_cases("text")))
def test_text_technique_honours_declared_field(tech, field, tiny_bert, splits, recipe):
    base_extra, changed = CHANGES[field]
    lora = {"rank": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["query", "value"]}
    base = recipe(tech, **BASE, **({"lora": lora} if tech == "lora" else {}))
    base.update(base_extra)
    if field == "unfreeze":
        base.update(frozen_layers=1, epochs=2)
    a = _text_run(tiny_bert, splits, tech, base)
    b = _text_run(tiny_bert, splits, tech, {**base, field: changed})
    assert _signature(a) != _signature(b), f"{tech} declares {field} but its training did not change"


@pytest.mark.parametrize("tech, field", list(_cases("image")))
def test_image_technique_honours_declared_field(tech, field, recipe):
    import torch

    from harness.training.vision import digits, image_features, run_image, small_cnn, split

    data = digits(source=False)
    train, test = split(data, 0.8, seed=0)
    train, val = split(train, 0.3, seed=0)
    torch.manual_seed(0)
    src = small_cnn(1, 5)
    target = (train, val, test)
    lora = {"rank": 2, "alpha": 4.0, "dropout": 0.0, "target_modules": []}
    base = recipe(tech, "cnn", **BASE, **({"lora": lora} if tech == "lora" else {}))
    base.update(base_extra := CHANGES[field][0])
    if field == "unfreeze":
        base.update(frozen_layers=1, epochs=3)
    feats = tuple(image_features(src, d) for d in target) if tech == "feature_extraction" else None
    kw = {"features": feats, "fresh": (lambda: small_cnn(1, len(train.classes)))}
    a = run_image(tech, src, target, 0, base, **kw)
    b = run_image(tech, src, target, 0, {**base, field: CHANGES[field][1]}, **kw)
    assert base_extra is not None
    assert _signature(a) != _signature(b), f"{tech} declares {field} for images but its training did not change"
