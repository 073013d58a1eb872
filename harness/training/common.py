"""What every technique shares: seeding and the scores of a prediction."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():  # the same seed, the same numbers on a GPU too (cuDNN picks no fastest kernel)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def scores(y_true, y_pred, classes) -> tuple[float, float, dict]:
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(range(len(classes)))
    per = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return (float(accuracy_score(y_true, y_pred)),
            float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
            {c: round(float(v), 4) for c, v in zip(classes, per)})
