"""The image-classification pipeline of a run: the backbone (torchvision/timm or the built-in small CNN),
images, each technique x seed, and the image probes."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from harness.training.common import held_out
from harness.training.registry import REGISTRY, technique_spec
from harness.training.runconfig import ModalityRun, RunConfig, SeedStore, config_key, plan_hypers


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


def image_runs(plan, cfg, kb, out, device, progress, adaptations: list) -> ModalityRun:
    from harness.evaluation import probes
    from harness.training.backbones import WEIGHT_SUFFIXES
    from harness.training.data import DataError
    from knowledge.cache import cache_dir
    from harness.training.vision import (digits, image_features, load_weights, param_blocks, predict_images,
                                pretrained_source, retention_accuracy, run_pixel_baseline, split)

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
    train, val, test = held_out(data, None, None, plan.evaluation, split)
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
            if technique_spec(t).head_only:
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
        if any(technique_spec(t).head_only for t in cfg.techniques):
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
        results = {t: [store.run(t, s, lambda t=t, s=s, f=technique_spec(t).implementation("image"):
                                 f(t, source, target, s, hypers[t], src_te, **common).to_dict(), bar)
                       for s in seeds] for t in cfg.techniques}
    baseline = []
    if cfg.baseline:
        pixel = [store.run("pixel_baseline", s, lambda s=s: run_pixel_baseline(target, s).to_dict()) for s in seeds]
        # the same budget as fine-tuning: its epochs and learning rate (scratch's own for a backbone)
        scratch_id = next(t for t, s in REGISTRY.items() if not s.pretrained)
        full = next(t for t, s in REGISTRY.items() if s.full_update)
        pair = plan_hypers(plan, [scratch_id, full], n_blocks, [])
        scratch_h = pair[scratch_id]
        scratch_h["epochs"] = (hypers.get(full) or pair[full])["epochs"]
        if spec is None:
            scratch_h.update(kb.threshold("builtin_cnn_recipe"), epochs=scratch_h["epochs"])
        scratch = results.get(scratch_id) or [
            store.run(f"{scratch_id}_baseline", s,
                      lambda s=s, f=technique_spec(scratch_id).implementation("image"):
                      f(scratch_id, source, target, s, scratch_h, device=device, fresh=fresh).to_dict())
            for s in seeds]
        # the best no-transfer baseline under the same budget
        baseline = max((pixel, scratch), key=lambda rs: np.mean([r["accuracy"] for r in rs]))
    tests = {}
    before = None
    adapted = [t for t in cfg.techniques if technique_spec(t).pretrained]
    if src_te is not None:
        before = float((predict_images(source, src_te, device=device) == src_te.y).mean())
        for t in adapted:
            after = [r["extra"].get("source_accuracy_after") for r in results[t]]
            if all(a is not None for a in after):
                for res in probes.forgetting_tests(before, after, [], alpha).values():
                    tests[f"forgetting.source_accuracy.{t}"] = res
    if retention is not None:
        for t in adapted:
            if technique_spec(t).head_only:
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
    cka = [r["extra"]["cka_to_pretrained"] for t in cfg.techniques if technique_spec(t).changes_backbone
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
