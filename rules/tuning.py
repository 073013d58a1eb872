"""Hyperparameter rules: learning rate, frozen layers, unfreezing, regularization, LoRA."""

from __future__ import annotations

import math
from typing import Optional

from rules._experta import L, MATCH, NOT, TEST
from rules.base import (Family, Fit, Hyper, ModelFact, Recipe, RunModel, Scenario, SizeClass, TaskFact,
                        Technique, TechniqueFact, Threshold, rule)

SAL = 20

KEYED = {"cnn", "nlp_transformer", "multimodal", "vision_transformer", "audio",
         "small", "medium", "large", "huge", "default"}


# decided by the freezing rules below, not taken from a technique's defaults
DECIDED = ("frozen_layers", "unfreeze", "lora", "discriminative_lr_decay", "quantization")


def image_domain(entry, tags: list[str]):
    """The first image domain of the augmentation entry (``image_domains``) one of ``tags`` names, or None."""
    words = {t.strip().lower().replace(" ", "_") for t in tags} | {
        w for t in tags for w in t.strip().lower().replace("-", "_").split()}
    for d in entry.image_domains:
        if words & {t.lower() for t in d.tags}:
            return d
    return None


def scenario_image_domain(kb, scenario: dict):
    """The image domain a scenario's target_domain tags, or its task (documents), name; None for photos."""
    task = kb.tasks.get(scenario.get("task"))
    tags = list(scenario.get("target_domain") or ()) + ([task.image_domain] if task is not None and task.image_domain else [])
    return image_domain(kb.get("regularization", "data_augmentation"), tags)


def resolve(value, family: str, size: str):
    """A technique default may be keyed by family or data size (with 'default')."""
    if isinstance(value, dict) and value and set(value) <= KEYED:
        for key in (family, size, "default"):
            if key in value:
                return value[key]
        # keyed by size but this size is not listed: take the nearest larger one
        order = ["small", "medium", "large", "huge"]
        for key in order[order.index(size):] + order[::-1]:
            if key in value:
                return value[key]
    return value


class TuningRules:
    @rule(
        "tuning.technique_defaults",
        Technique(value=MATCH.technique),
        Family(value=MATCH.family),
        SizeClass(value=MATCH.size),
        salience=SAL,
    )
    def technique_defaults(self, technique, family, size):
        """A chosen technique -> all its defaults (rate, epochs, batch, regularization, warm-up, clipping, stopping)."""
        entry = self.kb.techniques[technique]
        for name, value in entry.defaults.items():
            if name in DECIDED:
                continue  # decided by the rules below
            v = resolve(value, family, size)
            self.conclude(
                Hyper(name=name, value=v, why=f"{entry.name} default for {family} ({size} data)", default=True),
                basis=[f"techniques:{technique}"],
            )

    @rule(
        "tuning.freeze_backbone",
        Technique(updates="head"),
        salience=SAL,
        basis=["techniques:feature_extraction"],
    )
    def freeze_backbone(self):
        """Feature extraction -> the whole backbone is frozen; only the new head trains."""
        self.conclude(Hyper(name="frozen_layers", value="all", why="feature extraction keeps the backbone fixed"))
        self.conclude(Hyper(name="unfreeze", value="none", why="nothing to unfreeze"))
        self.conclude(Hyper(name="discriminative_lr_decay", value=1.0, why="only the head trains"))

    @rule(
        "tuning.lora_adapters",
        Technique(value=MATCH.technique, updates="adapters"),
        RunModel(model=MATCH.model),
        salience=SAL,
        basis=["techniques:lora", "sources:peft-docs"],
    )
    def lora_adapters(self, model, technique):
        """LoRA or QLoRA -> rank/alpha/dropout from the knowledge base, target modules from the model to run."""
        scen = next(iter(self.facts_of(Scenario)))
        scaled = scaled_values(self.kb, technique, model, self.kb.tasks[scen["task"]].generative,
                               scen["dataset_size"], scen["task"], scen["compute"])[0]
        cfg = lora_settings(self.kb, model, technique, scaled)
        targets = cfg["target_modules"]
        fit = next((f for f in self.facts_of(Fit) if f["model"] == model and f["technique"] == technique), None)
        lowered = (fit or {}).get("batching", {}).get("rank") if fit is not None else None
        if lowered:  # the memory fit lowered the rank: the adapters the budget holds
            cfg = {**cfg, "rank": int(lowered)}
        if self.kb.techniques[technique].quantized_base:
            quant = dict(self.kb.techniques[technique].defaults.get("quantization", {}))
            self.conclude(Hyper(name="quantization", value=quant,
                                why=f"{quant.get('bits')}-bit {quant.get('quant_type')} frozen base, "
                                    f"double quantization, {quant.get('compute_dtype')} compute (QLoRA)"),
                          basis=["techniques:qlora", "sources:dettmers2023qlora"])
        self.conclude(
            Hyper(name="lora", value=cfg,
                  why=f"rank {cfg.get('rank')} adapters on {', '.join(targets)} of {model}"
                      + (" (the recipe's rank halved until the adapters and their optimizer state fit the memory)"
                         if lowered else "")),
            basis=[f"models:{model}"],
        )
        self.conclude(Hyper(name="frozen_layers", value="all", why="LoRA freezes the pre-trained weights"))
        self.conclude(Hyper(name="unfreeze", value="none", why="only adapters and the head train"))
        self.conclude(Hyper(name="discriminative_lr_decay", value=1.0, why="the adapters share one rate"))

    @rule(
        "tuning.freeze_early_layers",
        Technique(updates="all", pretrained=True),
        SizeClass(value=L("small") | L("medium")),
        TaskFact(dense=False),
        Scenario(domain_similarity=MATCH.ds, retain_source=MATCH.retain),
        TEST(lambda ds: ds != "low"),
        RunModel(model=MATCH.model),
        Threshold(freeze_fraction_medium_data=MATCH.fraction),
        salience=SAL,
        basis=["sources:slide-forgetting", "sources:yosinski2014", "thresholds:dataset_medium_max",
               "thresholds:freeze_fraction_medium_data", "techniques:gradual_unfreezing",
               "techniques:discriminative_lr"],
    )
    def freeze_early_layers(self, model, fraction, ds, retain):
        """Fine-tuning on small or medium data from similar data -> freeze the early layers, unfreeze gradually."""
        layers = self.kb.models[model].layers
        k = math.floor(layers * fraction)
        keep = {"yes": " and keep the source abilities", "unknown": " and limit forgetting"}.get(retain, "")
        self.conclude(
            Hyper(name="frozen_layers", value=k,
                  why=f"layers 1-{k} of {layers} of {model} stay frozen: early layers hold general features "
                      f"that transfer between {ds}-similarity data (Yosinski et al. 2014, How transferable "
                      f"are features in deep neural networks?); layers {k + 1}-{layers} and the head adapt. "
                      f"Fewer tuned layers on a few thousand examples avoid overfitting{keep} "
                      "(Common Pitfalls # 1: Catastrophic Forgetting)"),
            basis=[f"models:{model}"],
        )
        self.conclude(Hyper(name="unfreeze", value="gradual",
                            why="unfreeze one layer group per epoch, top first (ULMFiT)"))
        d = self.kb.techniques["discriminative_lr"].defaults
        group, groups = float(d["discriminative_lr_decay"]), int(d.get("groups", 3))
        trainable = max(1, layers - k)
        total = group ** (groups - 1)  # top to bottom of what trains, as ULMFiT's groups
        steepest = float(d.get("max_per_layer", 1.25))  # layer-wise decay 0.8 (ELECTRA): at most 1.25x per layer
        per_layer = round(min(total ** (1 / trainable), steepest), 3)
        bottom = per_layer ** trainable
        self.conclude(Hyper(name="discriminative_lr_decay", value=per_layer,
                            why=f"the rate falls {per_layer:g}x per layer (at most {steepest:g}x, ELECTRA's "
                                f"layer-wise decay of 0.8), so the lowest of the {trainable} trained layers learns "
                                f"~{bottom:.1f}x slower than the top (ULMFiT: {group:g} between each of {groups} "
                                "layer groups)"))

    @rule(
        "tuning.adapt_all_layers_dissimilar",
        Technique(updates="all", pretrained=True),
        SizeClass(value=L("small") | L("medium")),
        Scenario(domain_similarity="low"),
        RunModel(model=MATCH.model),
        salience=SAL,
        basis=["sources:yosinski2014", "sources:slide-negative-transfer", "sources:gururangan2020dapt"],
    )
    def adapt_all_layers_dissimilar(self, model):
        """Fine-tuning from dissimilar data -> no layer frozen: the early layers must adapt to the new data too."""
        layers = self.kb.models[model].layers
        self.conclude(
            Hyper(name="frozen_layers", value=0,
                  why=f"all {layers} layers of {model} adapt: source and target data are dissimilar, and "
                      "frozen transferred layers lose accuracy as the data grow apart while fine-tuned ones "
                      "keep their benefit (Yosinski et al. 2014); the course fixes a poor transfer by tuning "
                      "different layers (Common Pitfalls # 2: Negative Transfer)"),
            basis=[f"models:{model}"],
        )
        self.conclude(Hyper(name="unfreeze", value="none", why="every layer trains from the start"))
        self.conclude(Hyper(name="discriminative_lr_decay", value=1.0, why="every layer adapts at the same rate"))

    @rule(
        "tuning.large_encoder_rate",
        Technique(updates="all", pretrained=True),
        Family(value="nlp_transformer"),
        SizeClass(value=L("small") | L("medium")),
        RunModel(model=MATCH.model),
        ModelFact(id=MATCH.model, params=MATCH.params),
        Threshold(large_encoder_min_params=MATCH.min_params, large_encoder_learning_rate=MATCH.rate),
        TEST(lambda params, min_params: (params or 0) >= min_params),
        salience=SAL,
        basis=["thresholds:large_encoder_min_params", "thresholds:large_encoder_learning_rate",
               "sources:mosbach2021stability"],
    )
    def large_encoder_rate(self, model, params, min_params, rate):
        """Fine-tuning a large text encoder on a few thousand examples -> the low end of its learning-rate range."""
        self.conclude(
            Hyper(name="learning_rate", value=rate,
                  why=f"{model} has {params / 1e6:.0f}M parameters: large encoders fine-tuned on a few thousand "
                      f"examples fail on some seeds at the base-size rate; {rate:g} with warm-up is the stable end "
                      "of their range (Mosbach et al. 2021)"),
            basis=[f"models:{model}"],
        )

    @rule(
        "tuning.stay_near_source_dissimilar",
        Technique(updates="all", pretrained=True),
        SizeClass(value=L("medium") | L("large") | L("huge")),
        Scenario(domain_similarity="low", retain_source="yes"),
        salience=SAL,
        basis=["techniques:l2_sp", "sources:li2018l2sp", "sources:slide-forgetting"],
    )
    def stay_near_source_dissimilar(self):
        """Every layer adapts but the source abilities must be kept -> L2-SP pulls weights towards the pre-trained ones."""
        value = self.kb.techniques["l2_sp"].defaults["l2_sp"]
        self.conclude(Hyper(name="l2_sp", value=value,
                            why="the layers adapt to dissimilar data, yet the source abilities must be kept: "
                                "regularize towards the pre-trained weights instead of freezing them "
                                "(Li et al. 2018, L2-SP)"))

    @rule(
        "tuning.tune_all_layers",
        Technique(updates="all", pretrained=True),
        SizeClass(value=L("large") | L("huge")),
        salience=SAL,
        basis=["techniques:fine_tuning"],
    )
    def tune_all_layers(self):
        """Fine-tuning on large data -> all layers train from the start, at one learning rate."""
        self.conclude(Hyper(name="frozen_layers", value=0, why="enough data to update every layer"))
        self.conclude(Hyper(name="unfreeze", value="none", why="all layers train from the start"))
        self.conclude(Hyper(name="discriminative_lr_decay", value=1.0, why="every layer adapts at the same rate"))

    @rule(
        "tuning.dense_all_layers",
        Technique(updates="all", pretrained=True),
        SizeClass(value=L("small") | L("medium")),
        TaskFact(dense=True),
        Scenario(domain_similarity=MATCH.ds),
        TEST(lambda ds: ds != "low"),  # dissimilar data: tuning.adapt_all_layers_dissimilar decides the same
        salience=SAL,
        basis=["techniques:fine_tuning", "sources:he2019rethinking"],
    )
    def dense_all_layers(self, ds):
        """Fine-tuning a dense task (masks, boxes) on few images -> every layer trains: each image holds thousands of labels."""
        self.conclude(Hyper(name="frozen_layers", value=0,
                            why="every layer trains: each image carries a mask or boxes, thousands of labels, "
                                "which is more supervision than its count suggests"))
        self.conclude(Hyper(name="unfreeze", value="none", why="all layers train from the start"))
        self.conclude(Hyper(name="discriminative_lr_decay", value=1.0, why="every layer adapts at the same rate"))

    @rule(
        "tuning.train_all_layers",
        Technique(pretrained=False),
        salience=SAL,
        basis=["techniques:from_scratch"],
    )
    def train_all_layers(self):
        """Training from scratch -> every layer trains from random weights; nothing to freeze."""
        self.conclude(Hyper(name="frozen_layers", value=0, why="random weights: every layer must learn"))
        self.conclude(Hyper(name="unfreeze", value="none", why="all layers train from the start"))
        self.conclude(Hyper(name="discriminative_lr_decay", value=1.0, why="no pre-trained layers to protect"))

    @rule(
        "tuning.alternative_recipes",
        Technique(value=MATCH.technique),
        Family(value=MATCH.family),
        SizeClass(value=MATCH.size),
        RunModel(model=MATCH.model),
        salience=SAL,
        basis=["techniques:feature_extraction", "techniques:fine_tuning", "techniques:lora",
               "techniques:from_scratch"],
    )
    def alternative_recipes(self, technique, family, size, model):
        """Each other core technique -> its own resolved recipe (for comparisons and technique switches)."""
        scen = next(iter(self.facts_of(Scenario)))
        generative = self.kb.tasks[scen["task"]].generative
        for tid, entry in self.kb.techniques.items():
            if entry.kind != "core" or tid == technique:
                continue
            self.conclude(Recipe(technique=tid, values=recipe(self.kb, tid, family, size, model, generative,
                                                              scen["dataset_size"], scen["task"], scen["compute"])),
                          basis=[f"techniques:{tid}"])

    @rule(
        "tuning.recipe_by_model_size",
        Technique(value=MATCH.technique),
        RunModel(model=MATCH.model),
        Scenario(task=MATCH.task, dataset_size=MATCH.n, compute=MATCH.compute),
        salience=SAL,
        basis=["techniques:lora", "techniques:qlora", "sources:dettmers2023qlora"],
    )
    def recipe_by_model_size(self, technique, model, task, n, compute):
        """The model that runs is large, or the task needs its own recipe -> the technique's cited recipe for them."""
        values, whys, sources = scaled_values(self.kb, technique, model, self.kb.tasks[task].generative, n, task,
                                              compute)
        for name, value in values.items():
            if name.startswith("lora_"):
                continue  # read by tuning.lora_adapters into the adapters' settings
            self.conclude(Hyper(name=name, value=value, why="; ".join(whys)),
                          basis=[f"techniques:{technique}", *(f"sources:{s}" for s in sources)])

    @rule(
        "tuning.no_model_in_catalog",
        Technique(value=MATCH.technique),
        Family(value=MATCH.family),
        SizeClass(value=MATCH.size),
        NOT(RunModel()),
        salience=SAL,
        basis=["techniques:feature_extraction", "techniques:fine_tuning", "techniques:lora"],
    )
    def no_model_in_catalog(self, technique, family, size):
        """No catalog model for the task -> the technique's plain recipe (no layer count to freeze by)."""
        values = recipe(self.kb, technique, family, size, None)
        for name in ("frozen_layers", "unfreeze", "discriminative_lr_decay", "lora", "quantization"):
            if name in values:
                self.conclude(Hyper(name=name, value=values[name],
                                    why="no catalog model for this task: the technique's plain recipe"))
        for tid, entry in self.kb.techniques.items():
            if entry.kind == "core" and tid != technique:
                self.conclude(Recipe(technique=tid, values=recipe(self.kb, tid, family, size, None)),
                              basis=[f"techniques:{tid}"])

    @rule(
        "tuning.early_stopping",
        Technique(value=MATCH.technique),
        salience=SAL,
        basis=["thresholds:early_stopping_patience", "regularization:early_stopping"],
    )
    def early_stopping(self, technique):
        """Any technique that trains -> stop when the task's validation figure (``Task.stop_on``) stops improving."""
        if "early_stopping_patience" in self.kb.techniques[technique].defaults:
            return  # the technique's own patience (tuning.technique_defaults)
        k = self.kb.threshold("early_stopping_patience")
        scen = next(iter(self.facts_of(Scenario)), None)
        task = self.kb.tasks.get(scen.get("task")) if scen is not None else None
        metric = task.stop_on if task is not None else "validation macro-F1"
        self.conclude(Hyper(name="early_stopping_patience", value=k,
                            why=f"stop after {k} epochs without a better {metric} and restore "
                                "the best epoch's weights: the epoch budget is a ceiling, not a target"))

    @rule(
        "tuning.augment_images",
        Scenario(modality=L("image") | L("image_text")),
        Technique(value=MATCH.technique),
        TechniqueFact(id=MATCH.technique, trains_backbone=True),
        salience=SAL,
        basis=["regularization:data_augmentation", "sources:slide-regularization"],
    )
    def augment_images(self, technique):
        """Image inputs, a technique that trains the backbone -> augmentation for the image domain (photos: crops, flips, jitter)."""
        entry = self.kb.get("regularization", "data_augmentation")
        domain = scenario_image_domain(self.kb, next(iter(self.facts_of(Scenario)), None) or {})
        if domain is None:
            ops = entry.defaults["augmentation"]["image"]
            self.conclude(Hyper(name="augmentation", value=["standard"],
                                why=f"standard image augmentation ({', '.join(ops)}) regularizes "
                                    "and covers lighting/framing shifts"))
            return
        self.conclude(Hyper(name="augmentation", value=[domain.policy],
                            why=f"{domain.policy} images (target_domain): {', '.join(domain.ops)}; not "
                                f"{domain.avoid}"),
                      basis=[f"sources:{s}" for s in domain.sources])

    @rule(
        "tuning.augment_audio",
        Scenario(modality="audio"),
        Technique(value=MATCH.technique),
        TechniqueFact(id=MATCH.technique, trains_backbone=True),
        salience=SAL,
        basis=["regularization:data_augmentation", "sources:park2019specaugment"],
    )
    def augment_audio(self, technique):
        """Audio clips, a technique that trains the backbone -> time shifts, background noise, SpecAugment masks."""
        ops = self.kb.get("regularization", "data_augmentation").defaults["augmentation"]["audio"]
        self.conclude(Hyper(name="augmentation", value=["standard"],
                            why=f"standard audio augmentation ({', '.join(ops)}): the recording conditions of "
                                "the field (noise, offsets, microphones) are the usual shift"))

    @rule(
        "tuning.no_augmentation_cached_features",
        Scenario(modality=L("image") | L("image_text") | L("audio")),
        Technique(value=MATCH.technique),
        TechniqueFact(id=MATCH.technique, trains_backbone=False),
        salience=SAL,
        basis=["techniques:feature_extraction", "regularization:data_augmentation"],
    )
    def no_augmentation_cached_features(self, technique):
        """Images under a frozen, cached backbone -> no augmentation: it would never reach the head."""
        self.conclude(Hyper(name="augmentation", value=[],
                            why="the backbone's features are computed once and cached, so augmented images "
                                "would never reach the head; augmentation applies once the backbone trains"))

    @rule(
        "tuning.no_text_augmentation",
        Scenario(modality="text"),
        salience=SAL,
        basis=["regularization:data_augmentation", "sources:longpre2020augmentation"],
    )
    def no_text_augmentation(self):
        """Text with a pre-trained transformer -> no augmentation by default (kept as a fix)."""
        self.conclude(Hyper(name="augmentation", value=[],
                            why="task-agnostic text augmentation adds little to pre-trained transformers; "
                                "emoji augmentation stays available as a domain-shift fix"))


def lora_settings(kb, model, technique: str = "lora", scaled: Optional[dict] = None) -> dict:
    """LoRA's (or QLoRA's) settings from the knowledge base, with the target modules of ``model``
    (QLoRA adapts every linear layer, Dettmers et al. 2023); ``scaled``: the technique's scaled values for
    this model (``lora_target_modules`` there overrides the model's own targets)."""
    cfg = dict(kb.techniques[technique].defaults.get("lora", {}))
    if (scaled or {}).get("lora_target_modules"):
        cfg["target_modules"] = scaled["lora_target_modules"]
    if cfg.get("target_modules") == "all-linear" or model is None:
        cfg["target_modules"] = ["all-linear"]
    else:
        cfg["target_modules"] = list(kb.models[model].lora_targets) or ["all-linear"]
    return cfg


def scaled_values(kb, technique: str, model, generative: bool, examples: int,
                  task: str = "", compute: str = "") -> tuple[dict, list, list]:
    """The settings a technique's ``scaled`` recipes give a model of this size on this much data for
    this task: (values, why texts, sources); later matching entries override earlier ones."""
    entry = kb.techniques[technique]
    params = kb.models[model].params if model in kb.models else 0
    values: dict = {}
    whys, sources = [], []
    for sc in entry.scaled:
        if params < sc.min_params or examples < sc.min_examples or (sc.max_params and params > sc.max_params):
            continue
        if sc.generative is not None and sc.generative != generative:
            continue
        if sc.tasks and task not in sc.tasks:
            continue
        if sc.computes and compute not in sc.computes:
            continue
        values.update(sc.values)
        whys.append(sc.why)
        sources += [s for s in sc.sources if s not in sources]
    return values, whys, sources


def recipe(kb, technique: str, family: str, size: str, model, generative: bool = False, examples: int = 0,
           task: str = "", compute: str = "") -> dict:
    """A core technique's full recipe on its own: its defaults for (family, size) and the model's scale,
    the backbone frozen for feature extraction and LoRA, trained in full otherwise (the plan's own
    technique gets the freezing rules' finer choice)."""
    entry = kb.techniques[technique]
    values = {k: resolve(v, family, size) for k, v in entry.defaults.items() if k not in DECIDED}
    values.update(scaled_values(kb, technique, model, generative, examples, task, compute)[0])
    if "early_stopping_patience" not in values:  # as tuning.early_stopping concludes for the plan's own
        values["early_stopping_patience"] = kb.threshold("early_stopping_patience")
    frozen = "all" if entry.head_only or entry.adapters else 0
    values.update(frozen_layers=frozen, unfreeze="none", discriminative_lr_decay=1.0)
    if entry.adapters:
        values["lora"] = lora_settings(kb, model, technique, values)
    values.pop("lora_target_modules", None)
    if entry.quantized_base:
        values["quantization"] = dict(entry.defaults.get("quantization", {}))
    return values
