"""What a run is configured with and shares across its pipelines: ``RunConfig`` (the command line's
settings), the plan's overrides and per-technique hyperparameters, the seed store that lets a run resume,
and the atomic JSON writer of run records."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from harness.training.registry import technique_spec
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
    from knowledge.writing import write_atomic

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
    from rules.contract import Hyperparameters, PlanError

    done, changes = [], {}

    def record(path, before, after, by):
        if after is not None and after != before:
            done.append({"field": path, "plan": before, "used": after, "by": by})
            return True
        return False

    def change(path, before, after, by):
        if record(path, before, after, by):
            changes[path] = after

    if record("model.id", plan.model.id if plan.model else None, cfg.model, "--model"):
        pass  # the plan keeps naming its model; the run records what it loaded instead
    ev = plan.evaluation
    change("evaluation.seeds", ev.seeds, cfg.seeds, "--seeds")
    change("evaluation.alpha", ev.alpha, cfg.alpha, "--alpha")
    change("evaluation.retention_data", ev.retention_data, cfg.retention_data, "--retention-data")
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
                change(f"{where}.{field_name}", getattr(h, field_name), v, f"--{field_name.replace('_', '-')}")
    return (plan.changed(changes, where="the plan with the command line's settings") if changes else plan), done


HEAD_KEYS = ("head", "probe")  # settings of feature extraction's head; nothing else takes them


def _override_reaches(technique: str, field_name: str, runs: list, scope) -> bool:
    """A recipe per technique: a run-wide flag reaches a head only through the head's own settings
    (unless feature extraction runs alone), and a head's settings reach nothing else."""
    if scope is not None and technique not in scope:
        return False
    head = technique_spec(technique).head_only
    if field_name in HEAD_KEYS:
        return head
    return not head or runs == [technique]


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
    from harness.training.registry import REGISTRY

    other = next(t for t, s in REGISTRY.items() if t != technique and not s.head_only)
    runs = [technique] if alone else [technique, other]
    typed, _ = apply_overrides(as_plan(plan, kb), RunConfig(techniques=runs, overrides=overrides or {}))
    return plan_hypers(typed, [technique], model_layers, [])[technique]


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
