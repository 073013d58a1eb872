"""Heads on frozen features: the linear probe fit to convergence, and the MLP head.

``linear_probe``: multinomial logistic regression fit by L-BFGS to convergence
(a gradient-norm tolerance, not an epoch count, so the fit does not depend on
the dataset size), over a grid of L2 strengths from strongest to weakest, each
fit warm-started from the previous one. The strength is chosen on the
validation data, and the head is refit at that strength on training plus
validation data (as ``LogisticRegressionCV(refit=True)`` does after its folds).
This is how representation-learning papers report linear probes (Radford et
al. 2021, CLIP, appendix A.3: L-BFGS logistic regression, L2 strength swept on
a validation split; Kornblith et al. 2019, "Do Better ImageNet Models Transfer
Better?").

``mlp_head``: one hidden layer trained with AdamW, early stopping on
validation macro-F1 with the best state restored.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np

# a head with these settings when the knowledge base gives none (knowledge/data/techniques.yaml holds the used ones)
def probe_defaults() -> dict:
    """The probe's settings where a caller gives none: the knowledge base's
    (``feature_extraction.defaults.probe`` in techniques.yaml), the one source of them."""
    from knowledge import get_kb

    return dict(get_kb().techniques["feature_extraction"].defaults["probe"])


@dataclass
class ProbeFit:
    """The fitted probe: ``predict(X)`` gives class indices; the path says how C was chosen."""

    model: object
    C: float
    path: list = field(default_factory=list)  # per C: val log-loss, val macro-F1, iterations, converged
    converged: bool = True

    def predict(self, X) -> np.ndarray:
        return self.model.predict(np.asarray(X, np.float64))

    def predict_proba(self, X) -> np.ndarray:
        return self.model.predict_proba(np.asarray(X, np.float64))


def c_grid(settings: dict) -> np.ndarray:
    """Inverse L2 strengths, log-spaced from ``c_min`` (strongest) to ``c_max`` (weakest)."""
    s = {**probe_defaults(), **(settings or {})}
    return np.logspace(np.log10(float(s["c_min"])), np.log10(float(s["c_max"])), int(s["steps"]))


def _lbfgs(C: float, tol: float, max_iter: int, warm=None):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, solver="lbfgs", tol=tol, max_iter=max_iter, warm_start=True)
    if warm is not None:  # sklearn's warm start reads the previous solution from these attributes
        clf.coef_, clf.intercept_ = warm.coef_.copy(), warm.intercept_.copy()
    return clf


def _fit(clf, X, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(X, y)
    return not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def linear_probe(X_train, y_train, X_val, y_val, n_classes: int, settings: dict | None = None,
                 refit: bool = True) -> ProbeFit:
    """See ``_linear_probe``; BLAS runs on one thread (384-wide features gain nothing from more, and on a
    shared machine spinning BLAS threads made the fit 4x slower: bench/bench_probe.py)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _linear_probe(X_train, y_train, X_val, y_val, n_classes, settings, refit)


def _linear_probe(X_train, y_train, X_val, y_val, n_classes: int, settings: dict | None = None,
                  refit: bool = True) -> ProbeFit:
    """L-BFGS multinomial logistic regression, L2 strength chosen on (X_val, y_val).

    Shapes: X_* (n_examples, n_features); y_* (n_examples,) class indices in
    [0, n_classes). ``settings`` (all optional): ``c_min``, ``c_max``, ``steps``
    (the grid of C = 1/λ), ``tol`` and ``max_iter`` (L-BFGS stops when the
    projected gradient is below ``tol``; ``max_iter`` is a safety net),
    ``select`` (``log_loss``: the validation cross-entropy, smooth even on a
    few dozen validation examples; or ``macro_f1``), ``patience`` (stop the
    sweep after this many weaker strengths without a better validation score).
    Ties go to the stronger regularisation."""
    from sklearn.metrics import f1_score, log_loss

    s = {**probe_defaults(), **(settings or {})}
    Xtr, Xva = np.asarray(X_train, np.float64), np.asarray(X_val, np.float64)
    ytr, yva = np.asarray(y_train), np.asarray(y_val)
    labels = list(range(n_classes))
    tol, max_iter = float(s["tol"]), int(s["max_iter"])
    if s["select"] not in ("log_loss", "macro_f1"):
        raise ValueError(f"probe 'select' must be log_loss or macro_f1, got {s['select']!r}")
    if len(np.unique(ytr)) < 2:
        raise ValueError("the training labels hold a single class: a probe needs at least two")
    best, path, prev, bad = None, [], None, 0
    for C in c_grid(s):
        clf = _lbfgs(float(C), tol, max_iter, prev)
        ok = _fit(clf, Xtr, ytr)
        proba = np.zeros((len(Xva), n_classes))
        proba[:, clf.classes_] = clf.predict_proba(Xva)
        loss = float(log_loss(yva, np.clip(proba, 1e-12, 1.0), labels=labels))
        f1 = float(f1_score(yva, proba.argmax(1), labels=labels, average="macro", zero_division=0))
        path.append({"C": float(C), "val_log_loss": loss, "val_macro_f1": f1,
                     "iterations": int(np.max(clf.n_iter_)), "converged": ok})
        score = -loss if s["select"] == "log_loss" else f1
        if best is None or score > best[0] + 1e-9:
            best, bad = (score, float(C), clf, ok), 0
        else:
            bad += 1
            if bad >= int(s["patience"]):
                break
        prev = clf
    _, C, clf, ok = best
    if refit and len(Xva):
        final = _lbfgs(C, tol, max_iter, clf)
        ok = _fit(final, np.vstack([Xtr, Xva]), np.concatenate([ytr, yva]))
        clf = final
    return ProbeFit(clf, C, path, ok)


def mlp_head(X_train, y_train, X_val, y_val, n_classes: int, seed: int, hyper: dict, hidden: int = 256):
    """(head, curves): a one-hidden-layer head (hidden=0: linear) trained with AdamW, early stopping on
    validation macro-F1, best state restored. Steps per epoch grow with the data: prefer ``linear_probe``
    for a linear head."""
    import torch

    from harness.training.common import scores, seed_everything

    seed_everything(seed)
    d = X_train.shape[1]
    layers = [torch.nn.Dropout(float(hyper["dropout"]))]
    if hidden:
        layers += [torch.nn.Linear(d, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, n_classes)]
    else:
        layers += [torch.nn.Linear(d, n_classes)]
    head = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(head.parameters(), lr=float(hyper["learning_rate"]),
                            weight_decay=float(hyper["weight_decay"]))
    Xt, yt = torch.from_numpy(np.asarray(X_train, np.float32)), torch.tensor(np.asarray(y_train))
    Xv = torch.from_numpy(np.asarray(X_val, np.float32))
    bs = int(hyper["batch_size"])
    epochs = int(hyper["epochs"])
    patience = int(hyper["early_stopping_patience"])  # 0: every epoch runs
    g = torch.Generator().manual_seed(seed)
    best, best_state, bad, curves = -1.0, None, 0, []
    lossf = torch.nn.CrossEntropyLoss()
    classes = list(range(n_classes))
    for epoch in range(epochs):
        head.train()
        perm = torch.randperm(len(Xt), generator=g)
        total = 0.0
        for i in range(0, len(Xt), bs):
            b = perm[i:i + bs]
            opt.zero_grad()
            loss = lossf(head(Xt[b]), yt[b])
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        head.eval()
        with torch.no_grad():
            logits_v = head(Xv)
            val_loss = float(lossf(logits_v, torch.tensor(np.asarray(y_val))))
            pv = logits_v.argmax(1).numpy()
        _, f1v, _ = scores(y_val, pv, classes)
        curves.append({"epoch": epoch + 1, "train_loss": total / len(Xt), "val_loss": val_loss,
                       "val_macro_f1": f1v})
        if f1v > best + 1e-6:
            best, best_state, bad = f1v, copy.deepcopy(head.state_dict()), 0
        else:
            bad += 1
            if patience and bad >= patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    return head, curves
