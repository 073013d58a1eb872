"""Fixtures for harness tests: a tiny random BERT saved to a folder (the real loading path)."""

from __future__ import annotations

import os

import pytest

WORDS = ("love great awesome happy best good broke worst awful bad junk waste arrived box blue "
         "average ok works this the is a it of and phone case blender headphones lamp keyboard "
         "so well came today tried about after week use lol fr meh eh lit fire trash mid").split()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer BertModel with a word-level vocabulary, saved like a Hugging Face folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    d = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    assert len(tok) == len(vocab) and tok.unk_token_id not in tok("love this phone case")["input_ids"]
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(d)
    return str(d)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLEXPERT_CACHE_DIR", str(tmp_path / "cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

