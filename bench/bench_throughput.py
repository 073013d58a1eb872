"""Training and inference throughput of all-MiniLM-L6-v2 on tweets, on this machine's CPU.

    python bench/bench_throughput.py [--n 1000] [--epochs 2]

What the plan's time estimate rests on (knowledge/data/throughput.yaml):
  fine_tuning, lora: examples per second of a training epoch through the harness
      (harness.training.techniques.run_transformer: batch 32, max length 128, all layers /
      rank-8 adapters), the validation pass of each epoch included; the time of
      epoch 2 minus epoch 1's share is not separated: model loading and
      tokenization are timed apart and left out;
  embedding: texts per second of harness.training.embed.encode (batch 64, length-sorted).
The first --n tweets of sentiment_train.csv are trained on, the next n/4 are the
validation set. Prints the load average: on a shared machine the figures fall
as the load rises; record them with it.
"""

from __future__ import annotations

import argparse
import os
import time

from _common import TWEETEVAL  # noqa: E402  (puts the project on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()

    import torch

    from harness.training.data import TextData, load_text
    from harness.training.embed import encode
    from harness.training.models import load_encoder, load_tokenizer, resolve_model
    from harness.training.techniques import run_transformer
    from knowledge import get_kb

    kb = get_kb()
    full = load_text(TWEETEVAL / "sentiment_train.csv")
    n, nv = args.n, args.n // 4
    train = TextData(full.texts[:n], full.labels[:n], full.classes)
    val = TextData(full.texts[n:n + nv], full.labels[n:n + nv], full.classes)
    tiny = TextData(full.texts[-8:], full.labels[-8:], full.classes)
    path = resolve_model("all-MiniLM-L6-v2", kb)[1]
    tok = load_tokenizer(path)
    print(f"load average before: {os.getloadavg()}, torch threads {torch.get_num_threads()}")
    t = time.perf_counter()
    _, model = load_encoder(path)
    encode(model, tok, train.texts[:64])
    t = time.perf_counter()
    encode(model, tok, train.texts)
    emb = n / (time.perf_counter() - t)
    print(f"embedding: {emb:.0f} texts/s")
    out = {"embedding": emb}
    for tech, lr in (("fine_tuning", 2e-5), ("lora", 5e-4)):
        hyper = {"learning_rate": lr, "epochs": args.epochs, "frozen_layers": 0, "batch_size": 32,
                 "early_stopping_patience": args.epochs,
                 "lora": {"rank": 8, "alpha": 16, "dropout": 0.1, "target_modules": ["query", "value"]}}
        # the fixed cost (load, tokenize, test pass on 8 texts) measured with one epoch on 8 texts
        t = time.perf_counter()
        run_transformer(path, tiny, tiny, tiny, 0, {**hyper, "epochs": 1}, technique=tech, tokenizer=tok)
        fixed = time.perf_counter() - t
        t = time.perf_counter()
        run_transformer(path, train, val, tiny, 0, hyper, technique=tech, tokenizer=tok)
        total = time.perf_counter() - t
        rate = args.epochs * n / (total - fixed)
        out[tech] = rate
        print(f"{tech}: {args.epochs} epochs of {n} (+ {nv} validation) in {total:.1f} s, fixed cost {fixed:.1f} s: "
              f"{rate:.1f} training examples/s, validation pass included")
    print(f"load average after: {os.getloadavg()}")
    print(out)


if __name__ == "__main__":
    main()
