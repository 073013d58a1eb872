"""Feature extraction over 5 seeds vs one embedding pass over the same data.

    python bench/bench_fe_seeds.py [--data ../shared/data/tweeteval/sentiment_train.csv] [--seeds 5]

Measures, in one process and on the same splits:
  A: one embedding pass over train+validation+test (all-MiniLM-L6-v2, no cache)
  B: feature extraction over N seeds as `tlexpert run` does it: that embedding
     pass once, then N heads trained on the reused embeddings
and prints B / A (target <= 1.2). Repeated --repeats times; medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import TWEETEVAL  # noqa: E402  (puts the project on sys.path)
DEFAULT = TWEETEVAL / "sentiment_train.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from harness.training.data import load_text, stratified_split
    from harness.training.embed import encode
    from harness.training.models import load_encoder, resolve_model
    from harness.training.run import as_plan, plan_hypers
    from harness.training.techniques import run_head
    from knowledge import get_kb
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    data = load_text(args.data)
    train, test = stratified_split(data, 0.2, seed=0)
    train, val = stratified_split(train, 0.2, seed=0)
    tok, model = load_encoder(resolve_model("all-MiniLM-L6-v2", kb)[1])
    plan = get_engine(kb).consult(normalize({"task": "text_classification", "dataset_size": len(train),
                                             "compute": "cpu"}, kb))
    hyper = plan_hypers(as_plan(plan, kb), ["feature_extraction"], 6, [])["feature_extraction"]
    encode(model, tok, train.texts[:64])  # warm-up

    def embed_all():
        return [encode(model, tok, d.texts, max_length=128) for d in (train, val, test)]

    a_times, b_times, head_times, accs = [], [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        embed_all()
        a_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        Xtr, Xva, Xte = embed_all()
        th = time.perf_counter()
        accs = [run_head(Xtr, train.y, Xva, val.y, Xte, test.y, train.classes, s, hyper).accuracy
                for s in range(args.seeds)]
        head_times.append(time.perf_counter() - th)
        b_times.append(time.perf_counter() - t)
    a, b, h = (statistics.median(x) for x in (a_times, b_times, head_times))
    print(f"{len(train)}/{len(val)}/{len(test)} texts; {args.seeds} seeds; {args.repeats} repeats")
    print(f"  A one embedding pass:            median {a:.2f} s  ({', '.join(f'{x:.2f}' for x in a_times)})")
    print(f"  B feature extraction, {args.seeds} seeds:  median {b:.2f} s  (of which heads {h:.2f} s)")
    print(f"  B / A = {b / a:.3f}   (head accuracy per seed: {', '.join(f'{x:.3f}' for x in accs)})")


if __name__ == "__main__":
    main()
