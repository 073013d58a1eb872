"""Hyperparameter rules: learning rate, frozen layers, unfreezing, regularization, LoRA."""

from __future__ import annotations

import math

from rules._experta import L, MATCH
from rules.base import Candidate, Family, Hyper, Scenario, SizeClass, Technique, Threshold, rule

SAL = 20

KEYED = {"cnn", "nlp_transformer", "multimodal", "vision_transformer",
         "small", "medium", "large", "huge", "default"}


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
        """A chosen technique -> its default learning rate, weight decay, dropout, epochs, batch size."""
        entry = self.kb.techniques[technique]
        for name, value in entry.defaults.items():
            if name in ("frozen_layers", "unfreeze", "lora"):
                continue  # decided by the rules below
            v = resolve(value, family, size)
            self.conclude(
                Hyper(name=name, value=v, why=f"{entry.name} default for {family} ({size} data)"),
                basis=[f"techniques:{technique}"],
            )

    @rule(
        "tuning.freeze_backbone",
        Technique(value="feature_extraction"),
        salience=SAL,
        basis=["techniques:feature_extraction"],
    )
    def freeze_backbone(self):
        """Feature extraction -> the whole backbone is frozen; only the new head trains."""
        self.conclude(Hyper(name="frozen_layers", value="all", why="feature extraction keeps the backbone fixed"))
        self.conclude(Hyper(name="unfreeze", value="none", why="nothing to unfreeze"))

    @rule(
        "tuning.lora_adapters",
        Technique(value="lora"),
        Candidate(rank=1, model=MATCH.model),
        salience=SAL,
        basis=["techniques:lora", "sources:peft-docs"],
    )
    def lora_adapters(self, model):
        """LoRA -> rank/alpha/dropout from the knowledge base, target modules from the top candidate."""
        cfg = dict(self.kb.techniques["lora"].defaults.get("lora", {}))
        targets = list(self.kb.models[model].lora_targets) or ["all-linear"]
        cfg["target_modules"] = targets
        self.conclude(
            Hyper(name="lora", value=cfg,
                  why=f"rank {cfg.get('rank')} adapters on {', '.join(targets)} of {model}"),
            basis=[f"models:{model}"],
        )
        self.conclude(Hyper(name="frozen_layers", value="all", why="LoRA freezes the pre-trained weights"))
        self.conclude(Hyper(name="unfreeze", value="none", why="only adapters and the head train"))

    @rule(
        "tuning.freeze_early_layers",
        Technique(value="fine_tuning"),
        SizeClass(value="medium"),
        Candidate(rank=1, model=MATCH.model),
        Threshold(freeze_fraction_medium_data=MATCH.fraction),
        salience=SAL,
        basis=["sources:slide-forgetting", "thresholds:dataset_medium_max",
               "thresholds:freeze_fraction_medium_data", "techniques:gradual_unfreezing",
               "techniques:discriminative_lr"],
    )
    def freeze_early_layers(self, model, fraction):
        """Fine-tuning on medium data -> freeze the early layers, unfreeze gradually, discriminative LRs."""
        layers = self.kb.models[model].layers
        k = math.floor(layers * fraction)
        self.conclude(
            Hyper(name="frozen_layers", value=k,
                  why=f"a small target set with too many layers tuned causes forgetting: "
                      f"freeze the first {k} of {layers} layers of {model}"),
            basis=[f"models:{model}"],
        )
        self.conclude(Hyper(name="unfreeze", value="gradual",
                            why="unfreeze one layer group per epoch, top first (ULMFiT)"))
        decay = self.kb.techniques["discriminative_lr"].defaults["discriminative_lr_decay"]
        self.conclude(Hyper(name="discriminative_lr_decay", value=decay,
                            why="lower layers learn slower by this factor per group (ULMFiT)"))

    @rule(
        "tuning.tune_all_layers",
        Technique(value=L("fine_tuning") | L("from_scratch")),
        SizeClass(value=L("large") | L("huge")),
        salience=SAL,
        basis=["techniques:fine_tuning"],
    )
    def tune_all_layers(self):
        """Fine-tuning (or training) on large data -> all layers train from the start."""
        self.conclude(Hyper(name="frozen_layers", value=0, why="enough data to update every layer"))
        self.conclude(Hyper(name="unfreeze", value="none", why="all layers train from the start"))

    @rule(
        "tuning.augment_images",
        Scenario(modality=L("image") | L("image_text")),
        salience=SAL,
        basis=["regularization:data_augmentation", "sources:slide-regularization"],
    )
    def augment_images(self):
        """Image inputs -> standard image augmentation (crops, flips, colour jitter)."""
        ops = self.kb.get("regularization", "data_augmentation").defaults["augmentation"]["image"]
        self.conclude(Hyper(name="augmentation", value=["standard"],
                            why=f"standard image augmentation ({', '.join(ops)}) regularizes "
                                "and covers lighting/framing shifts"))

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
