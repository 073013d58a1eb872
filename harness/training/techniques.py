"""The techniques a plan can ask for, on text classification.

- ``run_head``: feature extraction — a linear probe fit to convergence (or a
  small MLP head) on frozen, precomputed embeddings (``harness.training.heads``).
- ``run_transformer``: fine-tuning (first k layers frozen, gradual unfreezing,
  discriminative learning rates, AdamW weight decay, dropout, L2-SP, early
  stopping on validation macro-F1), LoRA through peft (adapters on the
  attention projections, the new head trained in full via ``modules_to_save``),
  and training the same architecture from scratch.
- ``run_tfidf``: the classical no-transfer baseline (TF-IDF + logistic regression).

Batches are length-bucketed: texts sorted by length, cut into batches padded
to their own longest text, the batch order shuffled by the seed.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from harness.training.common import scores, seed_everything
from harness.training.registry import technique_spec


@dataclass
class TrainResult:
    technique: str
    seed: int
    accuracy: float
    macro_f1: float
    per_class_f1: dict
    predictions: list
    curves: list = field(default_factory=list)
    seconds: float = 0.0
    trainable_params: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# --- feature extraction: a head on frozen embeddings


def run_head(X_train, y_train, X_val, y_val, X_test, y_test, classes, seed: int, hyper: dict,
             hidden: int = 0) -> TrainResult:
    """Feature extraction's head on frozen features.

    hidden=0: the linear probe of ``harness.training.heads.linear_probe`` (L-BFGS to convergence, L2 strength
    chosen on validation, settings from ``hyper['probe']``; no learning rate, epochs or batch size).
    hidden>0: an MLP head trained with AdamW (``hyper``'s learning rate, epochs, batch size)."""
    from harness.training.heads import linear_probe, mlp_head

    t0 = time.perf_counter()
    k = len(classes)
    if not hidden:
        fit = linear_probe(X_train, y_train, X_val, y_val, k, hyper.get("probe"))
        pred = fit.predict(X_test)
        acc, f1, per = scores(y_test, pred, classes)
        # no epochs: the path over L2 strengths is kept in extra, not as learning curves
        return TrainResult("feature_extraction", seed, acc, f1, per, pred.tolist(), [],
                           time.perf_counter() - t0, int(fit.model.coef_.size + fit.model.intercept_.size),
                           extra={"head": "linear", "C": fit.C, "converged": fit.converged,
                                  "probe_path": fit.path})
    import torch

    head, curves = mlp_head(X_train, y_train, X_val, y_val, k, seed, hyper, hidden=hidden)
    with torch.no_grad():
        pred = head(torch.from_numpy(np.asarray(X_test, np.float32))).argmax(1).numpy()
    acc, f1, per = scores(y_test, pred, classes)
    return TrainResult("feature_extraction", seed, acc, f1, per, pred.tolist(), curves,
                       time.perf_counter() - t0, sum(p.numel() for p in head.parameters()),
                       extra={"head": "mlp"})


# --- no-transfer baseline


def run_tfidf(train, val, test, seed: int) -> TrainResult:
    """TF-IDF (word 1-2 grams + char 2-4 grams) and logistic regression, C tuned on validation."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    vw = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    vc = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True)
    Xtr = hstack([vw.fit_transform(train.texts), vc.fit_transform(train.texts)]).tocsr()
    Xv = hstack([vw.transform(val.texts), vc.transform(val.texts)]).tocsr()
    Xs = hstack([vw.transform(test.texts), vc.transform(test.texts)]).tocsr()
    best = None
    for C in (0.3, 1.0, 3.0, 10.0):
        clf = LogisticRegression(C=C, max_iter=2000, random_state=seed)
        clf.fit(Xtr, train.y)
        _, f1v, _ = scores(val.y, clf.predict(Xv), train.classes)
        if best is None or f1v > best[0]:
            best = (f1v, C, clf)
    pred = best[2].predict(Xs)
    acc, f1, per = scores(test.y, pred, train.classes)
    return TrainResult("tfidf_baseline", seed, acc, f1, per, pred.tolist(), [],
                       time.perf_counter() - t0, extra={"C": best[1]})


# --- transformer fine-tuning / LoRA / from scratch


def build_classifier(encoder, n_classes: int, dropout: float):
    """encoder -> mean pooling -> dropout -> linear head (the class is built here so torch loads lazily)."""
    import torch

    class _Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(encoder.config.hidden_size, n_classes)

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            from harness.training.embed import mean_pool

            kw = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kw["token_type_ids"] = token_type_ids
            hidden = self.encoder(**kw).last_hidden_state
            return self.head(self.dropout(mean_pool(hidden, attention_mask)))

    return _Classifier()


def length_batches(lengths, batch_size: int, seed: Optional[int]) -> list[np.ndarray]:
    """Indices sorted by length, cut into batches; batch order shuffled by ``seed`` (None: kept)."""
    order = np.argsort(lengths, kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if seed is not None:
        random.Random(seed).shuffle(batches)
    return batches


def collate(ids: list[list[int]], batch, pad_id: int, device: str, with_types: bool):
    import torch

    width = max(len(ids[i]) for i in batch)
    x = torch.full((len(batch), width), pad_id, dtype=torch.long)
    m = torch.zeros((len(batch), width), dtype=torch.long)
    for r, i in enumerate(batch):
        x[r, : len(ids[i])] = torch.tensor(ids[i])
        m[r, : len(ids[i])] = 1
    kw = {"input_ids": x.to(device), "attention_mask": m.to(device)}
    if with_types:
        kw["token_type_ids"] = torch.zeros_like(kw["input_ids"])
    return kw


def predict(model, ids, pad_id, device, with_types, batch_size=128) -> np.ndarray:
    import torch

    model.eval()
    out = np.zeros(len(ids), dtype=np.int64)
    with torch.inference_mode():
        for b in length_batches([len(x) for x in ids], batch_size, None):
            out[b] = model(**collate(ids, b, pad_id, device, with_types)).argmax(1).cpu().numpy()
    return out


def run_transformer(model_path: str, train, val, test, seed: int, hyper: dict, *, technique: str,
                    device: str = "cpu", max_length: int = 128, lora_targets: Optional[list] = None,
                    progress: Optional[Callable[[str], None]] = None, tokenizer=None,
                    encoder_state: Optional[dict] = None):
    """Fine-tune / LoRA / from-scratch; returns (TrainResult, trained model, tokenizer).

    ``encoder_state`` starts the encoder from other weights (an earlier stage, or
    embeddings resized for added tokens); the tokenizer may hold added tokens."""
    import torch
    from harness.training.models import offline_hub

    offline_hub()
    from transformers import AutoConfig, AutoModel

    from harness.training.loop import fit
    from harness.training.models import encoder_layers, load_tokenizer, lora_targets as find_targets

    t0 = time.perf_counter()
    seed_everything(seed)
    tok = tokenizer or load_tokenizer(model_path)
    spec = technique_spec(technique)
    if not spec.pretrained:
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(model_path))
    else:
        encoder = AutoModel.from_pretrained(model_path)
    if len(tok) > encoder.get_input_embeddings().weight.shape[0]:
        encoder.resize_token_embeddings(len(tok))
    if encoder_state is not None and spec.pretrained:
        # strict=False: a masked-LM stage has no pooler; every weight it has must fit
        unexpected = encoder.load_state_dict(encoder_state, strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"encoder state does not fit the model: {unexpected[:3]}")
    model = build_classifier(encoder, len(train.classes), float(hyper["dropout"]))
    layers = encoder_layers(encoder)
    n_layers = len(layers)
    frozen = hyper["frozen_layers"]
    frozen_n = n_layers if frozen == "all" else min(int(frozen), n_layers)
    gradual = False
    if spec.adapters:
        from peft import LoraConfig, get_peft_model

        cfg = hyper["lora"]
        targets = find_targets(encoder, list(lora_targets or cfg["target_modules"]))
        peft_cfg = LoraConfig(r=int(cfg["rank"]), lora_alpha=cfg["alpha"], lora_dropout=float(cfg["dropout"]),
                              target_modules=targets, modules_to_save=["head"])
        model = get_peft_model(model, peft_cfg)
        frozen_n = 0  # peft froze the backbone; adapters sit in every block
    else:
        for p in encoder.embeddings.parameters() if frozen_n else []:
            p.requires_grad_(False)
        for layer in layers[:frozen_n]:
            for p in layer.parameters():
                p.requires_grad_(False)
        gradual = hyper["unfreeze"] == "gradual" and spec.full_update
    model.to(device)

    enc_tr = tok(train.texts, truncation=True, max_length=max_length)["input_ids"]
    enc_va = tok(val.texts, truncation=True, max_length=max_length)["input_ids"]
    enc_te = tok(test.texts, truncation=True, max_length=max_length)["input_ids"]
    with_types = "token_type_ids" in tok.model_input_names
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    y_tr = torch.tensor(train.y)
    bs = int(hyper["batch_size"])
    lossf = torch.nn.CrossEntropyLoss()
    lengths = [len(x) for x in enc_tr]

    def loss_of(b):
        return lossf(model(**collate(enc_tr, b, pad_id, device, with_types)), y_tr[b].to(device)), len(b)

    def validate():
        return scores(val.y, predict(model, enc_va, pad_id, device, with_types), train.classes)[1]

    # LoRA's blocks are only for the schedule of rates: peft keeps the frozen weights frozen
    blocks = [[p for p in layer.parameters()] for layer in layers]
    below = [p for p in encoder.embeddings.parameters()]
    curves = fit(model, blocks, hyper, steps_per_epoch=math.ceil(len(enc_tr) / bs),
                 batches=lambda epoch: length_batches(lengths, bs, seed * 1000 + epoch), loss_of=loss_of,
                 validate=validate, below=below, floor=frozen_n, gradual=gradual,
                 progress=progress, label=f"{technique} seed {seed}")
    pred = predict(model, enc_te, pad_id, device, with_types)
    acc, f1, per = scores(test.y, pred, train.classes)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    res = TrainResult(technique, seed, acc, f1, per, pred.tolist(), curves, time.perf_counter() - t0,
                      trainable, extra={"frozen_layers": frozen_n, "layers": n_layers})
    return res, model, tok


def adapted_encoder(model):
    """The encoder inside a trained classifier (with LoRA adapters active if any)."""
    inner = getattr(model, "base_model", None)
    inner = getattr(inner, "model", model) if inner is not None else model
    return inner.encoder
