"""Datasets: text from CSV/JSONL, the built-in customer reviews, splits, slices.

Errors are ``DataError`` (a ``KnowledgeError``, so the CLI maps them to one
``Error:`` line with exit status 2): missing file, missing column, a single
class, an empty file.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from knowledge.schema import KnowledgeError


class DataError(KnowledgeError):
    pass


@dataclass
class TextData:
    """Texts with string labels; ``classes`` fixes the label order."""

    texts: list[str]
    labels: list[str]
    classes: list[str] = field(default_factory=list)
    origin: str = ""

    def __post_init__(self):
        if not self.classes:
            self.classes = sorted(set(self.labels))

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def y(self) -> list[int]:
        index = {c: i for i, c in enumerate(self.classes)}
        return [index[label] for label in self.labels]

    def subset(self, idx) -> "TextData":
        return TextData([self.texts[i] for i in idx], [self.labels[i] for i in idx],
                        list(self.classes), self.origin)

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for t, lab in zip(self.texts, self.labels):
            h.update(t.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
            h.update(lab.encode())
            h.update(b"\x01")
        return h.hexdigest()[:16]


MISSING_LABELS = {"nan", "null", "none", "na", "n/a", "<na>"}  # how pandas, JSON and spreadsheets write "no label"


def numeric_labels(labels: list[str]) -> list[str]:
    """Labels that are all numbers compare as numbers: 1, 1.0 and "1" are one class (written "1"); a
    column with any non-number keeps its labels as written."""
    import math

    try:
        values = [float(x) for x in labels]
    except ValueError:
        return labels
    if not all(math.isfinite(v) for v in values):
        return labels
    return [str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v) for v in values]


def load_text(path: str | Path, text_column: str = "text", label_column: str = "label",
              classes: Optional[list[str]] = None) -> TextData:
    """Read a CSV or JSONL file of texts and labels."""
    from knowledge.reading import read_csv, read_jsonl, safe_path, show

    try:
        path = safe_path(path, what="data file")
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            rows = [r for _, r in read_jsonl(path, kind="data", what="data file")]
        else:
            header, records = read_csv(path, kind="data", what="data file")
    except KnowledgeError as exc:
        raise DataError(str(exc)) from None
    if path.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
        if not header:
            raise DataError(f"{path}: empty file, expected a header with "
                            f"'{text_column}' and '{label_column}' columns")
        rows = [r for _, r in records]
    if not rows:
        raise DataError(f"{path}: no rows")
    for col in (text_column, label_column):
        if col not in rows[0]:
            raise DataError(
                f"The '{col}' column of {path} is missing. Got columns "
                f"{show(', '.join(map(str, rows[0].keys())), 300)} instead (set --text-column/--label-column)."
            )
    texts, labels = [], []
    for i, r in enumerate(rows, 2):
        t, lab = r.get(text_column), r.get(label_column)
        if t is None or lab is None or str(lab).strip() == "" or isinstance(t, (dict, list)) \
                or isinstance(lab, (dict, list)):
            raise DataError(f"{path}:{i}: row without a '{text_column}' or '{label_column}' value")
        if str(lab).strip().lower() in MISSING_LABELS:
            raise DataError(f"{path}:{i}: the '{label_column}' value {show(str(lab))} marks a missing label, not a "
                            f"class; drop the unlabeled rows or label them")
        texts.append(str(t))
        labels.append(str(lab).strip())
    labels = numeric_labels(labels)
    data = TextData(texts, labels, list(classes) if classes else [], str(path))
    unknown = sorted(set(labels) - set(data.classes))
    if unknown:
        raise DataError(f"The '{label_column}' column of {path} holds labels {unknown} "
                        f"not among the training classes {data.classes}.")
    return data


def check_trainable(data: TextData, name: str) -> None:
    counts = {c: 0 for c in data.classes}
    for lab in data.labels:
        counts[lab] += 1
    present = [c for c, n in counts.items() if n]
    if len(present) < 2:
        raise DataError(f"{data.origin or name}: the training data has a single class "
                        f"({present[0] if present else 'none'}); at least two are needed.")


def stratified_split(data: TextData, test_size: float, seed: int) -> tuple[TextData, TextData]:
    from sklearn.model_selection import train_test_split

    idx = list(range(len(data)))
    a, b = train_test_split(idx, test_size=test_size, random_state=seed, stratify=data.labels)
    return data.subset(sorted(a)), data.subset(sorted(b))


# --- slices

EMOJI_RE = re.compile(
    "[\U0001F300-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF\u2B50\u2764\u263A]"
)


def has_emoji(text: str) -> bool:
    return bool(EMOJI_RE.search(text))


SLICES = {"emoji": has_emoji}


# --- the built-in example: customer reviews with emoji that carry sentiment

_PRODUCTS = ["headphones", "blender", "phone case", "backpack", "coffee maker", "desk lamp",
             "running shoes", "keyboard", "water bottle", "charger", "jacket", "vacuum"]
_POS = ["love this {p}", "the {p} works great", "best {p} i've bought tbh", "super happy with the {p}",
        "this {p} is awesome", "really solid {p}, would buy again", "the {p} exceeded my expectations",
        "great value, the {p} is perfect"]
_NEG = ["the {p} broke after a week", "total waste of money, this {p}", "worst {p} ever ngl",
        "the {p} stopped working", "really disappointed with the {p}", "do not buy this {p}",
        "the {p} is cheap junk", "returned the {p}, awful"]
_NEU = ["the {p} arrived on tuesday", "it's a {p}, does what it says", "the {p} is ok i guess",
        "got the {p} in blue", "the {p} is average", "the {p} came in a box",
        "using the {p} for work", "the {p} is what it is"]
# texts with little sentiment of their own; the emoji carries it
_FLAT = ["so the {p} came today", "well... the {p}", "opened the {p} box just now",
         "tried the {p} this morning", "about this {p}", "the {p}, after a week of use"]
_EMOJI = {"positive": ["😍", "😊", "👍", "🔥", "❤️", "🥰"],
          "negative": ["😡", "👎", "😤", "🤮", "💩", "😠"],
          "neutral": ["😐", "🤷", "📦", "😶"]}
_SLANG = {"positive": ["lit", "fire", "slaps", "goated"], "negative": ["trash", "mid af", "busted"],
          "neutral": ["meh", "eh"]}


def make_reviews(n: int = 1500, seed: int = 0, emoji_share: float = 0.35) -> TextData:
    """Synthetic customer reviews in three classes with informal wording.

    About ``emoji_share`` of the rows carry emoji; in half of those the words
    are flat and only the emoji says how the customer feels, so a tokenizer
    that maps emoji to [UNK] loses the label (the course's emoji domain shift).
    """
    rng = random.Random(seed)
    classes = ["negative", "neutral", "positive"]
    texts, labels = [], []
    for i in range(n):
        label = classes[i % 3]
        p = rng.choice(_PRODUCTS)
        emoji = rng.random() < emoji_share
        if emoji and rng.random() < 0.5:
            text = rng.choice(_FLAT).format(p=p)
        else:
            text = rng.choice({"positive": _POS, "negative": _NEG, "neutral": _NEU}[label]).format(p=p)
        if rng.random() < 0.3:
            text += " " + rng.choice(_SLANG[label])
        if rng.random() < 0.15:  # label noise keeps the task from being trivial
            label_out = rng.choice(classes)
        else:
            label_out = label
        if emoji:
            text += " " + "".join(rng.choice(_EMOJI[label]) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.5:
            text = text.capitalize()
        if rng.random() < 0.3:
            text += rng.choice(["!!", "...", " lol", " fr", "!"])
        texts.append(text)
        labels.append(label_out)
    order = list(range(n))
    rng.shuffle(order)
    return TextData([texts[i] for i in order], [labels[i] for i in order], classes, "built-in reviews")
