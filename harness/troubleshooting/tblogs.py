"""TensorBoard event files (``events.out.tfevents.*``) read into metric records with TensorBoard's own
``EventAccumulator`` (the maintained reader; no hand-written protobuf parsing).

A run is a folder of event files. Keras' ``TensorBoard`` callback writes a run as two folders,
``train/`` and ``validation/``, both with the tag ``epoch_loss``: read together, the validation
folder's tags become ``val_*``. Tags are normalised to the column conventions of ``logs.py``
(``Loss/train`` and ``train/loss`` both become ``train_loss``; ``epoch_accuracy`` becomes
``accuracy``).
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.troubleshooting.textlogs import norm_key

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


def _scalars(folder: Path):
    """(tag, step, value) of every scalar in the event files directly in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    tags = ea.Tags()
    for tag in tags.get("scalars", []):
        for e in ea.Scalars(tag):
            yield tag, e.step, float(e.value)
    for tag in tags.get("tensors", []):  # TF2 summaries store scalars as tensors
        from tensorboard.util import tensor_util

        for e in ea.Tensors(tag):
            arr = tensor_util.make_ndarray(e.tensor_proto)
            if arr.size == 1 and arr.dtype.kind in "fiu":
                yield tag, e.step, float(arr.reshape(-1)[0])


def run_folders(folder: Path) -> list[Path]:
    """Folders that hold event files, below ``folder`` (itself included), at most 3 levels down."""
    out = []
    for depth in range(4):
        for d in ([folder] if depth == 0 else folder.glob("/".join(["*"] * depth))):
            if d.is_dir() and any(is_event_file(f) for f in d.iterdir() if f.is_file()):
                out.append(d)
    return out


def read_records(path: Path) -> list[dict]:
    """One run's records, one per step, from an event file, a folder of them, or a Keras
    ``train/`` + ``validation/`` pair (``path`` being their parent)."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    splits = {d.name.lower(): d for d in folder.iterdir() if d.is_dir()} if path.is_dir() else {}
    sources = [(folder, "")] if path.is_file() or any(is_event_file(f) for f in folder.iterdir()) else []
    for name, d in splits.items():
        if name in _SPLITS and any(is_event_file(f) for f in d.iterdir() if f.is_file()):
            sources.append((d, _SPLITS[name]))
    by_step: dict[int, dict] = {}
    for d, split in sources:
        for tag, step, value in _scalars(d):
            key = tag_key(tag, split)
            if key in ("hp_metric",):
                continue
            by_step.setdefault(int(step), {"step": int(step)})[key] = value
    return [by_step[s] for s in sorted(by_step)]
