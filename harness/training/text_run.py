"""The text-classification pipeline of a run: data, the encoder, each technique x seed, and the
text probes (domain shift by slices and unknown tokens, forgetting, drift)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from harness.training.registry import technique_spec
from harness.training.runconfig import ModalityRun, RunConfig, SeedStore, config_key, plan_hypers
from rules.contract import DATA_LEVEL


@dataclass
class TextSession:
    """What every technique of one text run shares: the encoder, the splits (after preprocessing and
    augmentation), the frozen encoder's embeddings of them, the per-technique hyperparameters and the
    retention probe's data. The registry's text implementations take it, a technique and a seed."""

    model_path: str
    tokenizer: Any
    hypers: dict
    device: str
    max_length: int
    progress: Callable
    classes: list
    train: Any
    val: Any
    test: Any
    features: tuple               # the frozen encoder's (train, validation, test) embeddings
    encoder_state: Optional[dict] = None  # the encoder after any extra stage (MLM, intermediate task, tokens)
    retention: Optional[tuple] = None     # (retention train, retention test, probe accuracy before)
    probe: dict = field(default_factory=dict)  # the linear probe is deterministic: one fit serves every seed


def train_head(s: TextSession, technique: str, seed: int) -> dict:
    """A head (a linear probe, or an MLP) on the frozen encoder's embeddings."""
    from harness.training.techniques import run_head

    mlp = s.hypers[technique]["head"] == "mlp"
    if not mlp and s.probe:
        return {**s.probe, "seed": seed, "seconds": 0.0, "extra": {**s.probe["extra"], "fit_of_seed": s.probe["seed"]}}
    X_tr, X_va, X_te = s.features
    rec = run_head(X_tr, s.train.y, X_va, s.val.y, X_te, s.test.y, s.classes, seed, s.hypers[technique],
                   hidden=256 if mlp else 0).to_dict()
    if not mlp:
        s.probe.update(rec)
    return rec


def train_network(s: TextSession, technique: str, seed: int) -> dict:
    """The encoder and a head trained together (all weights, adapters, or from random weights), with the
    drift of its representation (CKA to the frozen encoder) and its retention probe."""
    from harness.evaluation import probes, stats
    from harness.training.embed import encode
    from harness.training.techniques import adapted_encoder, run_transformer

    h = s.hypers[technique]
    res, model, _ = run_transformer(s.model_path, s.train, s.val, s.test, seed, h, technique=technique,
                                    device=s.device, max_length=s.max_length, progress=s.progress,
                                    lora_targets=(h["lora"] or {}).get("target_modules"),
                                    tokenizer=s.tokenizer, encoder_state=s.encoder_state)
    rec = res.to_dict()
    enc = adapted_encoder(model)

    def embed(texts):
        return encode(enc, s.tokenizer, texts, max_length=s.max_length, device=s.device)

    rec["cka_to_pretrained"] = stats.linear_cka(s.features[2], embed(s.test.texts))
    if s.retention is not None:
        r_tr, r_te, _ = s.retention
        rec["retention_after"] = probes.linear_probe_accuracy(embed(r_tr.texts), r_tr.y, embed(r_te.texts), r_te.y)
    return rec


def load_data(cfg: RunConfig, evaluation):
    """(train, validation, test): the given files, and the sets not given held out of the training data
    as the plan's protocol states (``evaluation``: its shares and cap), stratified by class."""
    from harness.training.common import held_out
    from harness.training.data import check_trainable, load_text, make_reviews, stratified_split

    if cfg.train:
        train = load_text(cfg.train, cfg.text_column, cfg.label_column)
        check_trainable(train, "--train")
        val = load_text(cfg.validation, cfg.text_column, cfg.label_column, train.classes) if cfg.validation else None
        test = load_text(cfg.test, cfg.text_column, cfg.label_column, train.classes) if cfg.test else None
    else:
        train, val, test = make_reviews(cfg.builtin_size, seed=0), None, None
    return held_out(train, val, test, evaluation, stratified_split)


def text_runs(plan, cfg, kb, out, device, progress, adaptations: list) -> ModalityRun:
    from harness.evaluation import probes
    from harness.training.data import SLICES, check_trainable, load_text, stratified_split
    from harness.training.embed import cached_encode, unk_rate
    from harness.training.models import encoder_layers, load_encoder, resolve_model
    from harness.training.techniques import run_tfidf

    from harness.training import adapt

    if not cfg.model and plan.model is None:
        from harness.training.models import ModelError

        raise ModelError("The plan names no model (the catalog holds none for its task): give one with --model.")
    model_name, model_path = resolve_model(cfg.model or plan.model.id, kb)
    train, val, test = load_data(cfg, plan.evaluation)
    progress(f"data: {len(train)} train / {len(val)} validation / {len(test)} test, classes {train.classes}")
    tok, base = load_encoder(model_path, device)
    n_layers = len(encoder_layers(base))
    hypers = plan_hypers(plan, cfg.techniques, n_layers, adaptations)
    # data-level settings of the plan (fixes change them): preprocessing, augmentation, tokens, stages
    level = {k: getattr(plan.hyperparameters, k) for k in DATA_LEVEL}
    alpha = plan.evaluation.alpha
    prep = list(level["preprocessing"])
    raw_test_texts = list(test.texts)  # slices are defined on the inputs as given, before any rewriting
    train, val, test = (adapt.preprocess(d, prep) for d in (train, val, test))
    train_fit = adapt.augment(train, [a for a in level["augmentation"] if a in ("standard", "emoji")], 0)
    encoder_state, variant = None, []
    if level["tokenizer_extra_tokens"] == "emoji":
        added = adapt.add_emoji_tokens(tok, base, train_fit.texts)
        progress(f"tokenizer: added {len(added)} emoji tokens, embeddings initialised from their names")
        encoder_state, variant = base.state_dict(), [f"emoji-tokens:{len(added)}"]
    stages = list(level["stages"])
    stage_h = plan_hypers(plan, ["fine_tuning"], n_layers, [])["fine_tuning"]
    stage_kb = kb.techniques["intermediate_task"].defaults
    if "mlm_in_domain" in stages:
        texts = list(train_fit.texts)
        if cfg.unlabeled_data:
            texts += load_text(cfg.unlabeled_data, cfg.text_column, cfg.label_column).texts
        encoder_state = adapt.mlm_stage(model_path, texts, tok, device=device, max_length=cfg.max_length,
                                        progress=progress, epochs=stage_kb["stage_epochs"],
                                        lr=stage_kb["mlm_learning_rate"])
        base.load_state_dict(encoder_state, strict=False)
        variant.append(f"mlm:{len(texts)}")
    if "intermediate_informal" in stages:
        if not cfg.intermediate_data:
            from harness.training.data import DataError

            raise DataError("The plan asks for an intermediate informal-text stage: give its labeled data "
                            "with --intermediate-data FILE (e.g. a larger set of tweets).")
        inter = adapt.preprocess(load_text(cfg.intermediate_data, cfg.text_column, cfg.label_column), prep)
        check_trainable(inter, "--intermediate-data")
        encoder_state = adapt.intermediate_stage(model_path, inter, tok, stage_h, device=device,
                                                 max_length=cfg.max_length, progress=progress,
                                                 encoder_state=encoder_state, epochs=stage_kb["stage_epochs"])
        base.load_state_dict(encoder_state)
        variant.append(f"intermediate:{inter.fingerprint()}")
    variant_key = ";".join(variant)
    key = config_key(cfg, model_path, [train_fit.fingerprint(), val.fingerprint(), test.fingerprint(),
                                       json.dumps(level, sort_keys=True), variant_key], hypers,
                     plan.evaluation.retention_data)
    store = SeedStore(out, key, progress)
    seeds = list(range(plan.evaluation.seeds))

    def emb(data, name):
        with progress.bar(len(data), f"embedding {name}") as bar:
            X, hit = cached_encode(model_path, base, tok, data.texts, data_key=data.fingerprint(),
                                   max_length=cfg.max_length, device=device, use_cache=cfg.use_cache,
                                   progress=bar.update, variant=variant_key)
        progress(f"embeddings {name}: {len(data)} texts ({'cache' if hit else 'computed'})")
        return X

    t_emb = time.perf_counter()
    X_tr, X_va, X_te = emb(train_fit, "train"), emb(val, "validation"), emb(test, "test")
    embed_seconds = time.perf_counter() - t_emb
    retention = None
    if plan.evaluation.retention_data and "forgetting" in plan.evaluation.probes:
        r = adapt.preprocess(load_text(plan.evaluation.retention_data, cfg.text_column, cfg.label_column), prep)
        check_trainable(r, "--retention-data")
        r_tr, r_te = stratified_split(r, 0.3, seed=0)
        R_tr, R_te = emb(r_tr, "retention train"), emb(r_te, "retention test")
        retention = (r_tr, r_te, probes.linear_probe_accuracy(R_tr, r_tr.y, R_te, r_te.y))

    session = TextSession(model_path=model_path, tokenizer=tok, hypers=hypers, device=device,
                          max_length=cfg.max_length, progress=progress, classes=train.classes,
                          train=train_fit, val=val, test=test, features=(X_tr, X_va, X_te),
                          encoder_state=encoder_state, retention=retention)
    with progress.bar(len(seeds) * (len(cfg.techniques) + cfg.baseline), "seeds") as bar:
        results = {t: [store.run(t, s, lambda t=t, s=s, f=technique_spec(t).implementation("text"): f(session, t, s),
                                 bar) for s in seeds]
                   for t in cfg.techniques}
        baseline = ([store.run("tfidf_baseline", s, lambda s=s: run_tfidf(train_fit, val, test, s).to_dict(), bar)
                     for s in seeds] if cfg.baseline else [])

    y_te = np.asarray(test.y)
    tests = {}
    ft = [t for t in cfg.techniques if technique_spec(t).changes_backbone]
    if retention is not None:
        for t in ft:
            for name, res in probes.forgetting_tests(retention[2], [r["retention_after"] for r in results[t]],
                                                     [], alpha).items():
                tests[f"{name}.{t}"] = res
    mask = np.array([SLICES["emoji"](t) for t in raw_test_texts])
    tests.update(probes.slice_gap_tests(
        {t: [np.asarray(r["predictions"]) == y_te for r in rs] for t, rs in results.items()}, mask, alpha))
    tests.update(probes.two_sample_test(X_tr, X_te, alpha))
    rate, _ = unk_rate(tok, test.texts, cfg.max_length)
    return ModalityRun(
        model_name=model_name, model_path=model_path, hypers=hypers, key=key, classes=train.classes,
        sizes={"train": len(train_fit), "validation": len(val), "test": len(test)},
        results=results, baseline=baseline, tests=tests, y_test=y_te, slice_mask=mask,
        data_level={**level, "variant": variant_key}, layers=n_layers,
        measurements={"unk_rate_test": rate, "emoji_rows_test": int(mask.sum()),
                      "cka_to_pretrained": [r["cka_to_pretrained"] for t in ft for r in results[t]],
                      "retention_before": retention[2] if retention else None},
        embed_seconds=embed_seconds)
