import numpy as np
import pytest

from harness.training.embed import cached_encode, encode, unk_rate
from harness.training.models import load_encoder, resolve_model

from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "tweeteval"


def needs_shared():
    return pytest.mark.skipif(not SHARED.exists(),
                              reason=f"{SHARED} is absent: the TweetEval files are not shipped with the project")


def test_sorted_batching_matches_per_text_encoding(tiny_bert):
    tok, model = load_encoder(tiny_bert)
    texts = ["love this", "the phone case broke after a week so bad", "ok", "best blender ever lol fr"]
    a = encode(model, tok, texts, batch_size=2, order="sorted")
    b = np.vstack([encode(model, tok, [t], batch_size=1) for t in texts])
    c = encode(model, tok, texts, batch_size=2, order="fixed")
    assert np.allclose(a, b, atol=1e-5) and np.allclose(a, c, atol=1e-5)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)


def test_cache_hit_returns_the_same_array(tiny_bert):
    tok, model = load_encoder(tiny_bert)
    texts = ["love this", "awful"]
    x1, hit1 = cached_encode(tiny_bert, model, tok, texts, data_key="k")
    x2, hit2 = cached_encode(tiny_bert, model, tok, texts, data_key="k")
    assert (hit1, hit2) == (False, True) and np.array_equal(x1, x2)


def test_packaged_minilm_maps_emoji_to_unk():
    from knowledge import get_kb

    name, path = resolve_model("all-MiniLM-L6-v2", get_kb())
    tok, model = load_encoder(path)
    rate, flags = unk_rate(tok, ["great product 😍😍", "great product"])
    assert flags == [True, False] and rate == 0.5
    x = encode(model, tok, ["great product"])
    assert x.shape == (1, 384)


@needs_shared()
def test_tweeteval_emoji_rows_tokenize_with_unk():
    from harness.training.data import has_emoji, load_text
    from knowledge import get_kb

    d = load_text(SHARED / "sentiment_train.csv")
    rows = [t for t in d.texts if has_emoji(t)]
    tok, _ = load_encoder(resolve_model("all-MiniLM-L6-v2", get_kb())[1])
    rate, _ = unk_rate(tok, rows)
    assert len(rows) > 300 and rate > 0.95
