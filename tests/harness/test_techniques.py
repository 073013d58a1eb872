import numpy as np
import pytest
import torch

from harness.training.data import make_reviews, stratified_split
from harness.training.models import ModelError, encoder_layers, load_encoder, resolve_model
from harness.training.techniques import length_batches, run_head, run_tfidf, run_transformer


@pytest.fixture(scope="module")
def splits():
    d = make_reviews(120, seed=0)
    tr, te = stratified_split(d, 0.25, seed=0)
    tr, va = stratified_split(tr, 0.25, seed=0)
    return tr, va, te


def test_length_batches_cover_everything_once_and_group_lengths():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    bs = length_batches(lengths, 3, seed=0)
    flat = sorted(int(i) for b in bs for i in b)
    assert flat == list(range(7))
    for b in bs:  # each batch holds neighbours in length order
        ls = sorted(lengths[i] for i in b)
        assert ls[-1] - ls[0] <= 4
    assert [list(b) for b in length_batches(lengths, 3, 0)] == [list(b) for b in bs]


def test_resolve_model_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a model folder"):
        resolve_model(str(tmp_path / "empty"))
    from knowledge import get_kb

    with pytest.raises(ModelError, match="cannot be downloaded here"):
        resolve_model("bert-base", get_kb())
    with pytest.raises(ModelError, match="Nearest catalog names"):
        resolve_model("bert-bsae", get_kb())


def test_fine_tuning_freezes_the_first_layers(tiny_bert, splits, recipe):
    tr, va, te = splits
    _, enc = load_encoder(tiny_bert)
    before = [p.detach().clone() for p in encoder_layers(enc)[0].parameters()]
    hyper = recipe("fine_tuning", learning_rate=1e-3, epochs=2, frozen_layers=1, batch_size=16, dropout=0.0)
    res, model, _ = run_transformer(tiny_bert, tr, va, te, 0, hyper, technique="fine_tuning")
    first = list(encoder_layers(model.encoder)[0].parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, first))
    assert 0 <= res.accuracy <= 1 and len(res.curves) >= 1 and len(res.predictions) == len(te)
    assert res.extra["frozen_layers"] == 1
    assert res.trainable_params < sum(p.numel() for p in model.parameters())


def test_same_seed_same_metrics_on_cpu(tiny_bert, splits, recipe):
    tr, va, te = splits
    hyper = recipe("fine_tuning", learning_rate=1e-3, epochs=1, frozen_layers=0, batch_size=16)
    a, _, _ = run_transformer(tiny_bert, tr, va, te, 3, hyper, technique="fine_tuning")
    b, _, _ = run_transformer(tiny_bert, tr, va, te, 3, hyper, technique="fine_tuning")
    assert a.predictions == b.predictions and a.accuracy == b.accuracy


def test_lora_trains_only_adapters_and_head(tiny_bert, splits, recipe):
    tr, va, te = splits
    hyper = recipe("lora", learning_rate=5e-3, epochs=1, batch_size=16,
                   lora={"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]})
    res, model, _ = run_transformer(tiny_bert, tr, va, te, 0, hyper, technique="lora")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or "head" in n for n in names)
    assert res.trainable_params < 0.5 * sum(p.numel() for p in model.parameters())


def test_gradual_unfreezing_and_discriminative_lr_run(tiny_bert, splits, recipe):
    tr, va, te = splits
    hyper = recipe("fine_tuning", learning_rate=1e-3, epochs=2, frozen_layers=0, unfreeze="gradual",
                   discriminative_lr_decay=2.6, batch_size=16, l2_sp=0.01, early_stopping_patience=0)
    res, _, _ = run_transformer(tiny_bert, tr, va, te, 0, hyper, technique="fine_tuning")
    assert len(res.curves) == 2


def test_from_scratch_and_head_and_baseline(tiny_bert, splits, recipe):
    tr, va, te = splits
    res, _, _ = run_transformer(tiny_bert, tr, va, te, 0, recipe("from_scratch", epochs=1, learning_rate=1e-3),
                                technique="from_scratch")
    assert res.technique == "from_scratch"
    rng = np.random.default_rng(0)
    X = {n: rng.normal(size=(len(d), 8)).astype(np.float32) for n, d in (("tr", tr), ("va", va), ("te", te))}
    h = run_head(X["tr"], tr.y, X["va"], va.y, X["te"], te.y, tr.classes, 0, recipe("feature_extraction", epochs=3))
    assert 0 <= h.accuracy <= 1 and h.trainable_params == 8 * 3 + 3
    base = run_tfidf(tr, va, te, 0)
    assert base.accuracy > 0.5  # the built-in reviews are learnable from words alone
