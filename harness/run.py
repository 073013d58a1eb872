"""Carry out a plan on real data: techniques x seeds, probes, tests, diagnoses.

``execute(plan, cfg, kb)`` writes a run directory:

- ``seeds/<technique>-<seed>.json``: one finished (technique, seed), written
  atomically; a run started again with the same arguments reuses them (resume);
- ``run.json``: plan, resolved config, versions, device, per-seed metrics,
  tests, symptoms, diagnoses (written atomically, last);
- ``report.md`` and PNG plots.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

TRANSFORMER_TECHNIQUES = ("fine_tuning", "lora", "from_scratch")
KNOWN_TECHNIQUES = ("feature_extraction", *TRANSFORMER_TECHNIQUES)


@dataclass
class RunConfig:
    techniques: list
    seeds: int = 5
    model: str = "all-MiniLM-L6-v2"
    train: Optional[str] = None
    validation: Optional[str] = None
    test: Optional[str] = None
    text_column: str = "text"
    label_column: str = "label"
    retention_data: Optional[str] = None
    device: str = "auto"
    out: Optional[str] = None
    max_length: int = 128
    alpha: float = 0.05
    overrides: dict = field(default_factory=dict)
    builtin_size: int = 1500
    baseline: bool = True
    use_cache: bool = True


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default), encoding="utf-8")
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def versions() -> dict:
    import peft
    import sklearn
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__}


def technique_hyper(kb, plan: dict, technique: str, overrides: dict, model_layers: int) -> dict:
    """Hyperparameters for ``technique``: the plan's if it chose it, else the knowledge defaults."""
    from rules.tuning import resolve

    family = plan["architecture"]["family"]
    size = "medium"
    for t in plan.get("trace", []):
        for c in t["concluded"]:
            if c.startswith("SizeClass("):
                size = c.split("value=")[1].rstrip(")")
    hyper = {k: resolve(v, family, size) for k, v in kb.techniques[technique].defaults.items()}
    if plan["technique"]["choice"] == technique:
        hyper.update({k: v for k, v in plan["hyperparameters"].items() if v is not None})
        plan_layers = plan["candidates"][0]["layers"] if plan["candidates"] else 0
        fl = hyper.get("frozen_layers")
        if isinstance(fl, int) and plan_layers and model_layers and plan_layers != model_layers:
            hyper["frozen_layers"] = round(fl / plan_layers * model_layers)
    elif technique == "fine_tuning":
        hyper.setdefault("frozen_layers", 0)
    if technique == "lora" and "lora" not in hyper:
        hyper["lora"] = dict(kb.techniques["lora"].defaults.get("lora", {}))
    hyper.update({k: v for k, v in overrides.items() if v is not None})
    return hyper


def load_data(cfg: RunConfig):
    from harness.data import check_trainable, load_text, make_reviews, stratified_split

    if cfg.train:
        train = load_text(cfg.train, cfg.text_column, cfg.label_column)
        check_trainable(train, "--train")
        val = load_text(cfg.validation, cfg.text_column, cfg.label_column, train.classes) if cfg.validation else None
        test = load_text(cfg.test, cfg.text_column, cfg.label_column, train.classes) if cfg.test else None
        if test is None:
            train, test = stratified_split(train, 0.2, seed=0)
        if val is None:
            train, val = stratified_split(train, 0.2, seed=0)
    else:
        data = make_reviews(cfg.builtin_size, seed=0)
        train, test = stratified_split(data, 0.2, seed=0)
        train, val = stratified_split(train, 0.25, seed=0)
    return train, val, test


def config_key(cfg: RunConfig, model_path: str, data_keys: list[str], hypers: dict) -> str:
    blob = json.dumps([sorted(cfg.techniques), model_path, data_keys, hypers, cfg.max_length,
                       cfg.retention_data], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def execute(plan: dict, cfg: RunConfig, kb, progress: Callable[[str], None] = lambda s: None) -> dict:
    """Run ``plan`` as ``cfg`` says; returns the run record (also written to run.json)."""
    import torch

    from harness import probes, stats
    from harness.data import SLICES, check_trainable, load_text, stratified_split
    from harness.embed import cached_encode, unk_rate
    from harness.models import encoder_layers, load_encoder, pick_device, resolve_model
    from harness.techniques import adapted_encoder, run_head, run_tfidf, run_transformer

    t_start = time.perf_counter()
    out = Path(cfg.out)
    (out / "seeds").mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    model_name, model_path = resolve_model(cfg.model, kb)
    train, val, test = load_data(cfg)
    progress(f"data: {len(train)} train / {len(val)} validation / {len(test)} test, classes {train.classes}")
    tok, base = load_encoder(model_path, device)
    n_layers = len(encoder_layers(base))
    hypers = {t: technique_hyper(kb, plan, t, cfg.overrides, n_layers) for t in cfg.techniques}
    key = config_key(cfg, model_path, [train.fingerprint(), val.fingerprint(), test.fingerprint()], hypers)
    seeds = list(range(cfg.seeds))

    def seed_file(tech, seed):
        return out / "seeds" / f"{tech}-{seed}.json"

    def done(tech, seed):
        f = seed_file(tech, seed)
        if f.exists():
            try:
                rec = json.loads(f.read_text())
                if rec.get("config_key") == key:
                    return rec
            except (OSError, json.JSONDecodeError):
                pass
        return None

    def save(tech, seed, rec):
        rec["config_key"] = key
        write_json_atomic(seed_file(tech, seed), rec)

    # embeddings of the frozen encoder: features for feature extraction, the
    # "before" of the forgetting probe, and the two-sample test
    def emb(data, name):
        X, hit = cached_encode(model_path, base, tok, data.texts, data_key=data.fingerprint(),
                               max_length=cfg.max_length, device=device, use_cache=cfg.use_cache)
        progress(f"embeddings {name}: {len(data)} texts ({'cache' if hit else 'computed'})")
        return X

    t_emb = time.perf_counter()
    X_tr, X_va, X_te = emb(train, "train"), emb(val, "validation"), emb(test, "test")
    embed_seconds = time.perf_counter() - t_emb

    retention = None
    if cfg.retention_data:
        r = load_text(cfg.retention_data, cfg.text_column, cfg.label_column)
        check_trainable(r, "--retention-data")
        r_tr, r_te = stratified_split(r, 0.3, seed=0)
        R_tr, R_te = emb(r_tr, "retention train"), emb(r_te, "retention test")
        before = probes.linear_probe_accuracy(R_tr, r_tr.y, R_te, r_te.y)
        retention = (r_tr, r_te, before)

    results: dict[str, list[dict]] = {}
    for tech in cfg.techniques:
        for seed in seeds:
            rec = done(tech, seed)
            if rec is not None:
                progress(f"{tech} seed {seed}: reused from {seed_file(tech, seed).name}")
                results.setdefault(tech, []).append(rec)
                continue
            if tech == "feature_extraction":
                res = run_head(X_tr, train.y, X_va, val.y, X_te, test.y, train.classes, seed, hypers[tech])
                rec = res.to_dict()
            else:
                res, model, _ = run_transformer(model_path, train, val, test, seed, hypers[tech],
                                                technique=tech, device=device, max_length=cfg.max_length,
                                                lora_targets=(hypers[tech].get("lora") or {}).get("target_modules"),
                                                progress=progress, tokenizer=tok)
                rec = res.to_dict()
                enc = adapted_encoder(model)
                from harness.embed import encode

                after_te = encode(enc, tok, test.texts, max_length=cfg.max_length, device=device)
                rec["cka_to_pretrained"] = stats.linear_cka(X_te, after_te)
                if retention is not None:
                    r_tr, r_te, _ = retention
                    A_tr = encode(enc, tok, r_tr.texts, max_length=cfg.max_length, device=device)
                    A_te = encode(enc, tok, r_te.texts, max_length=cfg.max_length, device=device)
                    rec["retention_after"] = probes.linear_probe_accuracy(A_tr, r_tr.y, A_te, r_te.y)
                del model
            progress(f"{tech} seed {seed}: accuracy {rec['accuracy']:.3f}, macro-F1 {rec['macro_f1']:.3f}")
            save(tech, seed, rec)
            results.setdefault(tech, []).append(rec)

    baseline = []
    if cfg.baseline:
        for seed in seeds:
            rec = done("tfidf_baseline", seed)
            if rec is not None:
                progress(f"tfidf_baseline seed {seed}: reused from {seed_file('tfidf_baseline', seed).name}")
            else:
                rec = run_tfidf(train, val, test, seed).to_dict()
                save("tfidf_baseline", seed, rec)
            baseline.append(rec)

    # --- probes and tests
    y_te = np.asarray(test.y)
    tests: dict = {}
    if baseline:
        tests.update(probes.negative_transfer_tests(
            {t: [r["accuracy"] for r in rs] for t, rs in results.items()},
            [r["accuracy"] for r in baseline], cfg.alpha))
    ft = [t for t in cfg.techniques if t in ("fine_tuning", "lora")]
    cka = [r["cka_to_pretrained"] for t in ft for r in results[t]]
    if retention is not None and ft:
        for t in ft:
            tests.update({f"{k}.{t}": v for k, v in probes.forgetting_tests(
                retention[2], [r["retention_after"] for r in results[t]], [], cfg.alpha).items()})
    slice_mask = np.array([SLICES["emoji"](t) for t in test.texts])
    tests.update(probes.slice_gap_tests(
        {t: [np.asarray(r["predictions"]) == y_te for r in rs] for t, rs in results.items()},
        slice_mask, cfg.alpha))
    tests.update(probes.two_sample_test(X_tr, X_te, cfg.alpha))
    names = list(tests)
    corrected = dict(zip(names, stats.apply_holm([tests[n] for n in names], cfg.alpha))) if names else {}
    if retention is not None and ft:  # symptoms_from looks the retention test up by its plain name
        worst = min((n for n in corrected if n.startswith("forgetting.retention")),
                    key=lambda n: corrected[n].p_value, default=None)
        if worst:
            corrected["forgetting.retention"] = corrected[worst]
    rate, _ = unk_rate(tok, test.texts, cfg.max_length)
    counts = np.bincount(y_te, minlength=len(train.classes))
    majority = {t: (float(np.mean([r["accuracy"] for r in rs])), float(counts.max() / counts.sum()))
                for t, rs in results.items()}
    symptoms = probes.symptoms_from(corrected, unk_rate=rate, kb=kb, cka=cka, majority=majority)

    from rules.engine import get_engine

    revised = get_engine(kb).consult(plan["scenario"], measured=symptoms)

    summary = {}
    for t, rs in {**results, **({"tfidf_baseline": baseline} if baseline else {})}.items():
        accs = np.array([r["accuracy"] for r in rs])
        f1s = np.array([r["macro_f1"] for r in rs])
        lo, hi = stats.bootstrap_ci(accs) if len(accs) > 1 else (accs[0], accs[0])
        sl = {}
        if slice_mask.any():
            sl = {"emoji": float(np.mean([(np.asarray(r["predictions"]) == y_te)[slice_mask].mean() for r in rs])),
                  "no_emoji": float(np.mean([(np.asarray(r["predictions"]) == y_te)[~slice_mask].mean() for r in rs]))}
        summary[t] = {"accuracy_mean": float(accs.mean()), "accuracy_ci": [float(lo), float(hi)],
                      "macro_f1_mean": float(f1s.mean()), "seconds_mean": float(np.mean([r["seconds"] for r in rs])),
                      "slices": sl, "seeds": len(rs)}

    record = {
        "schema_version": 1,
        "plan": {k: v for k, v in plan.items() if k != "trace"},
        "config": {**asdict(cfg), "model_resolved": model_path, "model_name": model_name,
                   "hyperparameters": hypers, "config_key": key, "classes": train.classes,
                   "sizes": {"train": len(train), "validation": len(val), "test": len(test)}},
        "versions": versions(),
        "device": device,
        "threads": torch.get_num_threads(),
        "embed_seconds": embed_seconds,
        "seconds": time.perf_counter() - t_start,
        "results": results,
        "baseline": baseline,
        "summary": summary,
        "measurements": {"unk_rate_test": rate, "emoji_rows_test": int(slice_mask.sum()),
                         "cka_to_pretrained": cka},
        "tests": {n: t.to_dict() for n, t in corrected.items()},
        "symptoms": symptoms,
        "diagnoses": revised["diagnoses"],
        "diagnosis_trace": [t for t in revised["trace"] if t["rule"].startswith("diagnosis.")],
    }
    from harness.report import write_report

    write_report(out, record)
    write_json_atomic(out / "run.json", record)
    return record
