"""The fixes the harness can carry out on text, beyond hyperparameters.

- preprocessing: ``demojize`` (emoji rewritten as words with the ``emoji``
  package) and ``normalize`` (Unicode NFKC, user mentions and links masked,
  whitespace collapsed);
- augmentation: ``standard`` (EDA-style random word swap and deletion) and
  ``emoji`` (copies of training examples carrying emoji typical of their class);
- tokenizer: ``emoji`` adds the training data's emoji to the vocabulary and
  resizes the embeddings, each new row initialised from the embedding of the
  emoji's name (so a frozen encoder can use it too);
- stages: ``intermediate_informal`` (fine-tune first on a larger labeled
  informal-text task) and ``mlm_in_domain`` (continue masked-language-model
  training on unlabeled in-domain text) before the target task.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from typing import Optional

from harness.training.data import EMOJI_RE, TextData

CARRIED = {
    "preprocessing": {"demojize", "normalize"},
    "augmentation": {"standard", "emoji"},
    "tokenizer_extra_tokens": {"emoji"},
    "stages": {"intermediate_informal", "mlm_in_domain"},
}


# What a fix may change on the image path: "standard" augmentation (random shifts, the part every image
# policy of knowledge/regularization.yaml shares); no text preprocessing, tokens or text stages.
CARRIED_IMAGE = {"preprocessing": set(), "augmentation": {"standard"}, "tokenizer_extra_tokens": set(),
                 "stages": set()}


def can_carry(changes: list[dict], modality: str = "text") -> bool:
    """Whether the harness can carry out every change of a fix for inputs of ``modality``."""
    carried = CARRIED_IMAGE if modality == "image" else CARRIED
    for ch in changes:
        if ch["field"] in carried:
            values = ch["to"] if isinstance(ch["to"], list) else [ch["to"]]
            if not set(values) <= carried[ch["field"]]:
                return False
    return True


# --- preprocessing


def demojize(text: str) -> str:
    import emoji

    out = emoji.demojize(text, delimiters=(" ", " "))
    return re.sub(r"\s+", " ", out.replace("_", " ")).strip()


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"@\w+", "@user", text)
    text = re.sub(r"https?://\S+", "http", text)
    return re.sub(r"\s+", " ", text).strip()


def preprocess(data: TextData, ops: list) -> TextData:
    if not ops:
        return data
    texts = data.texts
    for op in ops:
        fn = {"demojize": demojize, "normalize": normalize}.get(op)
        if fn is not None:
            texts = [fn(t) for t in texts]
    return TextData(texts, list(data.labels), list(data.classes), data.origin)


# --- augmentation


def _eda(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) < 3:
        return text
    if rng.random() < 0.5:
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    else:
        drop = rng.randrange(len(words))
        words = [w for k, w in enumerate(words) if k != drop or EMOJI_RE.search(w)]
    return " ".join(words)


def class_emoji(data: TextData) -> dict:
    """The emoji seen in each class's training texts, with counts."""
    out: dict = {c: Counter() for c in data.classes}
    for t, lab in zip(data.texts, data.labels):
        out[lab].update(EMOJI_RE.findall(t))
    return out


def augment(data: TextData, ops: list, seed: int) -> TextData:
    """``data`` plus augmented copies (one per example and op)."""
    if not ops:
        return data
    rng = random.Random(seed)
    texts, labels = list(data.texts), list(data.labels)
    per_class = class_emoji(data) if "emoji" in ops else {}
    for op in ops:
        for t, lab in zip(data.texts, data.labels):
            if op == "standard":
                texts.append(_eda(t, rng))
                labels.append(lab)
            elif op == "emoji" and per_class.get(lab) and not EMOJI_RE.search(t):
                pool, weights = zip(*per_class[lab].items())
                texts.append(f"{t} {''.join(rng.choices(pool, weights=weights, k=rng.randint(1, 2)))}")
                labels.append(lab)
    return TextData(texts, labels, list(data.classes), data.origin)


# --- tokenizer


def add_emoji_tokens(tokenizer, encoder, texts: list[str]) -> list[str]:
    """Add the emoji of ``texts`` that the tokenizer maps to [UNK]; returns the added tokens."""
    import torch

    unk = tokenizer.unk_token_id
    found = sorted({e for t in texts for e in EMOJI_RE.findall(t)})
    new = [e for e in found if unk in tokenizer(e, add_special_tokens=False)["input_ids"]]
    if not new:
        return []
    names = [demojize(e) or "emoji" for e in new]
    tokenizer.add_tokens(new)
    emb = encoder.get_input_embeddings()
    old_n = emb.weight.shape[0]
    encoder.resize_token_embeddings(len(tokenizer))
    emb = encoder.get_input_embeddings()
    with torch.no_grad():
        for i, name in enumerate(names):
            ids = [x for x in tokenizer(name, add_special_tokens=False)["input_ids"] if x < old_n and x != unk]
            if ids:
                emb.weight[old_n + i] = emb.weight[ids].mean(0)
    return new


# --- stages before the target task


def mlm_stage(model_path: str, texts: list[str], tokenizer, *, epochs: int = 1, lr: float = 5e-5,
              batch_size: int = 32, max_length: int = 128, seed: int = 0, device: str = "cpu",
              progress=None):
    """Continue masked-LM training on ``texts``; returns the encoder's state dict."""
    import torch
    from harness.training.models import offline_hub

    offline_hub()
    from transformers import AutoModelForMaskedLM

    from harness.training.common import seed_everything
    from harness.training.techniques import collate, length_batches

    seed_everything(seed)
    model = AutoModelForMaskedLM.from_pretrained(model_path)
    if len(tokenizer) != model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model.to(device).train()
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    special = set(tokenizer.all_special_ids)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        total = 0.0
        for b in length_batches([len(x) for x in ids], batch_size, seed + epoch):
            kw = collate(ids, b, tokenizer.pad_token_id or 0, device, False)
            labels = kw["input_ids"].clone()
            can = kw["attention_mask"].bool() & ~torch.isin(labels, torch.tensor(sorted(special)))
            mask = (torch.rand(labels.shape, generator=g) < 0.15) & can
            labels[~mask] = -100
            inputs = kw["input_ids"].clone()
            inputs[mask] = tokenizer.mask_token_id
            opt.zero_grad()
            loss = model(input_ids=inputs, attention_mask=kw["attention_mask"], labels=labels).loss
            loss.backward()
            opt.step()
            total += loss.item()
        if progress:
            progress(f"mlm stage epoch {epoch + 1}/{epochs}: loss {total:.2f}")
    base = getattr(model, model.base_model_prefix)
    return {k: v.detach().clone() for k, v in base.state_dict().items()}


def intermediate_stage(model_path: str, data: TextData, tokenizer, hyper: dict, *, seed: int = 0,
                       device: str = "cpu", max_length: int = 128, progress=None,
                       val: Optional[TextData] = None, encoder_state: Optional[dict] = None, epochs: int = 1):
    """Fine-tune on a larger labeled informal-text task first (``epochs`` passes at ``hyper``'s
    fine-tuning recipe, every layer trained); returns the encoder's state dict."""
    from harness.training.data import stratified_split
    from harness.training.techniques import run_transformer

    if val is None:
        data, val = stratified_split(data, 0.1, seed=0)
    h = {**hyper, "frozen_layers": 0, "unfreeze": "none", "discriminative_lr_decay": 1.0, "lora": None,
         "epochs": int(epochs)}
    _, model, _ = run_transformer(model_path, data, val, val, seed, h, technique="fine_tuning", device=device,
                                  max_length=max_length, progress=progress, tokenizer=tokenizer,
                                  encoder_state=encoder_state)
    return {k: v.detach().clone() for k, v in model.encoder.state_dict().items()}
