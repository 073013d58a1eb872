"""Experiment: a learned, calibrated classifier for the free-text symptom reader, measured by
leave-one-source-group-out (LOSO) accuracy against the current pattern + MiniLM reader.

    .venv/bin/python bench/reader_classifier.py [--quick] [--refresh]
    .venv/bin/python bench/reader_classifier.py --product 20     # the shipped reader (rules.reader.learned)
    .venv/bin/python bench/reader_classifier.py --batch FILE     # first contact on a new batch

Prints a markdown report. Reads only; writes nothing outside bench/data/reader_classifier/
(a cache of embeddings and reader outputs, keyed by content, and the last report).

Data: tests/rules/data/symptom_corpus_<split>.yaml for the splits of rules.reader.learned.SPLITS. Each item is one text, the
pitfall(s) it names (empty: it names none, class "none") and, for most, a source. Source group:
the GitHub repository ("owner/name" of "owner/name#123"), the site of a URL (host without
"www."; a github.com URL gives its repository), or, without a source, one group per split
("nosource:public", "nosource:heldout"). Each group is held out in turn; the models are trained
on all other groups; predictions of all held-out groups are pooled.

Scoring (as bench/symptom_matcher.py): top-1 is right when the first pitfall named is one the
item expects, or when nothing is named and the item expects none. Training uses the item's first
pitfall (or "none") as its label.

Models:
  reader        rules.reader.symptoms.read_symptoms(text, kb).pitfalls[0]; names nothing -> "none"
                (for the abstention view: names nothing -> abstains)
  lr[emb]       multinomial logistic regression on MiniLM embeddings: emb = whole (the text as one
                input, 128 tokens as the reader's encoder truncates), sent (mean of the embeddings of
                its sentences), parts (mean over the reader's split_parts pieces), whole+sent (both)
  stack[emb]    lr[emb] plus the reader's ranked output as features: one-hot of its 1st pitfall,
                one-hot of its 2nd, a named-nothing flag, and (when it used the model) a flag
                per read method (name/numbers/words/meaning)
C (inverse L2) and class weights (none / balanced) are compared on LOSO; the grid is printed,
so the optimism of picking the best of it can be judged (its spread is small next to the gaps).

Calibration: temperature scaling. In each outer fold, the training groups are split by
GroupKFold(5); out-of-fold logits fit the temperature T (NLL, bounded scalar search); the final
model is fitted on the whole training fold and its held-out logits are divided by T. Nothing of
the held-out group is seen. Reliability table + ECE (bins 0-.5, .5-.6, ..., .9-1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _common import ROOT  # noqa: E402  (puts the project on sys.path)
from rules.reader.learned import FRESH, SPLITS, fit_temperature, load_corpus, softmax  # noqa: E402

CORPUS = ROOT / "tests" / "rules" / "data"
OUT = ROOT / "bench" / "data" / "reader_classifier"
NONE = "none"
BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0000001)


# --- data


def load_items() -> list[dict]:
    return load_corpus(CORPUS)


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:20]


def _code_key() -> str:
    """The reader's answers change when its code or knowledge files change: key its cache on them."""
    files = sorted((ROOT / "rules" / "reader").glob("*.py")) + sorted((ROOT / "knowledge" / "data").rglob("*.yaml"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def reader_outputs(items, refresh: bool) -> list[dict]:
    """The current reader on each text: ranked pitfalls and the method of each match."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"reader_{_code_key()}.json"
    cache = {} if refresh or not path.exists() else json.loads(path.read_text())
    missing = [it["text"] for it in items if _sha(it["text"]) not in cache]
    if missing:
        from knowledge import get_kb
        from rules.reader.symptoms import read_symptoms

        kb = get_kb()
        for t in missing:
            try:
                r = read_symptoms(t, kb)
                methods = {}
                for m in r.matches:
                    methods.setdefault(m.pitfall, m.method)
                cache[_sha(t)] = {"pitfalls": r.pitfalls, "methods": [methods[p] for p in r.pitfalls]}
            except Exception as exc:  # a refusal names nothing
                cache[_sha(t)] = {"pitfalls": [], "methods": [], "error": type(exc).__name__}
        path.write_text(json.dumps(cache))
    return [cache[_sha(it["text"])] for it in items]


_SENT = re.compile(r"\s*\.\.\.\s*|(?<=[.!?])\s+|(?<=[。！？])|\n+")


def sentences(text: str) -> list[str]:
    out = [s.strip() for s in _SENT.split(text) if s and len(s.strip()) > 1]
    return out or [text]


def parts_of(text: str) -> list[str]:
    from rules.reader.words import split_parts

    out = [p for p, _ in split_parts(text) if p.strip()]
    return out or [text]


def embeddings(items, refresh: bool) -> dict[str, np.ndarray]:
    """(n, 384) embeddings per view; each distinct string is encoded once and cached on disk."""
    from rules.reader.semantic import get_encoder

    enc = get_encoder()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"emb_{enc.fingerprint}.npz"
    cache: dict[str, np.ndarray] = {}
    if path.exists() and not refresh:
        z = np.load(path)
        cache = dict(zip(z["keys"].tolist(), z["vecs"]))
    from knowledge import get_kb
    from rules.reader.numbers import encoder_text

    kb = get_kb()
    # the whole text as the shipped reader's encoder reads it: another language through the glossary
    views = {"whole": [[encoder_text(it["text"], kb)] for it in items],
             "sent": [sentences(it["text"]) for it in items],
             "parts": [parts_of(it["text"]) for it in items]}
    todo = sorted({s for v in views.values() for ss in v for s in ss if _sha(s) not in cache})
    if todo:
        t0 = time.time()
        # by length: batches of similar length pad less
        todo.sort(key=len)
        vecs = enc.encode(todo, batch=32)
        cache.update({_sha(s): v for s, v in zip(todo, vecs)})
        np.savez(path, keys=np.array(list(cache)), vecs=np.stack(list(cache.values())))
        print(f"<!-- encoded {len(todo)} strings in {time.time() - t0:.0f}s -->", file=sys.stderr)
    out = {}
    for name, v in views.items():
        m = np.stack([np.mean([cache[_sha(s)] for s in ss], axis=0) for ss in v])
        out[name] = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    out["whole+sent"] = np.hstack([out["whole"], out["sent"]])
    return out


def reader_features(outs, classes: list[str]) -> np.ndarray:
    k = len(classes)
    pos = {c: i for i, c in enumerate(classes)}
    methods = ["name", "numbers", "words", "meaning", "word-overlap"]
    x = np.zeros((len(outs), 2 * k + 1 + len(methods)), dtype=np.float32)
    for i, o in enumerate(outs):
        p = o["pitfalls"]
        if not p:
            x[i, 2 * k] = 1.0
            continue
        x[i, pos.get(p[0], pos[NONE])] = 1.0
        if len(p) > 1:
            x[i, k + pos.get(p[1], pos[NONE])] = 1.0
        if o["methods"] and o["methods"][0] in methods:
            x[i, 2 * k + 1 + methods.index(o["methods"][0])] = 1.0
    return x


# --- models


def fit_lr(x, y, c: float, weight: str | None):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight=weight, max_iter=2000, tol=1e-4).fit(x, y)


def logits_full(model, x, k: int) -> np.ndarray:
    """Decision values over all k classes (a class absent from the training fold gets -inf)."""
    out = np.full((len(x), k), -np.inf)
    d = model.decision_function(x)
    if d.ndim == 1:
        d = np.stack([-d, d], 1)
    out[:, model.classes_] = d
    return out


def loso(x, y, groups, c, weight, k, calibrate=False, inner=5):
    """Pooled held-out logits (temperature-scaled when calibrate) and the temperature of each fold."""
    from sklearn.model_selection import GroupKFold

    z = np.zeros((len(y), k))
    temps = []
    for g in np.unique(groups):
        te = groups == g
        tr = ~te
        model = fit_lr(x[tr], y[tr], c, weight)
        zt = logits_full(model, x[te], k)
        if calibrate:
            xi, yi, gi = x[tr], y[tr], groups[tr]
            oof = np.zeros((len(yi), k))
            for a, b in GroupKFold(n_splits=inner).split(xi, yi, gi):
                oof[b] = logits_full(fit_lr(xi[a], yi[a], c, weight), xi[b], k)
            t = fit_temperature(oof, yi)
            temps.append(t)
            zt = zt / t
        z[te] = zt
    return np.where(np.isfinite(z), z, -1e4), temps


# --- scoring


def correct(pred: list[str], items) -> np.ndarray:
    return np.array([(p == NONE and not it["want"]) or p in it["want"] for p, it in zip(pred, items)])


def reliability(conf: np.ndarray, ok: np.ndarray) -> tuple[list, float]:
    rows, ece = [], 0.0
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        m = (conf >= lo) & (conf < hi)
        if m.sum():
            rows.append((lo, min(hi, 1.0), int(m.sum()), float(conf[m].mean()), float(ok[m].mean())))
            ece += m.sum() / len(conf) * abs(conf[m].mean() - ok[m].mean())
        else:
            rows.append((lo, min(hi, 1.0), 0, float("nan"), float("nan")))
    return rows, float(ece)


def reliability_table(rows: list) -> list[str]:
    """``reliability``'s rows as a Markdown table."""
    lines = ["| probability | count | mean probability | observed accuracy |", "| --- | --- | --- | --- |"]
    for lo, hi, n, mc, acc in rows:
        lines.append(f"| {lo:.1f}-{hi:.1f} | {n} | {mc:.3f} | {acc:.3f} |" if n else f"| {lo:.1f}-{hi:.1f} | 0 | - | - |")
    return lines


def paired_boot(a: np.ndarray, b: np.ndarray, n=2000, seed=0) -> tuple[float, float]:
    """95% bootstrap interval of mean(a) - mean(b) over items (paired)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    d = a[idx].mean(1) - b[idx].mean(1)
    return float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def per_split(ok, items) -> dict[str, float]:
    sp = np.array([it["split"] for it in items])
    return ({s: float(ok[sp == s].mean()) for s in SPLITS} | {"all": float(ok.mean())}
            | {"new": float(ok[sp != "public"].mean())})


def _acc(x, y, groups, c, w, k, classes, items) -> np.ndarray:
    z, _ = loso(x, y, groups, c, w, k)
    return correct([classes[i] for i in z.argmax(1)], items)


# --- main


def product(folds: int, refresh: bool) -> None:
    """The shipped reader (patterns, then rules.reader.learned's calibrated judgement and abstention),
    refitted without each fold's sources and judged on them: top-1, abstention and reliability of the
    probability it prints. Folds hold whole sources out (GroupKFold)."""
    from sklearn.model_selection import GroupKFold

    from rules.reader.learned import Model, fit_arrays, judge_output

    t0 = time.time()
    items = load_items()
    outs = reader_outputs(items, refresh)
    x = embeddings(items, refresh)["whole"]
    groups = np.array([it["group"] for it in items])
    splits = np.array([it["split"] for it in items])
    pred, conf, abst, by = [None] * len(items), np.zeros(len(items)), np.zeros(len(items), bool), [""] * len(items)
    for tr, te in GroupKFold(n_splits=folds).split(x, groups=groups):
        m = fit_arrays([items[i] for i in tr], [outs[i] for i in tr], x[tr])
        model = Model.from_content(m)
        for i in te:
            j = judge_output(outs[i], lambda i=i: x[i], model)
            pred[i], conf[i] = j.top
            abst[i], by[i] = j.abstain, j.by
    ok = correct(pred, items)
    r_ok = correct([o["pitfalls"][0] if o["pitfalls"] else NONE for o in outs], items)
    lines = [f"## The shipped reader, {folds}-fold by source (each fold's sources unseen by its model)", "",
             "| split | n | patterns top-1 | shipped top-1 | abstained | top-1 on answered | ECE (answered) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in SPLITS + ("fresh", "all"):
        m = (splits == s) if s in SPLITS else np.isin(splits, FRESH) if s == "fresh" else np.ones(len(items), bool)
        ans = m & ~abst
        _, e = reliability(conf[ans], ok[ans])
        lines.append(f"| {s} | {int(m.sum())} | {r_ok[m].mean():.3f} | {ok[m].mean():.3f} | {abst[m].mean():.1%} | "
                     f"{ok[ans].mean():.3f} | {e:.3f} |")
    rows, e = reliability(conf[~abst], ok[~abst])
    lines += ["", f"Reliability of the printed probability (answered, all items): ECE {e:.3f}", ""]
    lines += reliability_table(rows)
    fr = np.isin(splits, FRESH)
    rows, e = reliability(conf[fr & ~abst], ok[fr & ~abst])
    lines += ["", f"Reliability on the fresh descriptions (answered; the printed probability is calibrated for "
                  f"text like these): ECE {e:.3f}", ""]
    lines += reliability_table(rows)
    lines += ["", "By route: " + ", ".join(f"{r} {sum(b == r for b in by)} (top-1 {ok[np.array(by) == r].mean():.3f})"
                                          for r in sorted(set(by))),
              "", "By route, fresh descriptions only: " + ", ".join(
                  f"{r} {int((fr & (np.array(by) == r)).sum())} (top-1 {ok[fr & (np.array(by) == r)].mean():.3f})"
                  for r in sorted(set(np.array(by)[fr].tolist()))), "", f"<!-- {time.time() - t0:.0f}s -->"]
    print("\n".join(lines))


def batch(path: Path) -> None:
    """The shipped reader exactly as `consult --symptom` runs it (patterns, then the calibrated model fitted
    on the three corpora above), on a new batch of descriptions it has never seen: top-1 (of all, and of the
    answered), abstention, and the reliability of the printed probability. Items: {text, pitfalls, source}."""
    import yaml

    from knowledge import get_kb
    from rules.reader.symptoms import SymptomMatchError, calibrate, read_symptoms

    kb = get_kb()
    items = yaml.safe_load(path.read_text(encoding="utf-8"))["items"]
    rows = []
    for it in items:
        want = list(it.get("pitfalls") or [])
        try:
            r = read_symptoms(str(it["text"]), kb)
            j = calibrate(r, kb)
            first = r.pitfalls[0] if r.pitfalls else NONE
        except SymptomMatchError:
            r, j, first = None, None, NONE
        abstain = bool(j is not None and j.abstain) or first == NONE and bool(want)
        conf = float(j.top[1]) if j is not None else 1.0
        rows.append({"want": want or [NONE], "got": first, "ok": first in (want or [NONE]), "abstain": abstain,
                     "conf": conf, "by": j.by if j is not None else "patterns", "source": it.get("source", "")})
    ok = np.array([r["ok"] for r in rows])
    ab = np.array([r["abstain"] for r in rows])
    conf = np.array([r["conf"] for r in rows])
    ans = ~ab
    table, e = reliability(conf[ans], ok[ans])
    lines = [f"## First contact: {path.name} ({len(rows)} items, the shipped reader and model)", "",
             f"top-1 {ok.mean():.3f}; abstained {ab.mean():.1%}; top-1 on answered {ok[ans].mean():.3f}; "
             f"ECE (answered) {e:.3f}", ""]
    lines += reliability_table(table)
    by_want = Counter(r["want"][0] for r in rows)
    right = Counter(r["want"][0] for r in rows if r["ok"])
    lines += ["", "Per expected pitfall: " + ", ".join(f"{w} {right[w]}/{n}" for w, n in sorted(by_want.items())),
              "", "By route: " + ", ".join(f"{b} {sum(r['by'] == b for r in rows)} (right "
                                          f"{sum(r['ok'] for r in rows if r['by'] == b)})"
                                          for b in sorted({r['by'] for r in rows})),
              "", "Wrong: " + "; ".join(f"{r['source']}: want {r['want'][0]}, got {r['got']} ({r['by']} {r['conf']:.2f}"
                                        f"{', abstained' if r['abstain'] else ''})" for r in rows if not r["ok"])]
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=Path, metavar="YAML", help="first contact: the shipped reader on a new batch")
    ap.add_argument("--quick", action="store_true", help="a smaller grid (C in {1, 10}; views whole, sent)")
    ap.add_argument("--refresh", action="store_true", help="recompute the cached reader outputs and embeddings")
    ap.add_argument("--product", type=int, metavar="FOLDS", default=0,
                    help="only measure the shipped reader, FOLDS-fold by source")
    args = ap.parse_args()
    if args.batch:
        batch(args.batch)
        return
    if args.product:
        product(args.product, args.refresh)
        return
    t0 = time.time()

    items = load_items()
    classes = sorted({it["label"] for it in items} | {NONE})
    k = len(classes)
    y = np.array([classes.index(it["label"]) for it in items])
    groups = np.array([it["group"] for it in items])
    splits = np.array([it["split"] for it in items])
    outs = reader_outputs(items, args.refresh)
    embs = embeddings(items, args.refresh)
    rfeat = reader_features(outs, classes)

    def X(kind, v, sc=None):
        return embs[v] if kind == "lr" else np.hstack([embs[v], (sc or 1.0) * rfeat])

    gsize = Counter(groups.tolist())
    lines = ["# Symptom reader: learned classifier vs the current reader (leave-one-source-group-out)", ""]
    lines.append(f"{len(items)} items ({', '.join(f'{s} {int((splits == s).sum())}' for s in SPLITS)}), "
                 f"{k} classes (11 pitfalls + none), {len(gsize)} source groups: "
                 + ", ".join(f"{g} {n}" for g, n in gsize.most_common(6))
                 + f", ... ({sum(1 for n in gsize.values() if n == 1)} groups of one item).")
    lines.append("")

    # (a) the current reader
    rpred = [o["pitfalls"][0] if o["pitfalls"] else NONE for o in outs]
    r_ok = correct(rpred, items)
    r_named = np.array([bool(o["pitfalls"]) for o in outs])

    # (b)/(c) grid, accuracy only (the temperature does not change the argmax)
    views = ["whole", "sent"] if args.quick else ["whole", "sent", "parts", "whole+sent"]
    cs = [10.0, 30.0] if args.quick else [10.0, 30.0, 100.0]
    weights = [None, "balanced"]
    scales = [1.0] if args.quick else [0.3, 1.0]  # reader block scale in the stack: smaller = shrunk harder
    grid = {}
    for kind in ("lr", "stack"):
        for v in (views if kind == "lr" else views[:2]):
            for c in cs:
                for w in weights:
                    for sc in (scales if kind == "stack" else [None]):
                        grid[(kind, v, c, w, sc)] = _acc(X(kind, v, sc), y, groups, c, w, k, classes, items)
    lines += ["## LOSO top-1 grid", "",
              "Stack `scale`: the reader's one-hot block is multiplied by it (0.3: the L2 penalty shrinks its weights "
              "harder, so the embeddings weigh more).", "",
              "| model | view | C | class weight | scale | public | heldout | field | all | heldout+field |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rs = per_split(r_ok, items)
    lines.append(f"| reader (current) | - | - | - | - | {rs['public']:.3f} | {rs['heldout']:.3f} | {rs['field']:.3f} | "
                 f"{rs['all']:.3f} | {rs['new']:.3f} |")
    for (kind, v, c, w, sc), ok in grid.items():
        s = per_split(ok, items)
        lines.append(f"| {kind} | {v} | {c:g} | {w or 'none'} | {sc if sc else '-'} | {s['public']:.3f} | {s['heldout']:.3f} | "
                     f"{s['field']:.3f} | {s['all']:.3f} | {s['new']:.3f} |")
    lines.append("")

    # the best config of each kind, by pooled LOSO accuracy over all items; then its calibrated run
    def best(kind, view=None):
        keys = [key for key in grid if key[0] == kind and (view is None or key[1] == view)]
        return max(keys, key=lambda key: (grid[key].mean(), -key[2]))  # ties: the smaller C

    chosen = {"lr[whole]": best("lr", "whole"), "lr[sent]": best("lr", "sent")}
    if not args.quick:
        b = best("lr")
        if b[1] not in ("whole", "sent"):
            chosen[f"lr[{b[1]}]"] = b
    chosen["stack"] = best("stack")
    cal = {}
    for name, (kind, v, c, w, sc) in chosen.items():
        z, temps = loso(X(kind, v, sc), y, groups, c, w, k, calibrate=True)
        p = softmax(z)
        zr = z * np.median(temps)  # uncalibrated logits (undo the fold's T; T varies little: report median)
        cal[name] = {"key": (kind, v, c, w, sc), "p": p, "temps": temps,
                     "p_raw": softmax(zr)}

    lines += ["## Chosen models, calibrated by in-fold temperature scaling", "",
              "Each: the best C / class weight (/ scale) of the grid by LOSO top-1 over all items.", "",
              "| model | view | C | class weight | temperature (median, range over folds) | public | heldout | field | all | ECE raw | ECE calibrated |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines.append(f"| reader (current) | - | - | - | - | {rs['public']:.3f} | {rs['heldout']:.3f} | {rs['field']:.3f} | {rs['all']:.3f} | - | - |")
    for name, d in cal.items():
        kind, v, c, w, sc = d["key"]
        pred = [classes[i] for i in d["p"].argmax(1)]
        ok = correct(pred, items)
        d["ok"], d["pred"] = ok, pred
        s = per_split(ok, items)
        conf = d["p"].max(1)
        _, e_cal = reliability(conf, ok)
        _, e_raw = reliability(d["p_raw"].max(1), ok)
        t = np.array(d["temps"])
        lines.append(f"| {name}{f' (scale {sc})' if sc else ''} | {v} | {c:g} | {w or 'none'} | {np.median(t):.2f} ({t.min():.2f}-{t.max():.2f}) | "
                     f"{s['public']:.3f} | {s['heldout']:.3f} | {s['field']:.3f} | {s['all']:.3f} | {e_raw:.3f} | {e_cal:.3f} |")
    lines.append("")

    # (d) a rule hybrid, no training beyond the lr: the reader's answer when it read it by name, numbers or
    # words (its certain paths), the best calibrated lr's answer otherwise (meaning, or nothing named)
    best_lr = max((n for n in cal if n.startswith("lr")), key=lambda n: cal[n]["ok"].mean())
    certain = np.array([bool(o["methods"]) and o["methods"][0] != "meaning" for o in outs])
    h_pred = [rp if c else lp for rp, lp, c in zip(rpred, cal[best_lr]["pred"], certain)]
    h_ok = correct(h_pred, items)
    hs = per_split(h_ok, items)
    if lines[-1] == "":
        lines.pop()
    lines.append(f"| hybrid: reader if certain, else {best_lr} | - | - | - | - | {hs['public']:.3f} | {hs['heldout']:.3f} | "
                 f"{hs['field']:.3f} | {hs['all']:.3f} | - | - |")
    lines.append("")
    lines.append("Reader's certain paths (name / numbers / words) answer "
                 + ", ".join(f"{s} {certain[splits == s].mean():.0%} (top-1 {r_ok[certain & (splits == s)].mean():.3f})" for s in SPLITS)
                 + "; the rest (meaning / nothing) top-1: reader "
                 + ", ".join(f"{s} {r_ok[~certain & (splits == s)].mean():.3f}" for s in SPLITS)
                 + f"; {best_lr} on the same items "
                 + ", ".join(f"{s} {cal[best_lr]['ok'][~certain & (splits == s)].mean():.3f}" for s in SPLITS) + ".")
    lines.append("")
    cal_h = {"hybrid": {"ok": h_ok}}

    # paired differences vs the reader
    lines += ["## Paired difference in top-1 vs the current reader (95% bootstrap interval over items)", "",
              "| model | public | heldout | field | all |", "| --- | --- | --- | --- | --- |"]
    for name, d in (cal | cal_h).items():
        cells = []
        for s in SPLITS + ("all",):
            m = np.ones(len(items), bool) if s == "all" else splits == s
            lo, hi = paired_boot(d["ok"][m].astype(float), r_ok[m].astype(float))
            cells.append(f"{d['ok'][m].mean() - r_ok[m].mean():+.3f} [{lo:+.3f}, {hi:+.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")

    # the best learned model: the highest pooled accuracy on the non-public splits (never tuned on by the
    # reader), ties by all items
    def new_acc(name):
        m = splits != "public"
        return (cal[name]["ok"][m].mean(), cal[name]["ok"].mean())

    top = max(cal, key=new_acc)
    d = cal[top]
    conf = d["p"].max(1)
    rows, ece = reliability(conf, d["ok"])
    lines += [f"## Reliability of {top} (calibrated, pooled LOSO predictions, all items): ECE {ece:.3f}", "",
              "| confidence | count | mean confidence | observed accuracy |", "| --- | --- | --- | --- |"]
    for lo, hi, n, mc, acc in rows:
        lines.append(f"| {lo:.1f}-{hi:.1f} | {n} | {mc:.3f} | {acc:.3f} |" if n else f"| {lo:.1f}-{hi:.1f} | 0 | - | - |")
    lines.append("")
    for s in ("heldout", "field"):
        m = splits == s
        _, e = reliability(conf[m], d["ok"][m])
        lines.append(f"ECE on {s} only: {e:.3f} (n={int(m.sum())}); mean confidence {conf[m].mean():.3f}, accuracy {d['ok'][m].mean():.3f}.")
    lines.append("")

    # abstention
    lines += [f"## Abstention ({top}: abstains below a calibrated-confidence threshold)", "",
              "| target abstention | threshold | scope | abstained | top-1 on answered | answered |", "| --- | --- | --- | --- | --- | --- |"]
    for target in (0.0, 0.05, 0.10, 0.20):
        thr = 0.0 if target == 0 else float(np.quantile(conf, target))
        for scope in ("all", "heldout+field"):
            m = np.ones(len(items), bool) if scope == "all" else splits != "public"
            ans = m & (conf >= thr)
            lines.append(f"| {target:.0%} | {thr:.3f} | {scope} | {1 - ans.sum() / m.sum():.1%} | "
                         f"{d['ok'][ans].mean():.3f} | {int(ans.sum())}/{int(m.sum())} |")
    for scope in ("all", "heldout+field"):
        m = np.ones(len(items), bool) if scope == "all" else splits != "public"
        ans = m & r_named
        lines.append(f"| reader: abstains when it names nothing | - | {scope} | {1 - ans.sum() / m.sum():.1%} | "
                     f"{r_ok[ans].mean():.3f} | {int(ans.sum())}/{int(m.sum())} |")
    lines.append("")

    # confusions
    conf_pairs = Counter((it["label"], p) for it, p, ok in zip(items, d["pred"], d["ok"]) if not ok)
    r_pairs = Counter((it["label"], p) for it, p, ok in zip(items, rpred, r_ok) if not ok)
    lines += [f"## The 15 most frequent confusions of {top} (LOSO, all items; expected -> predicted)", "",
              "| expected | predicted | count | reader's count for the same pair |", "| --- | --- | --- | --- |"]
    for (a, b), n in conf_pairs.most_common(15):
        lines.append(f"| {a} | {b} | {n} | {r_pairs.get((a, b), 0)} |")
    lines.append("")

    # where the two disagree
    both = Counter()
    for ok1, ok2 in zip(d["ok"], r_ok):
        both[(bool(ok1), bool(ok2))] += 1
    lines.append(f"{top} vs reader, all items: both right {both[(True, True)]}, only {top} {both[(True, False)]}, "
                 f"only reader {both[(False, True)]}, both wrong {both[(False, False)]}.")
    lines.append("")
    lines.append(f"<!-- {time.time() - t0:.0f}s -->")
    report = "\n".join(lines)
    print(report)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
