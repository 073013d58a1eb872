"""The harness's fix carriers: preprocessing, augmentation, emoji tokens, stages."""

from __future__ import annotations

import torch

from harness.training import adapt
from harness.training.data import TextData, make_reviews, stratified_split
from harness.training.models import load_encoder, load_tokenizer, resolve_model
from harness.training.techniques import run_transformer
from knowledge import get_kb


def test_demojize_and_normalize():
    assert adapt.demojize("love it 😍") == "love it smiling face with heart-eyes"
    assert adapt.normalize("@bob  see https://x.y/z ｆｕｌｌ") == "@user see http full"


def test_augment_adds_class_emoji_to_copies_without_emoji():
    d = TextData(["good 😊", "great", "bad 😡", "awful"], ["pos", "pos", "neg", "neg"])
    a = adapt.augment(d, ["emoji"], seed=0)
    assert len(a) == 6 and a.texts[:4] == d.texts
    extra = dict(zip(a.texts[4:], a.labels[4:]))
    assert any(t.startswith("great ") and "😊" in t for t in extra) and extra.get(
        next(t for t in extra if t.startswith("awful"))) == "neg"
    assert "😡" in next(t for t in extra if t.startswith("awful"))
    s = adapt.augment(d, ["standard"], seed=0)
    assert len(s) == 8 and s.labels[4:] == d.labels


def test_emoji_tokens_are_added_with_name_initialised_embeddings():
    path = resolve_model("all-MiniLM-L6-v2", get_kb())[1]
    tok, enc = load_encoder(path)
    n = len(tok)
    added = adapt.add_emoji_tokens(tok, enc, ["great 😍", "bad 😡", "plain text"])
    assert sorted(added) == sorted(["😍", "😡"]) and len(tok) == n + 2
    assert tok.unk_token_id not in tok("great 😍")["input_ids"]
    emb = enc.get_input_embeddings().weight
    assert emb.shape[0] == n + 2 and torch.linalg.norm(emb[n]) > 0
    assert adapt.add_emoji_tokens(tok, enc, ["great 😍"]) == []  # already known


def test_fine_tuning_with_added_tokens_and_an_mlm_stage(tiny_bert, recipe):
    d = make_reviews(90, seed=0)
    tr, te = stratified_split(d, 0.3, seed=0)
    tok = load_tokenizer(tiny_bert)
    tok.add_tokens(["😍"])
    state = adapt.mlm_stage(tiny_bert, tr.texts, tok, epochs=1)
    res, model, _ = run_transformer(tiny_bert, tr, te, te, 0, recipe("fine_tuning", epochs=1, learning_rate=1e-3),
                                    technique="fine_tuning", tokenizer=tok, encoder_state=state)
    assert model.encoder.get_input_embeddings().weight.shape[0] == len(tok)
    assert 0 <= res.accuracy <= 1


def test_can_carry():
    assert adapt.can_carry([{"field": "preprocessing", "to": ["demojize"]}])
    assert adapt.can_carry([{"field": "learning_rate", "to": 1e-5}])
    assert not adapt.can_carry([{"field": "stages", "to": ["target_subset_first"]}])
