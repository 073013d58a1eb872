"""What the readers of printed logs share: the file's lines (``pieces``: read in 1 MiB chunks, cut at
carriage returns and backspaces, terminal colours dropped), numbers as they are printed (``NUM``), a printed
key in the column conventions' spelling (``norm_key``) and metric records kept in bounded memory
(``Records``: past ``MAX_RECORDS`` every other record is dropped, never one that holds a NaN)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterator, Optional

from harness.troubleshooting.columns import spelled

MAX_RECORDS = 50_000
MAX_LINE = 1 << 16
CHUNK = 1 << 20

NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf(?:inity)?"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SYNONYMS = {"acc": "acc", "training_loss": "train_loss", "valid_loss": "val_loss", "validation_loss": "val_loss",
            "valid_acc": "val_acc", "validation_acc": "val_acc", "validation_accuracy": "val_accuracy",
            "val_accuracy": "val_accuracy", "train_accuracy": "train_accuracy", "training_accuracy": "train_accuracy",
            "avg_loss": "loss", "average_loss": "loss", "running_loss": "loss", "mean_loss": "loss"}


def norm_key(key: str) -> str:
    """A printed key in the column conventions' spelling (``columns.spelled``), with its synonyms."""
    k = spelled(key)
    return SYNONYMS.get(k, k)


def _value(raw: str) -> float:
    return float(raw.lower().replace("infinity", "inf"))


def pieces(path: Path) -> Iterator[str]:
    """The file's lines, also cut at carriage returns and backspaces (progress bars redraw with them),
    read in chunks so that memory does not grow with the file."""
    import codecs

    from knowledge.reading import decode, open_file

    tail = ""
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character cut by a chunk stays whole
    with open_file(path, what="log") as fh:
        first = True
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            if first and (chunk.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in chunk[:4096]):
                decode(chunk[:4096], str(path))  # UTF-16 or binary: the reading layer's own message
            first = False
            text = tail + utf8.decode(chunk)
            parts = re.split(r"[\n\r\x08]+", text)
            tail = parts.pop()[-MAX_LINE:]
            for p in parts:
                p = _ANSI.sub("", p).strip()  # colours and bold of a terminal progress bar
                if p:
                    yield p[:MAX_LINE]
    tail = _ANSI.sub("", tail).strip()
    if tail:
        yield tail


class Records:
    """Metric records with bounded memory: past ``cap`` records, every other one is dropped."""

    def __init__(self, cap: Optional[int] = None):
        self.rows: list[dict] = []
        self.cap = cap or MAX_RECORDS
        self.stride = 1
        self.seen = 0
        self.last: Optional[dict] = None

    def add(self, row: dict) -> None:
        """Keep every ``stride``-th record, and always one that holds a NaN or infinity (divergence
        must never be thinned away); ``finish`` keeps the last one too."""
        self.seen += 1
        self.last = row
        if (self.seen - 1) % self.stride and not _nonfinite(row):
            return
        self.rows.append(row)
        self.last = None
        if len(self.rows) >= self.cap:
            self.rows = [r for i, r in enumerate(self.rows) if i % 2 == 0 or _nonfinite(r)]
            self.stride *= 2

    def finish(self) -> list[dict]:
        if getattr(self, "last", None) is not None:
            self.rows.append(self.last)
        return self.rows

    def replace_last(self, row: dict) -> None:
        if self.rows:
            self.rows[-1] = row
        else:
            self.add(row)


def _nonfinite(row: dict) -> bool:
    return any(isinstance(v, float) and not math.isfinite(v) for v in row.values())
