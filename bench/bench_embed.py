"""Embedding throughput: length-sorted batching vs the naive ways, side by side.

    python bench/bench_embed.py [--data ../shared/data/tweeteval/sentiment_train.csv] [--repeats 3]

Three orders on the same texts, model (all-MiniLM-L6-v2), batch size, max
length and threads, interleaved and repeated; medians reported:
  sorted: sort by token length, pad each batch to its own longest text (ours)
  fixed:  dataset order, every batch padded to the longest text in the dataset
  input:  dataset order, each batch padded to its own longest text
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _common import TWEETEVAL  # noqa: E402  (puts the project on sys.path)
DEFAULT = TWEETEVAL / "sentiment_train.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N texts")
    args = ap.parse_args()

    import numpy as np
    import torch

    from harness.training.data import load_text
    from harness.training.embed import encode
    from harness.training.models import load_encoder, resolve_model
    from knowledge import get_kb

    texts = load_text(args.data).texts
    if args.limit:
        texts = texts[: args.limit]
    tok, model = load_encoder(resolve_model("all-MiniLM-L6-v2", get_kb())[1])
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    encode(model, tok, texts[:128], batch_size=args.batch_size)  # warm-up
    times = {"sorted": [], "fixed": [], "input": []}
    outs = {}
    for _ in range(args.repeats):
        for order in times:
            t = time.perf_counter()
            outs[order] = encode(model, tok, texts, batch_size=args.batch_size,
                                 max_length=args.max_length, order=order)
            times[order].append(time.perf_counter() - t)
    assert np.allclose(outs["sorted"], outs["input"], atol=1e-4)
    assert np.allclose(outs["sorted"], outs["fixed"], atol=1e-4)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(texts)} texts from {Path(args.data).name}; tokens per text: mean {np.mean(lengths):.1f}, "
          f"max {max(lengths)}; batch {args.batch_size}, max_length {args.max_length}, "
          f"{torch.get_num_threads()} threads, {args.repeats} repeats")
    for k in times:
        print(f"  {k:<6} median {med[k]:.2f} s  ({len(texts) / med[k]:.0f} texts/s)  runs: "
              + ", ".join(f"{x:.2f}" for x in times[k]))
    print(f"speed-up of sorted over fixed (pad to dataset max): {med['fixed'] / med['sorted']:.2f}x")
    print(f"speed-up of sorted over per-batch padding in dataset order: {med['input'] / med['sorted']:.2f}x")


if __name__ == "__main__":
    main()
