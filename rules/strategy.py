"""Strategy rules: architecture family, transfer vs full training, technique."""

from __future__ import annotations

from rules._experta import L, MATCH, TEST
from rules.base import (
    Approach,
    ComputeLimited,
    Family,
    Scenario,
    SizeClass,
    Preferred,
    TaskFact,
    Threshold,
    rule,
)

SAL = 50


def _wants_scratch(size, compute, big_compute, task_sim, domain_sim) -> bool:
    return (
        size == "huge"
        and compute in big_compute
        and (task_sim == "different" or domain_sim == "low")
    )


class StrategyRules:
    # --- architecture -------------------------------------------------------
    @rule(
        "architecture.family_from_task",
        TaskFact(id=MATCH.task, family=MATCH.family),
        salience=SAL,
        basis=["sources:slide-architecture-fit"],
    )
    def family_from_task(self, task, family):
        """The task's entry names its family -> that architecture family (Architecture and Task Fit)."""
        arch = self.kb.get("architectures", family)
        self.conclude(
            Family(value=family, why=f"{arch.name} are best suited for {task.replace('_', ' ')}"),
            basis=[f"tasks:{task}", f"architectures:{family}"],
        )

    # --- approach -----------------------------------------------------------
    @rule(
        "approach.full_training",
        SizeClass(value=MATCH.size),
        Scenario(compute=MATCH.compute, task_similarity=MATCH.ts, domain_similarity=MATCH.ds),
        Threshold(full_training_compute=MATCH.big),
        TEST(lambda size, compute, big, ts, ds: _wants_scratch(size, compute, big, ts, ds)),
        salience=SAL,
        basis=["approaches:full_training", "thresholds:full_training_min_examples",
               "thresholds:full_training_compute"],
    )
    def full_training(self, compute, ts, ds):
        """Huge labeled data + datacenter compute + a dissimilar source -> train from scratch."""
        gap = "the source task differs" if ts == "different" else "the source data is dissimilar"
        self.conclude(Approach(
            value="full_training",
            why=f"a large labeled dataset, significant compute ({compute}) and {gap}: "
                "full training can outperform transfer",
        ))

    @rule(
        "approach.transfer",
        SizeClass(value=MATCH.size),
        Scenario(compute=MATCH.compute, task_similarity=MATCH.ts, domain_similarity=MATCH.ds),
        Threshold(full_training_compute=MATCH.big),
        TEST(lambda size, compute, big, ts, ds: not _wants_scratch(size, compute, big, ts, ds)),
        salience=SAL,
        basis=["approaches:transfer"],
    )
    def transfer(self, size, compute, big):
        """Otherwise (limited data, compute, or a similar source) -> transfer learning."""
        if size != "huge":
            why = "transfer needs a smaller labeled dataset and often reaches high accuracy with limited data"
        elif compute not in big:
            why = f"'{compute}' is not enough for full training; transfer is less expensive"
        else:
            why = "the source is similar enough that pre-trained features help even with this much data"
        self.conclude(Approach(value="transfer", why=why))

    # --- technique ----------------------------------------------------------
    @rule(
        "technique.from_scratch",
        Approach(value="full_training"),
        salience=SAL - 5,
        basis=["techniques:from_scratch"],
    )
    def from_scratch(self):
        """Approach is full training -> technique: train the architecture from scratch."""
        self.conclude(Preferred(value="from_scratch", why="full training starts from random weights"))

    @rule(
        "technique.feature_extraction",
        Approach(value="transfer"),
        SizeClass(value="small"),
        TaskFact(generative=False, dense=False),
        Scenario(task_similarity=MATCH.ts),
        salience=SAL - 5,
        basis=["techniques:feature_extraction", "thresholds:dataset_small_max"],
    )
    def feature_extraction(self, ts):
        """Transfer with small (limited) data -> feature extraction."""
        why = "data is limited"
        why += ", and the target task is similar to the source task" if ts != "different" else (
            "; with a different task a frozen backbone is still safer than tuning it on so few examples"
        )
        self.conclude(Preferred(value="feature_extraction", why=why))

    @rule(
        "technique.fine_tuning_small_dense",
        Approach(value="transfer"),
        SizeClass(value="small"),
        TaskFact(dense=True),
        salience=SAL - 5,
        basis=["techniques:fine_tuning", "sources:he2019rethinking"],
    )
    def fine_tuning_small_dense(self):
        """Transfer with few images on a dense task (masks, boxes) -> fine-tune the pre-trained task model."""
        self.conclude(Preferred(
            value="fine_tuning",
            why="few images, but each carries a mask or boxes (thousands of labelled pixels): fine-tune the model "
                "pre-trained for this task, head and decoder included; a classifier head on frozen features "
                "cannot predict masks or boxes",
        ))

    @rule(
        "technique.lora_small_generative",
        Approach(value="transfer"),
        SizeClass(value="small"),
        TaskFact(generative=True),
        salience=SAL - 5,
        basis=["techniques:lora", "sources:hu2022lora"],
    )
    def lora_small_generative(self):
        """Transfer with small data on a generative task -> LoRA (a frozen backbone with a new head cannot generate)."""
        self.conclude(Preferred(
            value="lora",
            why="data is limited and the task generates text: a head on frozen features cannot generate, "
                "while low-rank adapters change few weights and keep the model's abilities",
        ))

    @rule(
        "technique.lora",
        Approach(value="transfer"),
        SizeClass(value=L("medium") | L("large") | L("huge")),
        ComputeLimited(value=True, why=MATCH.limit),
        salience=SAL - 5,
        basis=["techniques:lora"],
    )
    def lora(self, limit):
        """Transfer with enough data but limited compute -> LoRA."""
        self.conclude(Preferred(
            value="lora",
            why=f"the task needs adaptation but computational resources are limited ({limit})",
        ))

    @rule(
        "technique.fine_tuning",
        Approach(value="transfer"),
        SizeClass(value=L("medium") | L("large") | L("huge")),
        ComputeLimited(value=False),
        Scenario(task_similarity=MATCH.ts),
        salience=SAL - 5,
        basis=["techniques:fine_tuning"],
    )
    def fine_tuning(self, ts):
        """Transfer with sufficient data and compute -> fine-tuning."""
        rel = {"same": "the same", "related": "moderately different", "different": "different"}[ts]
        self.conclude(Preferred(
            value="fine_tuning",
            why=f"sufficient data is available and the target task is {rel} from the source task",
        ))
