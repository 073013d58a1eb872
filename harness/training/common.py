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


def held_out(pool, val, test, evaluation, split) -> tuple:
    """(train, validation, test) from ``pool``, holding out each set not given: its share of the pool (at
    most ``holdout_max``), as the plan's protocol states; ``split(data, fraction, seed)``."""
    from knowledge.estimates import holdout_counts

    n = len(pool)
    _, n_val, n_test = holdout_counts(n, evaluation.validation_share, evaluation.test_share, evaluation.holdout_max)
    train = pool
    if test is None:
        train, test = split(train, n_test / len(train), seed=0)
    if val is None:
        train, val = split(train, n_val / len(train), seed=0)
    return train, val, test
