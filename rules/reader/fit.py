"""Refit the calibrated reader (``rules.reader.learned``) on the labelled corpus and rewrite
``knowledge/data/reader_model.json``:

    python -m rules.reader.fit

It reads every corpus description with the pattern reader (``rules.reader.symptoms``), embeds it
(bench/reader_classifier.py's cache is used when it holds every text) and fits the model
(``learned.fit_arrays``). Kept apart from ``learned`` so that the reader can use the model without the
two modules importing each other.
"""

from __future__ import annotations

import hashlib
import json

from rules.reader.learned import MODEL_PATH, ROOT, corpus_digest, embed, fit_arrays, load_corpus, reader_output


def fit(items: list[dict], kb, c: float = 30.0, abstain_share: float = 0.15, embeddings=None) -> dict:
    """The stored model's content, fitted on ``items``: the classifier's coefficients (all items), its
    temperature from out-of-fold logits (GroupKFold by source), the abstention threshold at the
    ``abstain_share`` quantile of out-of-fold confidence on the descriptions the classifier answers
    (those the patterns read by meaning or not at all), and each certain path's precision counted on
    the held-out and field descriptions only (the patterns were written against the public ones)."""
    from rules.reader.symptoms import read_symptoms

    from rules.reader.numbers import encoder_text

    outs = []
    for it in items:
        try:
            outs.append(reader_output(read_symptoms(it["text"], kb)))
        except Exception:  # noqa: BLE001 -- a refusal names nothing
            outs.append({"pitfalls": [], "methods": []})
    # what the encoder reads: the text, or the English a description in another language is read as
    x = embeddings if embeddings is not None else embed([encoder_text(it["text"], kb) for it in items])
    return fit_arrays(items, outs, x, c=c, abstain_share=abstain_share)


def _cached_embeddings(items: list[dict]):
    """The corpus' embeddings from bench/reader_classifier.py's cache when it holds every text."""
    import numpy as np

    from rules.reader.semantic import get_encoder

    path = ROOT / "bench" / "data" / "reader_classifier" / f"emb_{get_encoder().fingerprint}.npz"
    if not path.exists():
        return None
    z = np.load(path)
    cache = dict(zip(z["keys"].tolist(), z["vecs"]))
    from knowledge import get_kb
    from rules.reader.numbers import encoder_text

    kb = get_kb()
    keys = [hashlib.sha256(encoder_text(it["text"], kb).encode()).hexdigest()[:20] for it in items]
    if not all(k in cache for k in keys):
        return None
    v = np.stack([cache[k] for k in keys]).astype(np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def main() -> int:
    from knowledge import get_kb
    from knowledge.writing import write_atomic

    items = load_corpus()
    content = fit(items, get_kb(), embeddings=_cached_embeddings(items))
    content["meta"]["corpus"] = corpus_digest()
    write_atomic(MODEL_PATH, json.dumps(content, indent=0, separators=(",", ":")) + "\n")
    meta = content["meta"]
    print(f"{MODEL_PATH}: {meta['items']} items from {meta['groups']} sources; T = {content['temperature']}, "
          f"abstain below {content['abstain_below']}; paths {content['certain']}; out of fold {meta['out_of_fold']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
