"""all-MiniLM-L6-v2 features of TweetEval sentiment (train pool and validation file), cached on disk.

Shared by the probe bench and the TweetEval probe test; the embeddings are
computed once (harness.training.embed's cache) and reused."""

from __future__ import annotations

from _common import TWEETEVAL  # noqa: E402  (puts the project on sys.path)


def tweet_features(names=("sentiment_train.csv", "sentiment_val.csv")):
    """{name: (TextData, X)} with X of shape (n_texts, 384)."""
    from harness.training.data import load_text
    from harness.training.embed import cached_encode
    from harness.training.models import load_encoder, resolve_model
    from knowledge import get_kb

    path = resolve_model("all-MiniLM-L6-v2", get_kb())[1]
    tok, model = load_encoder(path)
    out = {}
    classes = None
    for name in names:
        d = load_text(TWEETEVAL / name, classes=classes)
        classes = classes or d.classes
        X, _ = cached_encode(path, model, tok, d.texts, data_key=d.fingerprint(), max_length=128)
        out[name] = (d, X)
    return out


if __name__ == "__main__":
    import time

    t = time.perf_counter()
    f = tweet_features()
    print({k: v[1].shape for k, v in f.items()}, f"{time.perf_counter() - t:.1f} s")
