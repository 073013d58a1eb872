"""Carry out a plan on real data: techniques x seeds, probes, tests, diagnoses.

``execute(plan, cfg, kb)`` is the orchestration: it checks the plan against the contract and the
technique registry, applies (and records) the CLI's overrides, hands the plan to the pipeline of its
modality (``_text_runs`` / ``_image_runs``, both returning a ``ModalityRun``), corrects the probes'
tests for multiplicity, turns them into symptoms and hands those to the rules through
``rules.revise.revise``. It writes a run directory:

- ``seeds/<technique>-<seed>.json``: one finished (technique, seed), written
  atomically; a run started again with the same arguments reuses them (resume);
- ``run.json``: plan, resolved config, versions, device, per-seed metrics,
  tests, symptoms, diagnoses (written atomically, last);
- ``report.md`` and PNG plots.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from rules.contract import DATA_LEVEL


@dataclass
class RunConfig:
    """Where the data is and how to run; *what* runs is the plan's. ``seeds``, ``alpha``,
    ``retention_data``, ``model`` and ``overrides`` (hyperparameters) override plan fields when
    given, and the run records each override (``run.json`` ``overrides``)."""

    techniques: list = field(default_factory=list)  # [] : the plan's technique
    seeds: Optional[int] = None  # None: the plan's evaluation.seeds
    model: Optional[str] = None  # None: the plan's model (the built-in small CNN for images without --weights)
    train: Optional[str] = None
    validation: Optional[str] = None
    test: Optional[str] = None
    text_column: str = "text"
    label_column: str = "label"
    retention_data: Optional[str] = None
    device: str = "auto"
    out: Optional[str] = None
    max_length: int = 128
    alpha: Optional[float] = None  # None: the plan's evaluation.alpha
    overrides: dict = field(default_factory=dict)
    override_scope: Optional[list] = None  # techniques the hyperparameter overrides apply to (None: all)
    builtin_size: int = 1500
    baseline: bool = True
    use_cache: bool = True
    intermediate_data: Optional[str] = None
    unlabeled_data: Optional[str] = None
    weights: Optional[str] = None  # local weights for a torchvision/timm backbone
    image_size: Optional[int] = None  # backbone input size (default: the weights' own)


def write_json_atomic(path: Path, data) -> None:
    from knowledge.reading import write_atomic

    write_atomic(path, json.dumps(data, indent=2, default=_json_default))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def versions() -> dict:
    from harness.training.models import offline_hub

    offline_hub()
    import peft
    import sklearn
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__}


@dataclass
class ModalityRun:
    """What a modality's pipeline measured, in one shape for text and images."""

    model_name: str
    model_path: str
    hypers: dict  # technique -> the hyperparameters it ran with
    key: str  # the config key the seed records are reused under
    classes: list
    sizes: dict  # train / validation / test counts
    results: dict  # technique -> per-seed records
    baseline: list  # per-seed records of the best no-transfer baseline ([] when not run)
    tests: dict  # probe tests before Holm correction
    y_test: np.ndarray
    slice_mask: np.ndarray  # test rows of the emoji slice (all False for images)
    layers: int  # layer groups of the loaded model
    measurements: dict
    embed_seconds: float = 0.0
    data_level: Optional[dict] = None
    backbone: Optional[dict] = None
    forgetting_symptom: str = "retention_drop"


def prepare(plan, cfg: "RunConfig", kb, check) -> tuple:
    """(typed plan with the command line's overrides, the config with its techniques, the overrides):
    what every executor does first; ``check(plan, techniques)`` refuses what it cannot carry out."""
    plan = as_plan(plan, kb)
    cfg = replace(cfg, techniques=list(cfg.techniques or [plan.technique_id]))
    check(plan, cfg.techniques)
    plan, overrides = apply_overrides(plan, cfg)
    return plan, cfg, overrides


def as_plan(plan, kb):
    """A ``rules.contract.Plan`` from a plan or its JSON form (checked against the contract)."""
    from rules.contract import Plan

    return plan if isinstance(plan, Plan) else Plan.from_dict(plan, "the plan", kb)


def apply_overrides(plan, cfg: RunConfig) -> tuple:
    """(plan with cfg's overrides applied, [{"field", "plan", "used", "by"}]): every change recorded."""
    import copy

    from rules.contract import Hyperparameters, PlanError

    plan = copy.deepcopy(plan)
    done = []

    def record(path, before, after, by):
        if after is not None and after != before:
            done.append({"field": path, "plan": before, "used": after, "by": by})
            return True
        return False

    if record("model.id", plan.model.id if plan.model else None, cfg.model, "--model"):
        pass  # the plan keeps naming its model; the run records what it loaded instead
    ev = plan.evaluation
    if record("evaluation.seeds", ev.seeds, cfg.seeds, "--seeds"):
        ev.seeds = cfg.seeds
    if record("evaluation.alpha", ev.alpha, cfg.alpha, "--alpha"):
        ev.alpha = cfg.alpha
    if record("evaluation.retention_data", ev.retention_data, cfg.retention_data, "--retention-data"):
        ev.retention_data = cfg.retention_data
    fields = {f for f in Hyperparameters.__dataclass_fields__}
    techniques = [plan.technique_id, *plan.recipes]
    runs = list(cfg.techniques or [plan.technique_id])
    for name, value in (cfg.overrides or {}).items():
        if value is None:
            continue
        if name in techniques and isinstance(value, dict):  # {technique: {field: value}}: that one only
            targets, items = [name], value.items()
        elif name not in fields:
            raise PlanError(f"--{name.replace('_', '-')} is not a hyperparameter of the plan "
                            f"(known: {', '.join(sorted(fields))}).")
        else:
            targets, items = techniques, [(name, value)]
        for tech in targets:
            h = plan.recipe(tech)
            for field_name, v in items:
                if field_name not in fields:
                    raise PlanError(f"{field_name!r} is not a hyperparameter of the plan.")
                if len(targets) > 1 and not _override_reaches(tech, field_name, runs, cfg.override_scope):
                    continue
                where = "hyperparameters" if tech == plan.technique_id else f"recipes.{tech}"
                if record(f"{where}.{field_name}", getattr(h, field_name), v, f"--{field_name.replace('_', '-')}"):
                    setattr(h, field_name, v)
    return plan, done


HEAD_KEYS = ("head", "probe")  # settings of feature extraction's head; nothing else takes them


def _override_reaches(technique: str, field_name: str, runs: list, scope) -> bool:
    """A recipe per technique: a run-wide flag reaches a head only through the head's own settings
    (unless feature extraction runs alone), and a head's settings reach nothing else."""
    if scope is not None and technique not in scope:
        return False
    head = technique == "feature_extraction"
    if field_name in HEAD_KEYS:
        return head
    return not head or runs == ["feature_extraction"]


def plan_hypers(plan, techniques: list, model_layers: int, adaptations: list) -> dict:
    """Each technique's hyperparameters as the plan resolved them (the data-level settings, which the
    run shares, from the plan's own technique). A frozen-layer count made for the plan's model is
    scaled to the loaded model's depth when they differ, and the change is recorded."""
    from dataclasses import asdict

    shared = {k: getattr(plan.hyperparameters, k) for k in DATA_LEVEL}
    out = {}
    for t in techniques:
        h = {**asdict(plan.recipe(t)), **shared}
        fl, planned = h["frozen_layers"], plan.model.layers if plan.model else 0
        if isinstance(fl, int) and fl and planned and model_layers and planned != model_layers:
            h["frozen_layers"] = round(fl / planned * model_layers)
            adaptations.append({"field": f"{t}.frozen_layers", "plan": fl, "used": h["frozen_layers"],
                                "why": f"the plan froze {fl} of {plan.model.id}'s {planned} layers; the loaded "
                                       f"model has {model_layers}"})
        out[t] = h
    return out


def technique_hyper(kb, plan, technique: str, overrides: Optional[dict] = None, model_layers: int = 0,
                    alone: bool = True) -> dict:
    """The hyperparameters ``technique`` runs with under ``plan`` and the run-wide ``overrides``, as
    ``execute`` resolves them (``alone``: whether it is the run's only technique; a head then takes the
    run's flags). For benchmarks and tests that train one technique outside ``execute``."""
    runs = [technique] if alone else [technique, "fine_tuning" if technique != "fine_tuning" else "lora"]
    typed, _ = apply_overrides(as_plan(plan, kb), RunConfig(techniques=runs, overrides=overrides or {}))
    return plan_hypers(typed, [technique], model_layers, [])[technique]


def load_data(cfg: RunConfig):
    from harness.training.data import check_trainable, load_text, make_reviews, stratified_split

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


def config_key(cfg: RunConfig, model_path: str, data_keys: list[str], hypers: dict,
               retention: Optional[str] = None) -> str:
    blob = json.dumps([sorted(cfg.techniques), model_path, data_keys, hypers, cfg.max_length,
                       retention, cfg.weights, cfg.image_size], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SeedStore:
    """Finished (technique, seed) records under ``out/seeds``, reused when the config key matches."""

    def __init__(self, out: Path, key: str, progress):
        self.dir, self.key, self.progress = out / "seeds", key, progress
        self.dir.mkdir(parents=True, exist_ok=True)

    def file(self, tech, seed) -> Path:
        return self.dir / f"{tech}-{seed}.json"

    def get(self, tech, seed):
        f = self.file(tech, seed)
        if f.exists():
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError, RecursionError):
                return None  # a damaged record is recomputed
            if isinstance(rec, dict) and rec.get("config_key") == self.key:
                self.progress(f"{tech} seed {seed}: reused from {f.name}")
                return rec
        return None

    def put(self, tech, seed, rec) -> dict:
        rec["config_key"] = self.key
        write_json_atomic(self.file(tech, seed), rec)
        return rec

    def run(self, tech, seed, fn, bar=None) -> dict:
        rec = self.get(tech, seed)
        if rec is None:
            rec = self.put(tech, seed, fn())
            if "accuracy" in rec:
                self.progress(f"{tech} seed {seed}: accuracy {rec['accuracy']:.3f}, "
                              f"macro-F1 {rec['macro_f1']:.3f}")
        if bar is not None:
            bar.update(1)
        return rec


def _text_runs(plan, cfg, kb, out, device, progress, adaptations: list) -> ModalityRun:
    from harness.evaluation import probes, stats
    from harness.training.data import SLICES, check_trainable, load_text, stratified_split
    from harness.training.embed import cached_encode, encode, unk_rate
    from harness.training.models import encoder_layers, load_encoder, resolve_model
    from harness.training.techniques import adapted_encoder, run_head, run_tfidf, run_transformer

    from harness.training import adapt

    if not cfg.model and plan.model is None:
        from harness.training.models import ModelError

        raise ModelError("The plan names no model (the catalog holds none for its task): give one with --model.")
    model_name, model_path = resolve_model(cfg.model or plan.model.id, kb)
    train, val, test = load_data(cfg)
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

    probe = {}  # the linear probe is deterministic: one fit serves every seed

    def train_one(tech, seed):
        if tech == "feature_extraction":
            mlp = hypers[tech]["head"] == "mlp"
            if not mlp and probe:
                return {**probe, "seed": seed, "seconds": 0.0, "extra": {**probe["extra"], "fit_of_seed": probe["seed"]}}
            rec = run_head(X_tr, train_fit.y, X_va, val.y, X_te, test.y, train.classes, seed, hypers[tech],
                           hidden=256 if mlp else 0).to_dict()
            if not mlp:
                probe.update(rec)
            return rec
        res, model, _ = run_transformer(model_path, train_fit, val, test, seed, hypers[tech], technique=tech,
                                        device=device, max_length=cfg.max_length, progress=progress,
                                        lora_targets=(hypers[tech]["lora"] or {}).get("target_modules"),
                                        tokenizer=tok, encoder_state=encoder_state)
        rec = res.to_dict()
        enc = adapted_encoder(model)
        rec["cka_to_pretrained"] = stats.linear_cka(X_te, encode(enc, tok, test.texts, max_length=cfg.max_length,
                                                                 device=device))
        if retention is not None:
            r_tr, r_te, _ = retention
            rec["retention_after"] = probes.linear_probe_accuracy(
                encode(enc, tok, r_tr.texts, max_length=cfg.max_length, device=device), r_tr.y,
                encode(enc, tok, r_te.texts, max_length=cfg.max_length, device=device), r_te.y)
        return rec

    with progress.bar(len(seeds) * (len(cfg.techniques) + cfg.baseline), "seeds") as bar:
        results = {t: [store.run(t, s, lambda t=t, s=s: train_one(t, s), bar) for s in seeds]
                   for t in cfg.techniques}
        baseline = ([store.run("tfidf_baseline", s, lambda s=s: run_tfidf(train_fit, val, test, s).to_dict(), bar)
                     for s in seeds] if cfg.baseline else [])

    y_te = np.asarray(test.y)
    tests = {}
    ft = [t for t in cfg.techniques if t in ("fine_tuning", "lora")]
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


def image_backbone_spec(plan: dict, cfg: RunConfig, kb):
    """The torchvision/timm backbone ``cfg`` asks for, or None for the built-in small CNN.

    ``--model`` names it (torchvision:/timm:, a catalog name with a builder, a timm folder); with
    only ``--weights``, the plan's first candidate that has a builder is used."""
    from harness.training.backbones import WEIGHT_SUFFIXES, is_backbone_name, resolve_backbone
    from harness.training.models import ModelError

    name = cfg.model
    if name == "small-cnn" or (name and Path(name).suffix in WEIGHT_SUFFIXES):
        return None  # the small CNN (--weights, or --model FILE, are its weights)
    if name:
        if not is_backbone_name(name, kb):
            entry = kb.find_model(name)
            if entry is not None and "image_classification" not in entry.tasks:
                raise ModelError(f"{entry.id} is not an image model (tasks: {', '.join(entry.tasks)}).")
            if entry is None and not Path(name).exists():
                from knowledge.schema import nearest

                close = nearest(name, [m.id for m in kb.models.values() if m.builder])
                raise ModelError(f"The model {name!r} is neither a torchvision/timm architecture, a timm folder, "
                                 f"a weights file nor in the catalog."
                                 + (f" Nearest catalog names: {', '.join(close)}." if close else ""))
            if entry is None:
                raise ModelError(f"{name}: not an image model (expected a timm folder with config.json naming "
                                 f"its architecture, or a weights file)")
        return resolve_backbone(name, cfg.weights, kb)
    if cfg.weights:
        for c in plan.candidates:
            entry = kb.models.get(c["model"])
            if entry is not None and entry.builder:
                return resolve_backbone(entry.id, cfg.weights, kb)
        raise ModelError("--weights was given but none of the plan's candidates has a torchvision or timm "
                         "builder: name the architecture with --model (e.g. torchvision:resnet18).")
    return None


def _load_images(path: str, size: int, grayscale: bool):
    from harness.training.vision import load_arrays, load_image_folder

    p = Path(path)
    return load_image_folder(p, size=size, grayscale=grayscale) if p.is_dir() else load_arrays(p)


def _image_runs(plan, cfg, kb, out, device, progress, adaptations: list) -> ModalityRun:
    from harness.evaluation import probes
    from harness.training.backbones import WEIGHT_SUFFIXES
    from harness.training.data import DataError
    from knowledge.cache import cache_dir
    from harness.training.vision import (digits, image_features, load_weights, param_blocks, predict_images,
                                pretrained_source, retention_accuracy, run_image, run_pixel_baseline, split)

    spec = image_backbone_spec(plan, cfg, kb)
    src_tr = src_te = None
    retention = None
    if spec is None:
        if not cfg.model and not cfg.weights:
            adaptations.append({"field": "model.id", "plan": plan.model.id if plan.model else None,
                                "used": "small-cnn",
                                "why": "no --weights given: the built-in example CNN (pre-trained here on "
                                       "digits 0-4) runs in place of the plan's model"})
        source, src_tr, src_te = pretrained_source(cache_dir("models"))
        model_name = "small-cnn (pre-trained here on digits 0-4)"
        weights = cfg.model if cfg.model and Path(cfg.model).suffix in WEIGHT_SUFFIXES else cfg.weights
        if weights:
            load_weights(source, weights)
            model_name = f"small-cnn ({Path(weights).name})"
        source.to(device)
        in_channels = source.blocks[0][0].in_channels
        grey = in_channels == 1
    if cfg.train:
        data = _load_images(cfg.train, cfg.image_size or (spec.input_size if spec else 32), spec is None and grey)
        src_te = None  # a user's own source task is unknown: no source-accuracy probe
    else:
        data = digits(source=False)
    train, test = split(data, 0.25, seed=0)
    train, val = split(train, 0.2, seed=0)
    if spec is not None:
        from harness.training.backbones import transfer_net

        in_channels = train.X.shape[1]
        if in_channels not in (1, 3):
            raise DataError(f"{cfg.train}: images have {in_channels} channels; a backbone takes grey or RGB")
        k = len(train.classes)
        source = transfer_net(spec, k, in_channels, cfg.image_size).to(device)
        model_name = spec.name
        progress(f"model: {spec.name} ({spec.library} {spec.arch}) from {spec.weights}, input {source.size}px")
    elif train.X.shape[1] != in_channels:
        raise DataError(f"{cfg.train}: images have {train.X.shape[1]} channel(s); the source CNN expects "
                        f"{in_channels}")
    r = None
    retention_path = plan.evaluation.retention_data if "forgetting" in plan.evaluation.probes else None
    if retention_path:
        r = _load_images(retention_path, source.size if spec else 32, spec is None and grey)
        if r.X.shape[1] != in_channels and not (spec is not None and r.X.shape[1] == 1):
            raise DataError(f"{retention_path}: images have {r.X.shape[1]} channel(s); the model takes "
                            f"{in_channels}")
    elif spec is not None and not cfg.train and "forgetting" in plan.evaluation.probes:
        r = digits(source=True)  # the built-in case: the source digits 0-4
    if r is not None:
        r_tr, r_te = split(r, 0.3, seed=0)
        retention = (r_tr, r_te)
        if spec is not None:
            src_tr = r_tr
    n_blocks = len(param_blocks(source))
    progress(f"data: {len(train)} train / {len(val)} validation / {len(test)} test, classes {train.classes}")
    hypers = plan_hypers(plan, cfg.techniques, n_blocks, adaptations)
    if spec is None:  # the built-in example CNN stands in for the plan's model: its recipe, recorded
        builtin = kb.threshold("builtin_cnn_recipe")
        for t, h in hypers.items():
            if t == "feature_extraction":
                continue
            for name, value in builtin.items():
                if h[name] != value and not (cfg.overrides or {}).get(name):
                    adaptations.append({"field": f"{t}.{name}", "plan": h[name], "used": value,
                                        "why": "the built-in small CNN runs in place of the plan's model "
                                               "(thresholds:builtin_cnn_recipe)"})
                    h[name] = value
    data_keys = [hashlib.sha256(memoryview(np.ascontiguousarray(data.X)).cast("B")).hexdigest()[:16]]
    key = config_key(cfg, model_name, data_keys, hypers, retention_path)
    store = SeedStore(out, key, progress)
    seeds = list(range(plan.evaluation.seeds))
    alpha = plan.evaluation.alpha
    target = (train, val, test)
    fresh = None
    features = None
    test_features = None  # the unchanged source's features of the test images, computed once
    if spec is not None:
        fresh = lambda: transfer_net(spec, len(train.classes), in_channels, cfg.image_size,  # noqa: E731
                                     pretrained=False)
        t0 = time.perf_counter()
        if "feature_extraction" in cfg.techniques:
            features = tuple(image_features(source, d, device=device) for d in target)
            test_features = features[2]
        else:
            test_features = image_features(source, test, device=device)
        progress(f"features: source model on the target images in {time.perf_counter() - t0:.1f} s")
    retention_before = retention_accuracy(source, retention, device) if retention is not None else None
    common = dict(device=device, fresh=fresh, features=features, retention=retention,
                  retention_before=retention_before, probe_data=test if spec is not None else None,
                  probe_before=test_features)
    with progress.bar(len(seeds) * len(cfg.techniques), "seeds") as bar:
        results = {t: [store.run(t, s, lambda t=t, s=s: run_image(t, source, target, s, hypers[t], src_te,
                                                                  **common).to_dict(), bar)
                       for s in seeds] for t in cfg.techniques}
    baseline = []
    if cfg.baseline:
        pixel = [store.run("pixel_baseline", s, lambda s=s: run_pixel_baseline(target, s).to_dict()) for s in seeds]
        # the same budget as fine-tuning: its epochs and learning rate (scratch's own for a backbone)
        pair = plan_hypers(plan, ["from_scratch", "fine_tuning"], n_blocks, [])
        scratch_h = pair["from_scratch"]
        scratch_h["epochs"] = (hypers.get("fine_tuning") or pair["fine_tuning"])["epochs"]
        if spec is None:
            scratch_h.update(kb.threshold("builtin_cnn_recipe"), epochs=scratch_h["epochs"])
        scratch = results.get("from_scratch") or [
            store.run("from_scratch_baseline", s,
                      lambda s=s: run_image("from_scratch", source, target, s, scratch_h, device=device,
                                            fresh=fresh).to_dict()) for s in seeds]
        # the best no-transfer baseline under the same budget
        baseline = max((pixel, scratch), key=lambda rs: np.mean([r["accuracy"] for r in rs]))
    tests = {}
    before = None
    adapted = [t for t in cfg.techniques if t != "from_scratch"]
    if src_te is not None:
        before = float((predict_images(source, src_te, device=device) == src_te.y).mean())
        for t in adapted:
            after = [r["extra"].get("source_accuracy_after") for r in results[t]]
            if all(a is not None for a in after):
                for res in probes.forgetting_tests(before, after, [], alpha).values():
                    tests[f"forgetting.source_accuracy.{t}"] = res
    if retention is not None:
        for t in adapted:
            if t == "feature_extraction":
                continue  # the backbone is unchanged
            for name, res in probes.forgetting_tests(retention_before, [r["extra"]["retention_after"]
                                                                        for r in results[t]], [], alpha).items():
                tests[f"{name}.{t}"] = res
    # source (or train) inputs vs target test inputs, in the source model's feature space
    reference = src_tr if src_tr is not None else train
    if test_features is None:
        test_features = image_features(source, test, device=device)
    tests.update(probes.two_sample_test(image_features(source, reference, device=device), test_features,
                                        alpha))
    cka = [r["extra"]["cka_to_pretrained"] for t in cfg.techniques if t in ("fine_tuning", "lora")
           for r in results[t] if "cka_to_pretrained" in r["extra"]]
    return ModalityRun(
        model_name=model_name, model_path=spec.weights if spec else model_name, hypers=hypers, key=key,
        classes=train.classes, sizes={"train": len(train), "validation": len(val), "test": len(test)},
        results=results, baseline=baseline, tests=tests, y_test=np.asarray(test.y),
        slice_mask=np.zeros(len(test), bool), layers=n_blocks,
        forgetting_symptom="retention_drop" if spec is not None else "source_accuracy_drop",
        backbone=({"library": spec.library, "architecture": spec.arch, "weights": spec.weights,
                   "input_size": source.size} if spec is not None else None),
        measurements={"unk_rate_test": None, "emoji_rows_test": 0, "cka_to_pretrained": cka,
                      "source_accuracy_before": before, "retention_before": retention_before,
                      "source_train_size": len(src_tr) if src_tr is not None else None})


def execute(plan: dict, cfg: RunConfig, kb, progress=None) -> dict:
    """Run ``plan`` as ``cfg`` says; returns the run record (also written to run.json).

    ``progress``: a ``harness.reporting.progress.Progress`` (messages and bars), a plain
    callable taking message strings, or None (silent)."""
    import torch

    from harness.evaluation import probes, stats
    from harness.training.models import pick_device
    from harness.reporting.progress import as_progress
    from harness.training.registry import check_executable
    from rules.revise import revise

    progress = as_progress(progress)
    t_start = time.perf_counter()
    plan, cfg, overrides = prepare(plan, cfg, kb, check_executable)
    image = plan.scenario.get("modality") == "image"
    if not image and (cfg.weights or cfg.image_size):
        from harness.training.data import DataError

        raise DataError(f"{'--weights' if cfg.weights else '--image-size'} is for image tasks; this plan's task is "
                        f"{plan.scenario.get('task')} (text models are named with --model).")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    adaptations: list = []
    run = (_image_runs if image else _text_runs)(plan, cfg, kb, out, device, progress, adaptations)
    results, baseline, y_te, mask = run.results, run.baseline, run.y_test, run.slice_mask
    alpha, probes_on = plan.evaluation.alpha, set(plan.evaluation.probes)

    tests = dict(run.tests)
    if baseline and "negative_transfer" in probes_on:
        tests.update(probes.negative_transfer_tests(
            {t: [r["accuracy"] for r in rs] for t, rs in results.items() if t != "from_scratch"},
            [r["accuracy"] for r in baseline], alpha,
            transfer_correct={t: np.asarray(rs[0]["predictions"]) == y_te for t, rs in results.items()},
            baseline_correct=np.asarray(baseline[0]["predictions"]) == y_te))
    # only the probes the plan's evaluation names (a test's name starts with its probe)
    tests = {n: t for n, t in tests.items() if n.split(".")[0] in probes_on}
    names = list(tests)
    corrected = dict(zip(names, stats.apply_holm([tests[n] for n in names], alpha))) if names else {}
    lookup = dict(corrected)
    worst = min((n for n in corrected if n.startswith("forgetting.")),
                key=lambda n: corrected[n].p_value, default=None)
    if worst:  # symptoms_from looks the forgetting test up by its plain name
        lookup["forgetting.retention"] = corrected[worst]
    counts = np.bincount(y_te, minlength=len(run.classes))
    majority = {t: (float(np.mean([r["accuracy"] for r in rs])), float(counts.max() / counts.sum()))
                for t, rs in results.items()}
    m = run.measurements
    symptoms = probes.symptoms_from(lookup, unk_rate=m["unk_rate_test"] if "domain_shift" in probes_on else None,
                                    kb=kb, cka=m["cka_to_pretrained"] if "forgetting" in probes_on else [],
                                    majority=majority,
                                    forgetting_symptom=run.forgetting_symptom,
                                    prefer=plan.technique_id)
    tech = plan.technique_id
    revised = revise(plan, {"symptoms": symptoms, "technique": tech,
                            "hyperparameters": run.hypers.get(tech, {}),  # what was actually run
                            "layers": run.layers,
                            "accuracy": {t: float(np.mean([r["accuracy"] for r in rs])) for t, rs in results.items()}},
                     kb)
    diagnoses = revised["diagnoses"]

    summary = {}
    rows = dict(results)
    if baseline and baseline[0]["technique"] not in rows:
        rows[baseline[0]["technique"]] = baseline
    for t, rs in rows.items():
        accs = np.array([r["accuracy"] for r in rs])
        lo, hi = stats.bootstrap_ci(accs) if len(accs) > 1 else (accs[0], accs[0])
        sl = {}
        if mask.any():
            corr = [np.asarray(r["predictions"]) == y_te for r in rs]
            sl = {"emoji": float(np.mean([c[mask].mean() for c in corr])),
                  "no_emoji": float(np.mean([c[~mask].mean() for c in corr]))}
        summary[t] = {"accuracy_mean": float(accs.mean()), "accuracy_ci": [float(lo), float(hi)],
                      "macro_f1_mean": float(np.mean([r["macro_f1"] for r in rs])),
                      "seconds_mean": float(np.mean([r["seconds"] for r in rs])), "slices": sl, "seeds": len(rs)}

    record = {
        "schema_version": 2,
        "plan": {k: v for k, v in plan.to_dict().items() if k != "trace"},
        "overrides": overrides,
        "adaptations": adaptations,
        "config": {**asdict(cfg), "model_resolved": run.model_path, "model_name": run.model_name,
                   "data_level": run.data_level, "layers": run.layers, "backbone": run.backbone,
                   "hyperparameters": run.hypers, "config_key": run.key, "classes": run.classes,
                   "sizes": run.sizes},
        "versions": versions(),
        "device": device,
        "threads": torch.get_num_threads(),
        "embed_seconds": run.embed_seconds,
        "seconds": time.perf_counter() - t_start,
        "results": results,
        "baseline": baseline,
        "summary": summary,
        "measurements": run.measurements,
        "tests": {n: t.to_dict() for n, t in corrected.items()},
        "symptoms": symptoms,
        "diagnoses": diagnoses,
        "diagnosis_trace": revised["trace"],
    }
    from harness.reporting.report import write_report

    write_report(out, record)
    write_json_atomic(out / "run.json", record)
    return record
