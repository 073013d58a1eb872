"""A calibrated probability for what a description names, and the choice to abstain.

The pattern reader (``rules.reader.symptoms``) says *which* pitfalls a text names and *how* it read
them (by name, numbers, words or meaning). This module says *how sure* that is, as a probability
measured to be right that often, learned from the labelled corpus of real descriptions
(``tests/rules/data/symptom_corpus_*.yaml``) and stored in ``knowledge/data/reader_model.json``:

- **Certain paths** (a pitfall named outright; numbers read by the extractors; the knowledge base's
  phrasings found word for word): the reader's first pitfall, with the share of fresh descriptions
  (``FRESH``: real ones gathered after the patterns were written) read by that path whose first pitfall
  was right (Laplace-smoothed). No model runs: the word path stays fast.
- **Everything else** (meaning, nothing named): a multinomial logistic regression over the
  text's MiniLM embedding, its logits divided by a temperature fitted out of fold on the fresh
  descriptions (temperature scaling, Guo et al. 2017), then Platt-scaled per route (agreeing with the
  patterns' reading, overruling it, or reading a text they named nothing in). It can name a pitfall the
  patterns missed, overrule or reorder what they read, or abstain. It does not take the patterns' output
  as input: they were written against most of the corpus, so on it they look far surer than on new
  text, and a model stacked on them learns to trust them that much (measured:
  bench/reader_classifier.py). A text less similar to every class's mean embedding than 99% of the
  fresh descriptions is off topic: no guess is made for it.
- **Abstention**: below ``abstain_below`` (the least sure 8% of the fresh descriptions the classifier
  judges, out of fold), the reading says it is not sure, with the candidates and what would settle it,
  instead of a diagnosis built on a guess.

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
# the labelled corpora the model learns from (tests/rules/data/symptom_corpus_<split>.yaml); a batch gathered
# for a first-contact measurement joins them only after that figure is recorded (BENCHMARKS.md)
SPLITS = ("public", "heldout", "field", "batch4", "train2", "batch5", "batch6", "train3", "batch7", "batch8", "batch9", "batch10", "batch11zh", "batch12")
# those gathered from real threads after the patterns were written: what the patterns' precision, the
# temperature and the abstention threshold are measured on (the patterns look far surer on the rest)
FRESH = ("field", "batch4", "train2", "batch5", "batch6", "train3", "batch7", "batch8", "batch9", "batch10", "batch11zh", "batch12")
NONE = "none"
METHODS = ("name", "numbers", "words", "meaning", "word-overlap")
# paths whose reading stands without the classifier, with their precision measured on fresh descriptions:
# a pitfall named outright, numbers read by the extractors (an embedding cannot read 2.3 -> 96), and the
# knowledge base's phrasings found word for word (sentence embeddings blur direction: "the loss shoots up"
# lies near "the loss does not go down"). On 24 fresh descriptions read by words the classifier was right
# on 22 and the words on 19; the difference is within noise, and words keep the reading fast and the
# direction right, so they stand, printed with their fresh precision (``certain["words"]`` of the stored
# model), not the 0.99 of the corpus they were written against.
CERTAIN = ("name", "numbers", "words")
DISPUTABLE = ("meaning", "word-overlap")
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
    centroids: list = field(default_factory=list)  # (k, d): each class's mean embedding, unit length
    off_topic_below: float = 0.0  # a text less similar than this to every class's centroid is about none of them

    @classmethod
    def from_content(cls, d: dict) -> "Model":
        """The model from the content ``fit_arrays`` returns (the stored JSON)."""
        return cls(d["classes"], d["coef"], d["intercept"], float(d["temperature"]), float(d["abstain_below"]),
                   d["certain"], d.get("meta", {}), d.get("routes", {}), d.get("centroids", []),
                   float(d.get("off_topic_below", 0.0)))

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> Optional["Model"]:
        try:
            return cls.from_content(json.loads(path.read_text(encoding="utf-8")))
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
        return embed([reading.read_as or reading.text])[0]

    try:
        return judge_output(reader_output(reading), embedding, model)
    except (SemanticUnavailable, ImportError, OSError):
        return None


def route_of(first: Optional[str], pattern_first: str, cands: list, certain: dict) -> tuple[str, list]:
    """Which answer stands when the patterns did not read the text by name, numbers or words, and by which
    route: ``agree`` (the patterns' reading by meaning is the classifier's first), ``nothing``
    (the patterns named nothing), ``classifier`` (the classifier overrules the patterns' reading) or
    ``pattern`` (the patterns' reading stands: on such disputed cases it was right more often than the
    classifier's probability). Returns (route, candidates, the answer first with its raw probability;
    ``judge_output`` calibrates it and rescales the others)."""
    if first not in DISPUTABLE:
        return "nothing", cands
    if cands[0][0] == pattern_first:
        return "agree", cands
    disputed = certain.get(f"{first}_disputed") or certain.get("meaning_disputed")
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
    e = embedding()
    route, cands = route_of(first, pattern_first, model.probabilities(e), model.certain)
    if route == "nothing" and model.centroids:
        import numpy as np

        near = float(np.max(np.asarray(model.centroids) @ np.asarray(e, dtype=np.float64).ravel()))
        if near < model.off_topic_below:  # unlike every description the model learned from: no guess
            return Judgement(cands[:3], "route:off-topic", True)
    top, p = cands[0]
    q = platt(model.routes.get(route), p)
    rest = sum(x for _, x in cands[1:]) or 1.0
    scale = (1.0 - q) / rest
    if cands[1:] and cands[1][1] * scale > q:  # the others never outrank the answer given
        scale = q / cands[1][1]
    cands = [(top, q)] + [(c, x * scale) for c, x in cands[1:]]
    return Judgement(cands, f"route:{route}", q < model.abstain_below)


# --- fitting


def fit_arrays(items: list[dict], outs: list[dict], x, c: float = 10.0, abstain_share: float = 0.08) -> dict:
    """The model's content from the patterns' outputs and the embeddings already computed
    (``rules.reader.fit`` for the shipped model; bench/reader_classifier.py refits it per fold).

    The classifier learns from every item; what it is trusted with is measured on the fresh ones
    (``FRESH``: real descriptions gathered after the patterns were written), out of fold by source: each
    certain path's precision, the temperature, each route's Platt scaling and the abstention threshold
    (the ``abstain_share`` quantile of the confidence it gives fresh descriptions). Fewer than 30 fresh
    items (a refit on a small sample): all items stand in for them."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    classes = sorted({it["label"] for it in items} | {NONE})
    k = len(classes)
    y = np.array([classes.index(it["label"]) for it in items])
    groups = np.array([it["group"] for it in items])

    def model_of(xs, ys):
        # balanced: the rarer pitfalls (leakage, stopping too early) would otherwise never be named on fresh
        # text (measured on fresh descriptions out of fold: +3 to 5 points of top-1 at every C tried)
        return LogisticRegression(C=c, max_iter=3000, tol=1e-5, class_weight="balanced").fit(xs, ys)

    def logits(m, xs):
        z = np.full((len(xs), k), -1e4)
        z[:, m.classes_] = m.decision_function(xs)
        return z

    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        raise ValueError("fitting the reader needs descriptions from at least two sources")
    oof = np.zeros((len(items), k))
    for a, b in GroupKFold(n_splits=min(10, n_groups)).split(x, y, groups):
        oof[b] = logits(model_of(x[a], y[a]), x[b])
    fresh = np.array([it["split"] in FRESH for it in items])
    if fresh.sum() < 30:
        fresh = np.ones(len(items), bool)
    t = fit_temperature(oof[fresh], y[fresh])
    p = softmax(oof / t)
    first = [o["methods"][0] if o["methods"] else None for o in outs]
    ok_reader = np.array([(bool(o["pitfalls"]) and o["pitfalls"][0] in it["want"]) or (not o["pitfalls"] and not it["want"])
                          for o, it in zip(outs, items)])
    certain = {}
    for meth in (*CERTAIN, *DISPUTABLE):
        used = np.array([f == meth for f in first])
        m = used & fresh if (used & fresh).sum() >= 10 else used  # too few fresh ones: all of them
        right, n = int(ok_reader[m].sum()), int(m.sum())
        certain[meth] = {"right": right, "n": n, "p": round((right + 1) / (n + 2), 3),
                         "counted_on": "fresh" if m is not used else "all"}
    # where the patterns read by meaning and the classifier (out of fold) names another pitfall:
    # how often the patterns are right there -- lower than their overall rate, which includes the easy cases
    pat_first = [o["pitfalls"][0] if o["pitfalls"] else NONE for o in outs]
    for meth in DISPUTABLE:
        dis = np.array([f == meth and classes[i] != r for f, i, r in zip(first, p.argmax(1), pat_first)]) & fresh
        if dis.sum() >= 5:
            right = int(ok_reader[dis].sum())
            certain[f"{meth}_disputed"] = {"right": right, "n": int(dis.sum()),
                                           "p": round((right + 1) / (int(dis.sum()) + 2), 3), "counted_on": "fresh"}
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
        m = rest & fresh & np.array([x == r for x in route])
        if m.sum() >= 15 and 0 < right[m].sum() < m.sum():
            zz = np.log(np.clip(raw_p[m], 1e-6, 1 - 1e-6) / (1 - np.clip(raw_p[m], 1e-6, 1 - 1e-6)))
            cal = LogisticRegression(C=1.0).fit(zz[:, None], right[m].astype(int))
            routes[r] = {"a": round(float(cal.coef_[0, 0]), 4), "b": round(float(cal.intercept_[0]), 4),
                         "n": int(m.sum()), "right": int(right[m].sum())}
    conf = np.array([platt(routes.get(r), q) if r else 0.0 for r, q in zip(route, raw_p)])
    judged = rest & fresh
    thr = float(np.quantile(conf[judged], abstain_share)) if judged.any() else 0.0
    full = model_of(x, y)
    coef = np.zeros((k, x.shape[1]))
    icpt = np.full(k, -1e4)
    coef[full.classes_] = full.coef_
    icpt[full.classes_] = full.intercept_
    answered = judged & (conf >= thr)
    # off topic: less similar to every class's centroid than all but 1% of the fresh descriptions
    cent = np.stack([x[y == j].mean(axis=0) if (y == j).any() else np.zeros(x.shape[1]) for j in range(k)])
    cent = cent / np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    near = (x @ cent.T).max(axis=1)
    off_topic = float(np.quantile(near[fresh], 0.01))
    return {
        "classes": classes, "coef": np.round(coef, 6).tolist(), "intercept": np.round(icpt, 6).tolist(),
        "temperature": round(t, 4), "abstain_below": round(thr, 4), "certain": certain, "routes": routes,
        "centroids": np.round(cent, 5).tolist(), "off_topic_below": round(off_topic, 4),
        "meta": {"items": len(items), "groups": len(set(groups.tolist())), "fresh_items": int(fresh.sum()),
                 "C": c, "class_weight": "balanced", "features": "MiniLM whole-text embedding (384, unit length)",
                 "out_of_fold": {"judged_fresh_items": int(judged.sum()),
                                 "classifier_top1_on_judged": round(float(right[judged].mean()), 3) if judged.any() else None,
                                 "patterns_top1_on_judged": round(float(ok_reader[judged].mean()), 3) if judged.any() else None,
                                 "abstained_share_of_judged": round(float(1 - answered.sum() / max(judged.sum(), 1)), 3),
                                 "classifier_top1_on_answered": round(float(right[answered].mean()), 3) if answered.any() else None},
                 "how": "python -m rules.reader.fit"},
    }
