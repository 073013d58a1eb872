"""Risk rules: the pitfalls this scenario runs into, with likelihood and mitigations."""

from __future__ import annotations

from rules._experta import L, MATCH, TEST
from rules.base import Family, Risk, Scenario, SizeClass, Technique, rule

SAL = 10


def _shared_tags(a, b) -> bool:
    return bool({t.lower() for t in a} & {t.lower() for t in b})


def _retain_note(retain: str) -> str:
    if retain == "yes":
        return "; the source abilities must be kept"
    return "; whether the source abilities must be kept was not said: the forgetting probe measures it"


class RiskRules:
    def risk(self, pitfall: str, likelihood: str, why: str):
        """Conclude a Risk whose mitigations are the pitfall's fixes that change this plan."""
        if pitfall == "catastrophic_forgetting":
            likelihood, why = self._forgetting_matters(likelihood, why)
        self.conclude(Risk(pitfall=pitfall, likelihood=likelihood, why=why),
                      basis=[f"pitfalls:{pitfall}"])

    def _forgetting_matters(self, likelihood: str, why: str) -> tuple[str, str]:
        """Forgetting is a risk to the extent the source abilities are needed. Unsaid for a classifier
        (a new head replaces the source's, and nobody asks the adapted model for ImageNet classes), it is
        rated low; a generative model's source abilities (following instructions, general text) are what
        the adapted model is used for, so its rating stands."""
        scen = next(iter(self.facts_of(Scenario)), None)
        if scen is None or scen.get("retain_source") == "yes":
            return likelihood, why
        task = self.kb.tasks.get(scen.get("task"))
        if task is None or task.generative or likelihood == "low":
            return likelihood, why
        return "low", (why + f" (rated low, not {likelihood}: a classifier's new head replaces the source's, so "
                             "forgetting matters only if the model must keep its source abilities; set "
                             "retain_source yes if it must)")

    # Forgetting is a risk only where the source abilities must be kept (or may have to be:
    # retain_source unknown, and the forgetting probe measures it); retain_source 'no' drops it.
    @rule(
        "risk.forgetting_many_layers_small_data",
        Technique(updates="all", pretrained=True),
        SizeClass(value="medium"),
        Scenario(retain_source=MATCH.retain),
        TEST(lambda retain: retain != "no"),
        salience=SAL,
        basis=["sources:slide-forgetting"],
    )
    def forgetting_medium(self, retain):
        """Fine-tuning with a medium target set, source abilities needed -> catastrophic forgetting is likely."""
        self.risk("catastrophic_forgetting", "high",
                  "a small target dataset with many layers fine-tuned is the first cause of forgetting"
                  + _retain_note(retain))

    @rule(
        "risk.forgetting_full_fine_tuning",
        Technique(updates="all", pretrained=True),
        SizeClass(value=L("large") | L("huge")),
        Scenario(retain_source=MATCH.retain),
        TEST(lambda retain: retain != "no"),
        salience=SAL,
        basis=["sources:slide-forgetting"],
    )
    def forgetting_large(self, retain):
        """Fine-tuning every layer, source abilities needed -> forgetting is possible if the learning rate is too high."""
        self.risk("catastrophic_forgetting", "medium",
                  "every layer trains; a learning rate too high overwrites source knowledge" + _retain_note(retain))

    @rule(
        "risk.forgetting_lora",
        Technique(updates="adapters"),
        Scenario(retain_source=MATCH.retain),
        TEST(lambda retain: retain != "no"),
        salience=SAL,
        basis=["sources:hu2022lora"],
    )
    def forgetting_lora(self, retain, **_):
        """LoRA or QLoRA, source abilities needed -> forgetting is unlikely: the pre-trained weights are not changed."""
        self.risk("catastrophic_forgetting", "low",
                  "LoRA leaves the pre-trained weights untouched (adapters can be removed)" + _retain_note(retain))

    @rule(
        "risk.negative_transfer_dissimilar",
        Scenario(task_similarity=MATCH.ts, domain_similarity=MATCH.ds),
        Technique(pretrained=True),
        TEST(lambda ts, ds: ts == "different" or ds == "low"),
        salience=SAL,
        basis=["sources:slide-negative-transfer", "sources:wang2019negative"],
    )
    def negative_transfer(self, ts, ds):
        """A different task or dissimilar data under transfer -> negative transfer risk."""
        both = ts == "different" and ds == "low"
        parts = [p for p, on in (("the source task differs", ts == "different"),
                                 ("source and target domains are dissimilar", ds == "low")) if on]
        self.risk("negative_transfer", "high" if both else "medium",
                  " and ".join(parts) + ": compare against a no-transfer baseline")

    @rule(
        "risk.domain_shift_similarity",
        Scenario(domain_similarity=MATCH.ds),
        TEST(lambda ds: ds in ("medium", "low")),
        salience=SAL,
        basis=["sources:slide-domain-shift"],
    )
    def domain_shift(self, ds):
        """Source and target data differ (medium/low similarity) -> domain shift risk."""
        self.risk("domain_shift", "high" if ds == "low" else "medium",
                  f"{ds} similarity between source and target data")

    @rule(
        "risk.domain_shift_tags",
        Scenario(source_domain=MATCH.src, target_domain=MATCH.tgt, domain_similarity="high"),
        TEST(lambda src, tgt: bool(src) and bool(tgt) and not _shared_tags(src, tgt)),
        salience=SAL,
        basis=["sources:slide-domain-shift"],
    )
    def domain_shift_tags(self, src, tgt):
        """Source and target domain tags share nothing (despite 'high' similarity) -> check for shift."""
        self.risk("domain_shift", "low",
                  f"source domain ({', '.join(src)}) and target domain ({', '.join(tgt)}) share no tag")

    @rule(
        "risk.overfitting_fine_tuning_little_data",
        Technique(pretrained=True, updates=L("all") | L("adapters")),
        SizeClass(value="medium"),
        salience=SAL,
        basis=["sources:slide-regularization"],
    )
    def overfitting(self):
        """Training backbone weights on a medium dataset -> overfitting risk (lower for adapters)."""
        if next(iter(self.facts_of(Technique)))["updates"] == "all":
            self.risk("overfitting", "medium", "many trained parameters for a few thousand examples")
        else:  # LoRA trains ~0.1-1% of the weights: a smaller capacity to memorise, not none
            self.risk("overfitting", "low", "the adapters are a small share of the weights, but a few thousand "
                                            "examples over several epochs can still be memorised")

    @rule(
        "risk.overfitting_small_data",
        Technique(updates="head"),
        SizeClass(value="small"),
        salience=SAL,
        basis=["sources:slide-regularization"],
    )
    def overfitting_small(self):
        """Feature extraction on very little data -> the head itself can overfit."""
        self.risk("overfitting", "low", "even a linear head can overfit a few hundred examples")

    @rule(
        "risk.underfitting_frozen_features",
        Technique(updates="head"),
        Scenario(task_similarity=MATCH.ts, domain_similarity=MATCH.ds),
        TEST(lambda ts, ds: ts == "different" or ds == "low"),
        salience=SAL,
        basis=["sources:yosinski2014"],
    )
    def underfitting(self):
        """Frozen features from a dissimilar source -> underfitting risk."""
        self.risk("underfitting", "medium", "frozen features from a dissimilar source may not separate the classes")

    @rule(
        "risk.failed_run_small_transformer",
        Technique(updates="all", pretrained=True),
        Family(value=L("nlp_transformer") | L("multimodal") | L("vision_transformer")),
        SizeClass(value="medium"),
        salience=SAL,
        basis=["sources:mosbach2021stability"],
    )
    def failed_run(self):
        """Transformer fine-tuning on a few thousand examples -> some seeds may fail."""
        self.risk("failed_run", "medium",
                  "transformer fine-tuning on small data fails on some seeds: run several seeds")

    @rule(
        "risk.divergence_from_scratch",
        Technique(pretrained=False),
        salience=SAL,
        basis=["sources:goyal2017warmup"],
    )
    def divergence(self):
        """Training from scratch at a high learning rate -> divergence risk without warm-up."""
        self.risk("divergence", "medium", "large learning rates from random weights need warm-up")
