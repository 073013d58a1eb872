"""Sentence embeddings from a frozen encoder, length-sorted and cached on disk.

Batching: sort the texts by token length, pad each batch only to its own
longest text, then put the rows back in the input order. The naive
alternatives (``order="fixed"`` pads every batch to the dataset's longest
text; ``order="input"`` pads per batch in input order) exist for the
benchmark in ``bench/bench_embed.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np


def _model_fingerprint(path: str) -> str:
    h = hashlib.sha256(str(Path(path).resolve()).encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        f = Path(path) / name
        if f.exists():
            st = f.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def mean_pool(hidden, mask):
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)


def encode(model, tokenizer, texts: list[str], *, batch_size: int = 64, max_length: int = 128,
           device: str = "cpu", order: str = "sorted", progress=None, all_layers: bool = False) -> np.ndarray:
    """Mean-pooled, L2-normalized embeddings, shape (n_texts, hidden).

    ``all_layers``: one pass, every hidden state pooled the same way, shape
    (n_layers + 1, n_texts, hidden): the embedding layer first, the last layer last."""
    import torch

    n_out = model.config.num_hidden_layers + 1 if all_layers else 0
    shape = (n_out, len(texts), model.config.hidden_size) if all_layers else (len(texts), model.config.hidden_size)
    if not texts:
        return np.zeros(shape, dtype=np.float32)
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding=False)
    ids = enc["input_ids"]
    lengths = np.array([len(x) for x in ids])
    if order == "sorted":
        idx = np.argsort(-lengths, kind="stable")
    else:
        idx = np.arange(len(texts))
    pad_id = tokenizer.pad_token_id or 0
    global_max = int(lengths.max())
    out = np.zeros(shape, dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            b = idx[start:start + batch_size]
            width = global_max if order == "fixed" else int(lengths[b].max())
            input_ids = torch.full((len(b), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(b), width), dtype=torch.long)
            for r, i in enumerate(b):
                seq = ids[i]
                input_ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
            kwargs = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
            if "token_type_ids" in enc:
                kwargs["token_type_ids"] = torch.zeros_like(kwargs["input_ids"])
            if all_layers:
                states = model(**kwargs, output_hidden_states=True).hidden_states
                for li, hidden in enumerate(states):
                    pooled = torch.nn.functional.normalize(mean_pool(hidden, kwargs["attention_mask"]), dim=-1)
                    out[li, b] = pooled.float().cpu().numpy()
            else:
                hidden = model(**kwargs).last_hidden_state
                pooled = torch.nn.functional.normalize(mean_pool(hidden, kwargs["attention_mask"]), dim=-1)
                out[b] = pooled.float().cpu().numpy()
            if progress is not None:
                progress(len(b))
    return out


def cached_encode(model_path: str, model, tokenizer, texts: list[str], *, data_key: str,
                  max_length: int = 128, batch_size: int = 64, device: str = "cpu",
                  use_cache: bool = True, progress=None, variant: str = "",
                  all_layers: bool = False) -> tuple[np.ndarray, bool]:
    """``encode`` with an on-disk cache keyed by model, data and settings. Returns (X, hit).

    ``variant`` names any change to the encoder since it was loaded (added tokens, stages).
    ``all_layers``: every layer's embeddings, shape (n_layers + 1, n_texts, hidden)."""
    key = hashlib.sha256(json.dumps(
        [_model_fingerprint(model_path), data_key, len(texts), max_length,
         "mean-l2-layers" if all_layers else "mean-l2", variant]).encode()
    ).hexdigest()[:24]
    from knowledge.cache import entry, load_array, save_array

    f = entry("embeddings", f"{key}.npy") if use_cache else None
    cached = load_array(f)
    if cached is not None:
        return cached, True  # a damaged or foreign entry is recomputed
    X = encode(model, tokenizer, texts, batch_size=batch_size, max_length=max_length,
               device=device, progress=progress, all_layers=all_layers)
    save_array(f, X)
    return X, False


def unk_rate(tokenizer, texts: list[str], max_length: Optional[int] = None) -> tuple[float, list[bool]]:
    """Share of texts whose tokens include the tokenizer's unknown token."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return 0.0, [False] * len(texts)
    enc = tokenizer(texts, truncation=max_length is not None, max_length=max_length,
                    add_special_tokens=False)["input_ids"]
    flags = [unk in ids for ids in enc]
    return (sum(flags) / len(flags) if flags else 0.0), flags
