"""The feature-extraction head on real tweets: old AdamW head vs the converged linear probe vs
scikit-learn's LogisticRegressionCV, on the same all-MiniLM-L6-v2 features.

    python bench/bench_probe.py [--sizes 100 300 1000 3000 6000] [--draws 5] [--out bench/out/probe.json]

For each size N and draw r: N tweets drawn from sentiment_train.csv (seed r;
at N = 6,000 the whole file, so draws differ only in the split below), then

- old head: the AdamW linear head the harness used before (knowledge defaults:
  learning rate 3e-3, 30 epochs of batch 256, weight decay 1e-4, dropout 0.1,
  early stopping on validation macro-F1 with patience 5), trained on 80% of
  the N tweets and stopped on the other 20% (the split `tlexpert run` makes
  when no validation file is given);
- new head: ``harness.training.heads.linear_probe`` with the knowledge base's settings:
  L2 strength chosen on the same 20%, then refit on all N;
- LogisticRegressionCV: scikit-learn's defaults (10 strengths, 5-fold
  stratified CV on all N, accuracy), with max_iter=1000 so that every fold
  converges (its default of 100 does not on these features).

All three are scored on the 2,000 tweets of sentiment_val.csv: with 6,000
training tweets the whole of sentiment_train.csv is used, so no disjoint test
split of that file is left; the validation file is TweetEval's own split
(shifted from the training pool, two-sample AUC ~0.7), the same rows for every
head. The embeddings are computed once and cached (harness.training.embed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from _common import ROOT  # noqa: E402  (puts the project on sys.path)
from _tweet_features import tweet_features


def old_head(Xtr, ytr, Xva, yva, Xte, k, seed, hyper):
    import torch

    from harness.training.heads import mlp_head

    head, _ = mlp_head(Xtr, ytr, Xva, yva, k, seed, hyper, hidden=0)
    with torch.no_grad():
        return head(torch.from_numpy(np.asarray(Xte, np.float32))).argmax(1).numpy()


def new_head(Xtr, ytr, Xva, yva, Xte, k, settings):
    from harness.training.heads import linear_probe

    fit = linear_probe(Xtr, ytr, Xva, yva, k, settings)
    return fit.predict(Xte), fit


def lrcv(X, y, Xte, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegressionCV(max_iter=1000, random_state=seed).fit(X, y)
    return clf.predict(Xte), float(np.ravel(clf.C_)[0]), not any(
        issubclass(w.category, ConvergenceWarning) for w in caught)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000, 6000])
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "probe.json"))
    args = ap.parse_args()

    from sklearn.model_selection import train_test_split

    from harness.training.common import scores
    from knowledge import get_kb

    kb = get_kb()
    fe = kb.techniques["feature_extraction"].defaults
    old_hyper = {"learning_rate": 3e-3, "weight_decay": 1e-4, "dropout": 0.1, "epochs": 30, "batch_size": 256,
                 "early_stopping_patience": 5}  # the head's recipe before the probe
    t = time.perf_counter()
    feats = tweet_features()
    print(f"features: {time.perf_counter() - t:.1f} s (cached after the first run)")
    pool, Xpool = feats["sentiment_train.csv"]
    test, Xte = feats["sentiment_val.csv"]
    yte = np.asarray(test.y)
    k = len(pool.classes)
    rows = []
    for n in args.sizes:
        for r in range(args.draws):
            idx = np.random.default_rng(r).permutation(len(pool))[:n]
            sub = pool.subset(idx)
            Xs = Xpool[idx]
            # the split harness.training.data.stratified_split makes: 20% validation, stratified, seeded by the draw
            itr, iva = (np.array(sorted(a)) for a in train_test_split(
                list(range(n)), test_size=0.2, random_state=r, stratify=sub.labels))
            ytr, yva = np.asarray(sub.y)[itr], np.asarray(sub.y)[iva]
            row = {"n": n, "draw": r}
            t = time.perf_counter()
            p = old_head(Xs[itr], ytr, Xs[iva], yva, Xte, k, r, old_hyper)
            row["old"] = (*scores(yte, p, pool.classes)[:2], time.perf_counter() - t)
            t = time.perf_counter()
            p, fit = new_head(Xs[itr], ytr, Xs[iva], yva, Xte, k, fe.get("probe"))
            row["new"] = (*scores(yte, p, pool.classes)[:2], time.perf_counter() - t)
            row["new_C"], row["new_converged"] = fit.C, fit.converged
            t = time.perf_counter()
            p, c, ok = lrcv(Xs, np.asarray(sub.y), Xte, r)
            row["lrcv"] = (*scores(yte, p, pool.classes)[:2], time.perf_counter() - t)
            row["lrcv_C"], row["lrcv_converged"] = c, ok
            rows.append(row)
            print(f"n={n} draw {r}: old {row['old'][0]:.3f}  new {row['new'][0]:.3f} (C={fit.C:.3g})  "
                  f"LRCV {row['lrcv'][0]:.3f} (C={c:.3g})", flush=True)
    print("\n| training tweets | draws | old head acc / macro-F1 | new head acc / macro-F1 | "
          "LogisticRegressionCV acc / macro-F1 | new − LRCV (acc) | time old / new / LRCV |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for n in args.sizes:
        rs = [r for r in rows if r["n"] == n]
        m = {h: [float(np.mean([r[h][i] for r in rs])) for i in range(2)] + [statistics.median(r[h][2] for r in rs)]
             for h in ("old", "new", "lrcv")}
        diff = [r["new"][0] - r["lrcv"][0] for r in rs]
        summary.append({"n": n, "draws": len(rs), **m, "new_minus_lrcv": diff})
        print(f"| {n:,} | {len(rs)} | {m['old'][0]:.3f} / {m['old'][1]:.3f} | {m['new'][0]:.3f} / {m['new'][1]:.3f} | "
              f"{m['lrcv'][0]:.3f} / {m['lrcv'][1]:.3f} | {np.mean(diff):+.3f} (min {min(diff):+.3f}) | "
              f"{m['old'][2]:.2f} s / {m['new'][2]:.2f} s / {m['lrcv'][2]:.2f} s |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
