"""Which column of a training log is which: names in one spelling (``spelled``, ``canonical``), the
conventions of the common loggers (``CONVENTIONS``), and, for a column no convention names, the words of
its name: which split it measures and what (``by_words``, ``score_column``), and a loss logged only in
parts (``loss_parts``). Pure functions of the names; no values are read here."""

from __future__ import annotations

import re
from typing import Optional

CONVENTIONS = {
    "train_loss": ["train_loss", "loss", "training_loss", "train/loss", "train_loss_epoch", "train_loss_step",
                   "cost", "train_cost"],
    "val_loss": ["val_loss", "eval_loss", "validation_loss", "valid_loss", "val/loss", "eval/loss",
                 "val_loss_epoch", "val_cost", "test_loss"],
    # validation first, then test, then training accuracy (a log with only that)
    "target": ["val_acc", "val_accuracy", "eval_accuracy", "eval_acc", "val_sparse_categorical_accuracy",
               "val_categorical_accuracy", "val_binary_accuracy", "val/acc", "val/accuracy", "eval/accuracy",
               "valid_acc", "val_macro_f1", "eval_f1", "val_f1", "test_accuracy", "test_acc", "target_accuracy",
               "accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy", "acc",
               "train_acc"],
    "source": ["source_accuracy", "source_acc", "retention_accuracy", "eval_source_accuracy",
               "retention_acc", "source/acc", "val_source_acc"],
    # training accuracy, read only beside a validation target (the train/validation gap)
    "train_acc": ["train_acc", "train_accuracy", "train/acc", "train_acc_epoch", "accuracy", "acc",
                  "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy"],
    "grad_norm": ["grad_norm", "gradient_norm", "grad-norm", "train/grad_norm"],
    "step": ["step", "global_step", "iteration", "iter"],
    "epoch": ["epoch"],
    "learning_rate": ["learning_rate", "lr", "lr-AdamW", "lr-Adam", "lr-SGD", "lr-RMSprop"],
}

F1_NAMES = ("eval_macro_f1", "val_macro_f1", "eval_f1_macro", "eval_f1", "val_f1", "macro_f1", "f1", "eval_f1_score")

_F1_TOKEN = re.compile(r"(?:^|[_/\-.])f1(?:$|[_/\-.])", re.I)
_VALIDATION = re.compile(r"^(?:val|eval|valid|validation|dev)(?:[_/\-.]|$)", re.I)


def f1_column(keys) -> Optional[str]:
    """The F1 column of a log, by name: a known name first, else any key with an ``f1`` token
    (``val_f1_metric``, ``eval/f1-score``), validation before others and macro before others; never a
    training F1 when a validation one exists."""
    known = next((c for c in F1_NAMES if c in keys), None)
    if known:
        return known
    found = [k for k in keys if isinstance(k, str) and _F1_TOKEN.search(k)]
    if not found:
        return None
    return min(found, key=lambda k: (not _VALIDATION.match(k), "macro" not in k.lower(), len(k), k))


# TrainLoss, valAcc: a word starts at each capital after two lower-case letters or digits; one lower-case letter
# before capitals is part of an acronym (mAP, mIoU)
_CAMEL = re.compile(r"(?<=[a-z0-9][a-z0-9])(?=[A-Z])")


def spelled(name) -> str:
    """A metric name in the conventions' spelling: camelCase split into words, lower case, any run of spaces,
    dashes, dots, slashes, brackets, ``@`` or ``:`` one underscore (``TrainLoss`` and ``train-loss`` are ``train_loss``)."""
    return re.sub(r"[\s\-./()\[\]@:]+", "_", _CAMEL.sub("_", str(name).strip()).lower()).strip("_")


def canonical(name) -> str:
    """A column name in one spelling, so that the conventions' names match however a logger wrote them:
    ``spelled``, and Lightning's ``_epoch`` / ``_step`` suffixes (``train_loss_epoch``) dropped."""
    return re.sub(r"_(?:epoch|step)$", "", spelled(name))


# A column no convention names is recognised by its words: which split it measures and what it measures
# (``validation_loss_nats_per_byte``, ``val_mse``, ``TrainingCost``). Losses are whatever is lower-is-better
# and fitted (cross-entropy, squared or absolute error, bits per byte or character, perplexity).
# The split words, in the order a printed table's free-form header is searched for them (tables.column_name).
SPLIT_WORDS = {"val": ("val", "valid", "validation", "eval", "evaluation", "dev"), "test": ("test",),
               "train": ("train", "training", "tr", "trn")}
LOSS_WORDS = ("loss", "cost", "nll", "xent", "mse", "rmse", "mae", "bpb", "bpc", "perplexity", "ppl")
ACCURACY_WORDS = ("acc", "accuracy")
# words that make a column another model's or another task's measure: never read as the run's own curve
OTHER_WORDS = ("source", "src", "retention", "baseline", "teacher")
# what each key of the conventions is, in those words: (its splits in order of preference, None for no split
# word; the measure's words)
BY_WORDS = {"train_loss": (("train", None), LOSS_WORDS), "val_loss": (("val", "test"), LOSS_WORDS),
            "target": (("val", "test", None, "train"), ACCURACY_WORDS), "train_acc": (("train", None), ACCURACY_WORDS)}


def _split_of(tokens) -> Optional[str]:
    return next((sp for t in tokens for sp, ws in SPLIT_WORDS.items() if t in ws), None)


def by_words(key: str, canon: dict) -> Optional[str]:
    """The log's column for ``key`` by the words of its (canonical) name, or None: the preferred split first
    (validation before test), then the measure's own word before another (``loss`` before ``mse``), then a
    total before its parts (``total_loss`` before ``loss_cls``), then the shortest name."""
    if key not in BY_WORDS:
        return None
    splits, words = BY_WORDS[key]
    found = []
    for name, col in canon.items():
        tokens = name.split("_")
        measure = next((words.index(t) for t in tokens if t in words), None)
        if measure is None or any(t in OTHER_WORDS for t in tokens):
            continue
        split = _split_of(tokens)
        if split in splits:
            found.append(((splits.index(split), measure, "total" not in tokens, len(name), name), col))
    return min(found)[1] if found else None


def loss_parts(column: str, canon: dict) -> list:
    """The columns of a loss logged in parts and never as a total (YOLO's ``train/box_loss``, ``train/cls_loss``
    and ``train/dfl_loss``): every ``loss`` column of ``column``'s split when there are two or more and none is a
    total; else []. The parts, as these trainers log them, are already weighted: their sum is the objective."""
    name = canonical(column)
    split = _split_of(name.split("_"))
    parts = []
    for other, col in canon.items():
        tokens = other.split("_")
        if "loss" not in tokens or _split_of(tokens) != split or any(t in OTHER_WORDS for t in tokens):
            continue
        rest = [t for t in tokens if t != "loss" and t not in SPLIT_WORDS.get(split, ())]
        if not rest or "total" in rest:
            return []  # a total is logged: it is the curve
        parts.append(col)
    return parts if len(parts) >= 2 else []


# higher-is-better task measures other than accuracy, in order of preference: what a detector, a segmenter,
# a translator or a regressor is judged by where it logs no accuracy (precision and recall alone last: either
# is perfect for a trivial predictor)
SCORE_WORDS = ("map", "miou", "iou", "dice", "jaccard", "f1", "auc", "bleu", "rouge", "r2", "mcc", "kappa",
               "precision", "recall")
_SCORE = re.compile(rf"(?<![a-z])({'|'.join(SCORE_WORDS)})(?![a-z])", re.I)


def score_column(keys) -> Optional[str]:
    """A validation (or unsplit) score column by the words of its name (``metrics/mAP50-95(B)``, ``val_dice``,
    ``eval_rouge1``), or None: the split, then the measure in ``SCORE_WORDS``' order, then the shortest name."""
    found = []
    for k in keys:
        low = str(k).lower()
        m = _SCORE.search(low)
        tokens = re.split(r"[^a-z0-9]+", low)
        split = _split_of(tokens)
        if m is None or split == "train" or any(t in OTHER_WORDS or t in LOSS_WORDS for t in tokens):
            continue
        found.append(((("val", "test", None).index(split), SCORE_WORDS.index(m.group(1)), len(low), low), k))
    return min(found)[1] if found else None


def canonical_columns(keys) -> dict:
    """canonical name -> the log's own column; where two columns share one (``loss_epoch`` and ``loss_step``),
    the per-epoch one wins (per-step values are single batches: noise)."""
    out: dict = {}
    for k in sorted(keys, key=lambda k: not str(k).endswith("_epoch")):
        out.setdefault(canonical(k), k)
    return out
