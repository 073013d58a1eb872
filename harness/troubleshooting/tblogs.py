"""TensorBoard event files (``events.out.tfevents.*``) read into metric records with TensorBoard's own
event file loader (the maintained reader; no hand-written protobuf parsing; only the record framing is
walked, to tell a file read whole from one whose reader stopped at a corrupt record).

A run is a folder of event files. Keras' ``TensorBoard`` callback writes a run as two folders,
``train/`` and ``validation/``, both with the tag ``epoch_loss``: read together, the validation
folder's tags become ``val_*``. Tags are normalised to the column conventions of ``logs.py``
(``Loss/train`` and ``train/loss`` both become ``train_loss``; ``epoch_accuracy`` becomes
``accuracy``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from harness.troubleshooting.printed import norm_key

EVENTS = "events.out.tfevents."
_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
           "eval": "val", "test": "test"}


def is_event_file(p: Path) -> bool:
    return p.name.startswith(EVENTS)


def tag_key(tag: str, split: str = "") -> str:
    """'Loss/train' -> 'train_loss'; 'epoch_accuracy' (in validation/) -> 'val_accuracy'."""
    parts = [norm_key(x) for x in re.split(r"[/]", tag) if x]
    found = next((p for p in parts if p in _SPLITS), None)
    rest = [p for p in parts if p != found] or parts
    name = "_".join(rest)
    name = re.sub(r"^epoch_", "", name)
    for suffix, sp in _SPLITS.items():
        if name.endswith("_" + suffix):
            name, found = name[: -len(suffix) - 1], found or suffix
    sp = _SPLITS.get(found or "", "") or split
    if sp == "train":
        return name if name.startswith("train_") or name in ("loss", "accuracy", "acc") else f"train_{name}"
    if sp in ("val", "test"):
        return name if name.startswith(sp + "_") else f"{sp}_{name}"
    return name


def framing(path: Path) -> tuple[int, int]:
    """(records, bytes left) of a TFRecord file by its framing alone (8-byte length, 4-byte CRC, data,
    4-byte CRC): how many whole records it holds, and how many bytes after them cannot be framed (0: the
    last record ends exactly at the end of the file)."""
    import struct

    from knowledge.reading import open_file

    n, pos = 0, 0
    with open_file(path, what="TensorBoard event file") as fh:
        size = os.fstat(fh.fileno()).st_size
        while pos + 12 <= size:
            fh.seek(pos)
            (length,) = struct.unpack("<Q", fh.read(8))
            end = pos + 12 + length + 4
            if end > size:
                return n, size - pos
            pos, n = end, n + 1
    return n, size - pos


def _scalars(folder: Path, warnings: Optional[list] = None):
    """(tag, step, value) of every scalar in the event files directly in ``folder``, read file by file with
    TensorBoard's own loader (scalars and TF2 tensor summaries). A file whose reader stops before its last
    record (a corrupt record) or that ends mid-record is read as far as it goes, and ``warnings`` says so."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    from knowledge.reading import safe_path

    for f in sorted(p for p in folder.iterdir() if is_event_file(p)):
        safe_path(f, what="TensorBoard event file")  # a FIFO or device under an event file's name is refused
        records, left = framing(f)
        read = 0
        for event in EventFileLoader(str(f)).Load():
            read += 1
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    yield v.tag, event.step, float(v.simple_value)
                elif v.HasField("tensor"):
                    arr = tensor_util.make_ndarray(v.tensor)
                    if arr.size == 1 and arr.dtype.kind in "fiu":
                        yield v.tag, event.step, float(arr.reshape(-1)[0])
        if warnings is not None and read < records:
            warnings.append(f"{f}: a corrupt record after record {read} of {records}; the {records - read} "
                            f"after it are left out, so the curves stop early")
        elif warnings is not None and left:
            warnings.append(f"{f}: the {left:,} bytes after record {records} cannot be read (a damaged record, or "
                            f"a file cut while it was being written) and are left out, so the curves may stop early")


def run_folders(folder: Path) -> list[Path]:
    """Folders that hold event files, below ``folder`` (itself included), at most 3 levels down."""
    out = []
    for depth in range(4):
        for d in ([folder] if depth == 0 else folder.glob("/".join(["*"] * depth))):
            if d.is_dir() and any(is_event_file(f) for f in d.iterdir() if f.is_file()):
                out.append(d)
    return out


def read_records(path: Path, warnings: Optional[list] = None) -> list[dict]:
    """One run's records, one per step, from an event file, a folder of them, or a Keras
    ``train/`` + ``validation/`` pair (``path`` being their parent); problems met on the way go to
    ``warnings``."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    splits = {d.name.lower(): d for d in folder.iterdir() if d.is_dir()} if path.is_dir() else {}
    sources = [(folder, "")] if path.is_file() or any(is_event_file(f) for f in folder.iterdir()) else []
    for name, d in splits.items():
        if name in _SPLITS and any(is_event_file(f) for f in d.iterdir() if f.is_file()):
            sources.append((d, _SPLITS[name]))
    by_step: dict[int, dict] = {}
    for d, split in sources:
        for tag, step, value in _scalars(d, warnings):
            key = tag_key(tag, split)
            if key in ("hp_metric",):
                continue
            by_step.setdefault(int(step), {"step": int(step)})[key] = value
    return [by_step[s] for s in sorted(by_step)]
