"""A calibrated probability for what a description names, and the choice to abstain.

The pattern reader (``rules.reader.symptoms``) says *which* pitfalls a text names and *how* it read
them (by name, numbers, words or meaning). This module says *how sure* that is, as a probability
measured to be right that often, learned from the labelled corpus of real descriptions
(``tests/rules/data/symptom_corpus_*.yaml``) and stored in ``knowledge/data/reader_model.json``:

- **Certain paths** (name, numbers, words): the reader's first pitfall, with the share of held-out
  and field descriptions read by that path whose first pitfall was right (Laplace-smoothed; the
  public ones are left out of the count, as the patterns were written against them). No model runs:
  the word path stays fast.
- **Meaning, or nothing named**: a multinomial logistic regression over the text's MiniLM embedding,
  its logits divided by a temperature fitted out of fold (temperature scaling, Guo et al. 2017). It can
  name a pitfall the patterns missed, reorder the two they read, or abstain. It does not take the
  patterns' own output as input: they were written against most of the corpus, so on it they look
  far surer than on new text, and a model stacked on them learns to trust them that much (measured:
  bench/reader_classifier.py).
- **Abstention**: below ``abstain_below`` (chosen on out-of-fold predictions: the least sure 15% of
  the descriptions the classifier answers, about one description in twenty of the whole corpus), the reading says it is not sure, with the candidates and what would
  settle it, instead of a diagnosis built on a guess.

``python -m rules.reader.fit`` refits the model on the corpus and rewrites the JSON (about a
minute: the corpus is embedded once). ``bench/reader_classifier.py`` measures the approach by
leave-one-source-out; BENCHMARKS.md has its figures.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
MODEL_PATH = ROOT / "knowledge" / "data" / "reader_model.json"
CORPUS = ROOT / "tests" / "rules" / "data"
SPLITS = ("public", "heldout", "field")
NONE = "none"
METHODS = ("name", "numbers", "words", "meaning", "word-overlap")
CERTAIN = ("name", "numbers", "words")
SAME_PHRASE = 0.95  # cosine similarity at which a reading by meaning is a knowledge-base phrasing restated


# --- the corpus


def source_group(source: str, split: str) -> str:
    """The project or site a description came from (leave-one-source-out holds each out in turn): the
    GitHub repository of an issue URL or ``owner/name#123``, else the site's host."""
    src = (source or "").strip()
    if not src:
        return f"nosource:{split}"
    if src.startswith(("http://", "https://")):
        u = urlparse(src)
        host = u.netloc.lower().removeprefix("www.")
        if host == "github.com":
            bits = [b for b in u.path.split("/") if b]
            return "/".join(bits[:2]).lower() if len(bits) >= 2 else host
        return host
    m = re.match(r"^([\w.-]+/[\w.-]+)#\d+", src)
    return m.group(1).lower() if m else src.lower()


def load_corpus(folder: Path = CORPUS) -> list[dict]:
    """Items ``{"text", "want", "label", "split", "group"}``; ``label`` is the first pitfall named, or none."""
    import yaml

    items = []
    for split in SPLITS:
        path = folder / f"symptom_corpus_{split}.yaml"
        for it in yaml.safe_load(path.read_text(encoding="utf-8"))["items"]:
            want = list(it.get("pitfalls") or [])
            items.append({"text": str(it["text"]), "want": want, "label": want[0] if want else NONE,
                          "split": split, "group": source_group(str(it.get("source") or ""), split)})
    return items


def corpus_digest(folder: Path = CORPUS) -> str:
    h = hashlib.sha256()
    for split in SPLITS:
        h.update((folder / f"symptom_corpus_{split}.yaml").read_bytes())
    return h.hexdigest()[:16]


# --- features


def reader_output(reading) -> dict:
    """What the classifier uses of a pattern reading: its ranked pitfalls and the method of each."""
    methods: dict = {}
    for m in reading.matches:
        # a reading by meaning all but identical to one of the knowledge base's own phrasings is as
        # certain as one by its words
        methods.setdefault(m.pitfall, "words" if m.method == "meaning" and m.score >= SAME_PHRASE else m.method)
    return {"pitfalls": reading.pitfalls, "methods": [methods[p] for p in reading.pitfalls]}


def embed(texts: list[str]):
    """Unit-length MiniLM embeddings of whole texts, shape (n, 384)."""
    import numpy as np

    from rules.reader.semantic import get_encoder

    v = np.asarray(get_encoder().encode(list(texts), batch=32), dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def softmax(z):
    import numpy as np

    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(z, y) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(z / T) (bounded search)."""
    import numpy as np
    from scipy.optimize import minimize_scalar

    z = np.where(np.isfinite(z), z, -1e4)

    def nll(logt):
        p = softmax(z / np.exp(logt))
        return -np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)))

    r = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(np.exp(r.x))


# --- the stored model


@dataclass
class Model:
    classes: list
    coef: list            # (k, d)
    intercept: list       # (k,)
    temperature: float
    abstain_below: float
    certain: dict         # method -> {"right", "n", "p"}
    meta: dict
    routes: dict = field(default_factory=dict)  # route -> Platt {"a", "b"} on the logit of the raw probability

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> Optional["Model"]:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(d["classes"], d["coef"], d["intercept"], float(d["temperature"]),
                       float(d["abstain_below"]), d["certain"], d.get("meta", {}), d.get("routes", {}))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def probabilities(self, embedding) -> list[tuple[str, float]]:
        """(class, calibrated probability) for one text's embedding, most probable first."""
        import numpy as np

        x = np.asarray(embedding, dtype=np.float64).ravel()
        z = np.asarray(self.coef) @ x + np.asarray(self.intercept)
        p = softmax(z / self.temperature)
        order = np.argsort(-p)
        return [(self.classes[i], float(p[i])) for i in order]


_MODEL: dict = {}


def get_model() -> Optional[Model]:
    if "m" not in _MODEL:
        _MODEL["m"] = Model.load()
    return _MODEL["m"]


@dataclass
class Judgement:
    """How sure a reading is: the candidates with calibrated probabilities, and whether to abstain."""
    candidates: list          # [(pitfall or "none", probability)], most probable first
    by: str                   # "path:<method>" (that path's measured precision) or "route:<route>" (route_of)
    abstain: bool

    @property
    def top(self) -> tuple[str, float]:
        return self.candidates[0] if self.candidates else (NONE, 0.0)

    def as_dict(self) -> dict:
        return {"candidates": [{"pitfall": p, "probability": round(q, 3)} for p, q in self.candidates[:3]],
                "by": self.by, "abstain": self.abstain}


def judge(reading, model: Optional[Model] = None) -> Optional[Judgement]:
    """The calibrated judgement of a pattern reading, or None (no stored model, or the semantic
    encoder is not installed: the reading stands as it is)."""
    model = model or get_model()
    if model is None:
        return None
    from rules.reader.semantic import SemanticUnavailable

    def embedding():
        return embed([reading.text])[0]

    try:
        return judge_output(reader_output(reading), embedding, model)
    except (SemanticUnavailable, ImportError, OSError):
        return None


def route_of(first: Optional[str], pattern_first: str, cands: list, certain: dict) -> tuple[str, list]:
    """Which answer stands when the patterns did not read the text by name, numbers or words, and by
    which route: ``agree`` (the patterns' reading by meaning is the classifier's first), ``nothing`` (the
    patterns named nothing), ``classifier`` (the classifier overrules a reading by meaning) or
    ``pattern`` (the reading by meaning stands: on such disputed cases it is right more often than the
    classifier's probability). Returns (route, candidates, the answer first with its raw probability;
    ``judge_output`` calibrates it and rescales the others)."""
    if first != "meaning":
        return "nothing", cands
    if cands[0][0] == pattern_first:
        return "agree", cands
    disputed = certain.get("meaning_disputed")
    if disputed is not None and float(disputed["p"]) > cands[0][1]:
        return "pattern", [(pattern_first, float(disputed["p"]))] + [(c, x) for c, x in cands if c != pattern_first]
    return "classifier", cands


def platt(route: dict, p: float) -> float:
    """P(right) from a raw probability by the route's Platt scaling (identity when not fitted)."""
    if not route:
        return p
    p = min(max(p, 1e-6), 1 - 1e-6)
    z = route["a"] * math.log(p / (1 - p)) + route["b"]
    return 1.0 / (1.0 + math.exp(-z))


def judge_output(out: dict, embedding, model: Model) -> Judgement:
    """``judge`` on the patterns' output; ``embedding()`` gives the text's embedding when needed."""
    first = out["methods"][0] if out["methods"] else None
    if first in CERTAIN and first in model.certain:
        return Judgement([(out["pitfalls"][0], float(model.certain[first]["p"]))], f"path:{first}", False)
    pattern_first = out["pitfalls"][0] if out["pitfalls"] else NONE
    route, cands = route_of(first, pattern_first, model.probabilities(embedding()), model.certain)
    top, p = cands[0]
    q = platt(model.routes.get(route), p)
    rest = sum(x for _, x in cands[1:]) or 1.0
    scale = (1.0 - q) / rest
    if cands[1:] and cands[1][1] * scale > q:  # the others never outrank the answer given
        scale = q / cands[1][1]
    cands = [(top, q)] + [(c, x * scale) for c, x in cands[1:]]
    return Judgement(cands, f"route:{route}", q < model.abstain_below)


# --- fitting


def fit_arrays(items: list[dict], outs: list[dict], x, c: float = 30.0, abstain_share: float = 0.15) -> dict:
    """The model's content from the patterns' outputs and the embeddings already computed
    (``rules.reader.fit`` for the shipped model; bench/reader_classifier.py refits it per fold)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    classes = sorted({it["label"] for it in items} | {NONE})
    k = len(classes)
    y = np.array([classes.index(it["label"]) for it in items])
    groups = np.array([it["group"] for it in items])

    def model_of(xs, ys):
        return LogisticRegression(C=c, max_iter=3000, tol=1e-5).fit(xs, ys)

    def logits(m, xs):
        z = np.full((len(xs), k), -1e4)
        z[:, m.classes_] = m.decision_function(xs)
        return z

    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        raise ValueError("fitting the reader needs descriptions from at least two sources")
    oof = np.zeros((len(items), k))
    for a, b in GroupKFold(n_splits=min(5, n_groups)).split(x, y, groups):
        oof[b] = logits(model_of(x[a], y[a]), x[b])
    t = fit_temperature(oof, y)
    p = softmax(oof / t)
    first = [o["methods"][0] if o["methods"] else None for o in outs]
    ok_reader = np.array([(bool(o["pitfalls"]) and o["pitfalls"][0] in it["want"]) or (not o["pitfalls"] and not it["want"])
                          for o, it in zip(outs, items)])
    fresh = np.array([it["split"] != "public" for it in items])
    certain = {}
    for meth in (*CERTAIN, "meaning"):
        used = np.array([f == meth for f in first])
        m = used & fresh if (used & fresh).sum() >= 10 else used  # too few fresh ones: all of them
        right, n = int(ok_reader[m].sum()), int(m.sum())
        certain[meth] = {"right": right, "n": n, "p": round((right + 1) / (n + 2), 3),
                         "counted_on": "held-out and field" if m is not used else "all"}
    # where the patterns read by meaning and the classifier (out of fold) names another pitfall: how often
    # each is right there -- not the meaning path's overall rate, which is higher than on the cases of doubt
    pat_first = [o["pitfalls"][0] if o["pitfalls"] else NONE for o in outs]
    dis = np.array([f == "meaning" and classes[i] != r for f, i, r in zip(first, p.argmax(1), pat_first)])
    if dis.any():
        right = int(ok_reader[dis].sum())
        certain["meaning_disputed"] = {"right": right, "n": int(dis.sum()),
                                       "p": round((right + 1) / (int(dis.sum()) + 2), 3), "counted_on": "all"}
    rest = np.array([f not in CERTAIN for f in first])
    # each route's answer and raw probability out of fold, then Platt scaling per route (correct or not
    # against the logit of the raw probability): agreement with the patterns, or their silence, changes
    # how often a given classifier probability is right
    raw_top, raw_p, route = [None] * len(items), np.zeros(len(items)), [""] * len(items)
    for i in np.where(rest)[0]:
        cl = [(classes[j], float(p[i, j])) for j in np.argsort(-p[i])]
        route[i], cands = route_of(first[i], pat_first[i], cl, certain)
        raw_top[i], raw_p[i] = cands[0]
    right = np.array([t is not None and ((t == NONE and not it["want"]) or t in it["want"])
                      for t, it in zip(raw_top, items)])
    routes = {}
    for r in ("agree", "nothing", "classifier", "pattern"):
        m = rest & np.array([x == r for x in route])
        if m.sum() >= 15 and 0 < right[m].sum() < m.sum():
            zz = np.log(np.clip(raw_p[m], 1e-6, 1 - 1e-6) / (1 - np.clip(raw_p[m], 1e-6, 1 - 1e-6)))
            cal = LogisticRegression(C=1.0).fit(zz[:, None], right[m].astype(int))
            routes[r] = {"a": round(float(cal.coef_[0, 0]), 4), "b": round(float(cal.intercept_[0]), 4),
                         "n": int(m.sum()), "right": int(right[m].sum())}
    conf = np.array([platt(routes.get(r), q) if r else 0.0 for r, q in zip(route, raw_p)])
    ok_oof_routes = right
    thr = float(np.quantile(conf[rest], abstain_share)) if rest.any() else 0.0
    full = model_of(x, y)
    coef = np.zeros((k, x.shape[1]))
    icpt = np.full(k, -1e4)
    coef[full.classes_] = full.coef_
    icpt[full.classes_] = full.intercept_
    ok_oof = ok_oof_routes
    answered = rest & (conf >= thr)
    return {
        "classes": classes, "coef": np.round(coef, 6).tolist(), "intercept": np.round(icpt, 6).tolist(),
        "temperature": round(t, 4), "abstain_below": round(thr, 4), "certain": certain, "routes": routes,
        "meta": {"items": len(items), "groups": len(set(groups.tolist())),
                 "C": c, "features": "MiniLM whole-text embedding (384, unit length)",
                 "out_of_fold": {"rest_items": int(rest.sum()),
                                 "classifier_top1_on_rest": round(float(ok_oof[rest].mean()), 3),
                                 "patterns_top1_on_rest": round(float(ok_reader[rest].mean()), 3),
                                 "abstained_share_of_rest": round(float(1 - answered.sum() / rest.sum()), 3),
                                 "classifier_top1_on_answered": round(float(ok_oof[answered].mean()), 3)},
                 "how": "python -m rules.reader.fit"},
    }
