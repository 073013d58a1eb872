"""Would fine-tuning the encoder read descriptions better than the shipped classifier on frozen embeddings?

    python bench/reader_finetune.py [--folds 5] [--stop-after 5] [--epochs 3]

Out of fold by source (GroupKFold over the labelled corpus, the same items as bench/reader_classifier.py):
per fold, (a) the shipped approach's classifier, a class-balanced logistic regression (C=10) on the frozen
all-MiniLM-L6-v2 embeddings, and (b) all-MiniLM-L6-v2 fine-tuned end to end with a linear head (mean pooling,
class-weighted cross-entropy, AdamW 4e-5 for the encoder and 2e-3 for the head, batch 16, 128 tokens). Prints
top-1 of each on the fold's fresh descriptions (``rules.reader.learned.FRESH``) and pooled. About 2-10 minutes
per fold on 2 CPU cores; ``--stop-after`` ends after that many folds (pooled over those).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import ROOT  # noqa: F401  (puts the project on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--stop-after", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from transformers import AutoModel, AutoTokenizer

    import reader_classifier as rc
    from rules.reader.learned import FRESH, NONE
    from rules.reader.semantic import model_dir

    items = rc.load_items()
    emb = rc.embeddings(items, False)["whole"]
    classes = sorted({it["label"] for it in items} | {NONE})
    k = len(classes)
    y = np.array([classes.index(it["label"]) for it in items])
    groups = np.array([it["group"] for it in items])
    fresh = np.array([it["split"] in FRESH for it in items])
    texts = [it["text"] for it in items]
    path = str(model_dir())
    tok = AutoTokenizer.from_pretrained(path)

    def right(pred):
        return np.array([(classes[p] in it["want"]) or (classes[p] == NONE and not it["want"])
                         for p, it in zip(pred, items)])

    def pooled(model, ids):
        out = model(**ids).last_hidden_state
        mask = ids["attention_mask"].unsqueeze(-1).float()
        return (out * mask).sum(1) / mask.sum(1)

    def batch(idx):
        return tok([texts[j] for j in idx], padding=True, truncation=True, max_length=128, return_tensors="pt")

    done = []
    t0 = time.time()
    pred_lr, pred_ft = np.zeros(len(y), int), np.zeros(len(y), int)
    for fold, (a, b) in enumerate(GroupKFold(args.folds).split(emb, y, groups)):
        if fold >= args.stop_after:
            break
        lr = LogisticRegression(C=10, max_iter=3000, tol=1e-5, class_weight="balanced").fit(emb[a], y[a])
        pred_lr[b] = lr.classes_[lr.decision_function(emb[b]).argmax(1)]
        torch.manual_seed(0)
        model, head = AutoModel.from_pretrained(path), torch.nn.Linear(384, k)
        counts = np.bincount(y[a], minlength=k).astype(float)
        weight = torch.tensor(np.where(counts > 0, len(a) / (k * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
        opt = torch.optim.AdamW([{"params": model.parameters(), "lr": 4e-5},
                                 {"params": head.parameters(), "lr": 2e-3}], weight_decay=0.01)
        rng = np.random.default_rng(fold)
        model.train()
        for _ in range(args.epochs):
            order = rng.permutation(a)
            for i in range(0, len(order), 16):
                idx = order[i:i + 16]
                loss = torch.nn.functional.cross_entropy(head(pooled(model, batch(idx))), torch.tensor(y[idx]),
                                                         weight=weight)
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            for i in range(0, len(b), 64):
                idx = b[i:i + 64]
                pred_ft[idx] = head(pooled(model, batch(idx))).argmax(1).numpy()
        done.extend(b.tolist())
        m = fresh[b]
        print(f"fold {fold} ({time.time() - t0:.0f} s): fresh n={int(m.sum())} frozen+LR {right(pred_lr)[b][m].mean():.3f} "
              f"fine-tuned {right(pred_ft)[b][m].mean():.3f}", flush=True)
    d = np.array(done)
    m = fresh[d]
    print(f"pooled over {len(d)} items ({int(m.sum())} fresh): frozen+LR {right(pred_lr)[d][m].mean():.3f}, "
          f"fine-tuned {right(pred_ft)[d][m].mean():.3f}")


if __name__ == "__main__":
    main()
