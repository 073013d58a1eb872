"""The feature-extraction head: the linear probe converges and picks its L2 strength on validation.

The TweetEval test compares it with scikit-learn's LogisticRegressionCV on all-MiniLM-L6-v2
features of real tweets; it skips when ../shared (or $TLEXPERT_TWEETEVAL) is absent."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from harness.training.heads import c_grid, linear_probe, mlp_head
from harness.training.techniques import run_head

TWEETEVAL = Path(os.environ.get("TLEXPERT_TWEETEVAL")
                 or Path(__file__).resolve().parents[3] / "shared" / "data" / "tweeteval")
REAL_CACHE = os.environ.get("TLEXPERT_CACHE_DIR")  # before the harness fixture points it at a temporary folder
OLD_RECIPE = {"learning_rate": 3e-3, "weight_decay": 1e-4, "dropout": 0.1, "epochs": 30, "batch_size": 256,
              "early_stopping_patience": 5}  # the AdamW linear head's recipe before the probe


def sentence_like(n, seed, d=384, k=3, sep=0.08):
    """Unit-norm features with a weak class signal, like mean-pooled sentence embeddings."""
    means = np.random.default_rng(0).normal(size=(k, d))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = means[y] * sep + rng.normal(size=(n, d)) / np.sqrt(d)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), y


@pytest.fixture(scope="module")
def small():
    return sentence_like(240, 1), sentence_like(60, 2), sentence_like(2000, 3)


def test_probe_converges_where_the_old_head_did_not(small):
    import torch

    (Xtr, ytr), (Xva, yva), (Xte, yte) = small
    fit = linear_probe(Xtr, ytr, Xva, yva, 3)
    assert fit.converged and all(p["converged"] for p in fit.path)
    probe_acc = float((fit.predict(Xte) == yte).mean())
    # the old recipe: 30 epochs of one batch of 256 = 30 AdamW steps at 3e-3, whatever the data size
    head, curves = mlp_head(Xtr, ytr, Xva, yva, 3, 0, OLD_RECIPE, hidden=0)
    with torch.no_grad():
        old_acc = float((head(torch.from_numpy(Xte)).argmax(1).numpy() == yte).mean())
    assert old_acc < 0.45 and probe_acc > 0.55, (old_acc, probe_acc)  # chance is 1/3
    # converged: the refit solution is the minimiser a tight, cold-started L-BFGS finds
    from sklearn.linear_model import LogisticRegression

    ref = LogisticRegression(C=fit.C, tol=1e-10, max_iter=10000).fit(np.vstack([Xtr, Xva]), np.r_[ytr, yva])
    assert np.allclose(fit.model.coef_, ref.coef_, atol=2e-3 * np.abs(ref.coef_).max())
    assert (fit.predict(Xte) == ref.predict(Xte)).mean() > 0.995


def test_probe_chooses_its_strength_on_validation_not_training(small):
    (Xtr, ytr), (Xva, yva), _ = small
    fit = linear_probe(Xtr, ytr, Xva, yva, 3)
    losses = [p["val_log_loss"] for p in fit.path]
    assert fit.C == fit.path[int(np.argmin(losses))]["C"]
    # training loss alone would pick the weakest strength; validation does not here
    assert fit.C < c_grid({})[-1]
    assert len(fit.path) < len(c_grid({}))  # the sweep stops once validation keeps getting worse


def test_probe_does_not_depend_on_a_step_budget(small):
    (Xtr, ytr), (Xva, yva), _ = small
    # 4x the data: same grid, still converged, no epoch count to raise
    X4 = np.vstack([sentence_like(240, s)[0] for s in range(10, 14)])
    y4 = np.concatenate([sentence_like(240, s)[1] for s in range(10, 14)])
    fit = linear_probe(X4, y4, Xva, yva, 3)
    assert fit.converged


def test_run_head_linear_uses_the_probe_and_ignores_a_learning_rate(small, recipe):
    (Xtr, ytr), (Xva, yva), (Xte, yte) = small
    a = run_head(Xtr, ytr, Xva, yva, Xte, yte, ["a", "b", "c"], 0, {"learning_rate": 5e-5, "epochs": 3})
    b = run_head(Xtr, ytr, Xva, yva, Xte, yte, ["a", "b", "c"], 1, {})
    assert a.predictions == b.predictions  # a fine-tuning recipe has nothing to act on
    assert a.extra["head"] == "linear" and a.extra["converged"] and a.curves == []
    mlp = run_head(Xtr, ytr, Xva, yva, Xte, yte, ["a", "b", "c"], 0, recipe("feature_extraction", epochs=3), hidden=16)
    assert mlp.extra["head"] == "mlp" and len(mlp.curves) <= 3


def test_probe_rejects_bad_settings(small):
    (Xtr, ytr), (Xva, yva), _ = small
    with pytest.raises(ValueError, match="select"):
        linear_probe(Xtr, ytr, Xva, yva, 3, {"select": "accuracy"})
    with pytest.raises(ValueError, match="single class"):
        linear_probe(Xtr, np.zeros_like(ytr), Xva, yva, 3)


@pytest.mark.slow
@pytest.mark.skipif(not TWEETEVAL.exists(), reason=f"{TWEETEVAL} is absent (TweetEval files are not shipped)")
@pytest.mark.parametrize("n", [300, 1000])
def test_probe_matches_logistic_regression_cv_on_tweets(n, monkeypatch):
    """Same features, same N labeled tweets: the probe (20% of them for validation, then refit)
    scores within a point of LogisticRegressionCV (5-fold CV) on sentiment_val.csv rows, over 2 draws
    (bench/bench_probe.py: every size from 100 to 6,000, 3 draws)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import train_test_split

    from harness.training.data import load_text
    from harness.training.embed import cached_encode
    from harness.training.models import load_encoder, resolve_model
    from knowledge import get_kb

    # the embeddings of 8,000 tweets are worth keeping: the user's cache, as bench/bench_probe.py uses
    if REAL_CACHE:
        monkeypatch.setenv("TLEXPERT_CACHE_DIR", REAL_CACHE)
    else:
        monkeypatch.delenv("TLEXPERT_CACHE_DIR", raising=False)
    kb = get_kb()
    path = resolve_model("all-MiniLM-L6-v2", kb)[1]
    tok, model = load_encoder(path)
    pool = load_text(TWEETEVAL / "sentiment_train.csv")
    test = load_text(TWEETEVAL / "sentiment_val.csv", classes=pool.classes)
    # draws from the first 2,500 training tweets, scored on the first 1,000 validation tweets: 3,500
    # tweets to embed on a fresh machine instead of 8,000 (bench/bench_probe.py uses them all)
    pool_texts, test_texts = pool.texts[:2500], test.texts[:1000]
    Xp, _ = cached_encode(path, model, tok, pool_texts, data_key=f"{pool.fingerprint()}[:2500]")
    Xt, _ = cached_encode(path, model, tok, test_texts, data_key=f"{test.fingerprint()}[:1000]")
    yp, yt = np.asarray(pool.y[:2500]), np.asarray(test.y[:1000])
    settings = kb.techniques["feature_extraction"].defaults["probe"]
    ours, theirs = [], []
    for r in range(2):
        idx = np.random.default_rng(r).permutation(len(yp))[:n]
        itr, iva = train_test_split(np.arange(n), test_size=0.2, random_state=r, stratify=yp[idx])
        fit = linear_probe(Xp[idx][itr], yp[idx][itr], Xp[idx][iva], yp[idx][iva], 3, settings)
        ours.append((fit.predict(Xt) == yt).mean())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cv = LogisticRegressionCV(max_iter=1000, random_state=r).fit(Xp[idx], yp[idx])
        theirs.append((cv.predict(Xt) == yt).mean())
    assert np.mean(ours) >= np.mean(theirs) - 0.01, (ours, theirs)
