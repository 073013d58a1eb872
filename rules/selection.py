"""Selection rules: which catalog models fit, which are rejected and why, ranking."""

from __future__ import annotations

from knowledge.schema import SPEED_ORDER
from rules._experta import MATCH, NOT, TEST
from rules.base import (
    Candidate,
    Criterion,
    Family,
    LatencyCritical,
    MemoryBudget,
    ModelFact,
    Rejected,
    Scenario,
    Technique,
    TechniqueFact,
    Threshold,
    rule,
)

SAL = 40


def fmt_params(n: int) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.0f}{unit}" if v >= 100 else f"{v:.3g}{unit}"
    return str(n)


def training_memory_gb(params: int, bytes_per_param: float, factor: float) -> float:
    return params * bytes_per_param * factor / 2**30


class SelectionRules:
    # --- what the choice is steered by --------------------------------------
    @rule(
        "selection.criteria_latency_first",
        LatencyCritical(why=MATCH.why),
        salience=SAL,
        basis=["sources:slide-quiz", "sources:slide-model-size"],
    )
    def criteria_latency_first(self, why):
        """Real-time or mobile use -> model size and inference latency are the first criteria."""
        self.conclude(Criterion(rank=1, name="model size and inference latency", why=why))
        self.conclude(Criterion(rank=2, name="architecture and task fit",
                                why="only models built for the task are considered"))
        self.conclude(Criterion(rank=3, name="benchmark quality",
                                why="among models that fit, the best published score wins"))

    @rule(
        "selection.criteria_fit_first",
        Scenario(),
        NOT(LatencyCritical()),
        salience=SAL,
        basis=["sources:slide-suitability", "sources:slide-architecture-fit"],
    )
    def criteria_fit_first(self):
        """No real-time constraint -> task fit, then the compute budget, then quality."""
        self.conclude(Criterion(rank=1, name="architecture and task fit",
                                why="the five suitability questions start from task match"))
        self.conclude(Criterion(rank=2, name="fits the compute and memory budget",
                                why="models that cannot be trained here are rejected"))
        self.conclude(Criterion(rank=3, name="benchmark quality",
                                why="among models that fit, the best published score wins"))

    # --- rejections -----------------------------------------------------------
    @rule(
        "selection.reject_closed_weights",
        ModelFact(id=MATCH.model, open_weights=False),
        salience=SAL,
    )
    def reject_closed_weights(self, model):
        """A model whose weights are not released -> rejected: it cannot be fine-tuned or run locally."""
        self.conclude(
            Rejected(model=model, reason="weights not released (API only): cannot be fine-tuned, "
                                         "frozen or deployed on your own hardware"),
            basis=[f"models:{model}"],
        )

    @rule(
        "selection.reject_too_large_for_device",
        ModelFact(id=MATCH.model, params=MATCH.params),
        Scenario(deployment=MATCH.deployment),
        Threshold(max_params_by_deployment=MATCH.limits),
        TEST(lambda params, deployment, limits:
             limits.get(deployment) is not None and params > limits[deployment]),
        salience=SAL,
        basis=["thresholds:max_params_by_deployment", "sources:slide-model-size"],
    )
    def reject_too_large_for_device(self, model, params, deployment, limits):
        """params > max_params_by_deployment[deployment] -> rejected as too large for the device."""
        self.conclude(
            Rejected(model=model, reason=f"{fmt_params(params)} parameters exceed the "
                                         f"{fmt_params(limits[deployment])} limit for {deployment} deployment"),
            basis=[f"models:{model}"],
        )

    @rule(
        "selection.reject_too_slow",
        ModelFact(id=MATCH.model, speed=MATCH.speed),
        Scenario(deployment=MATCH.deployment, latency_ms=MATCH.budget),
        Threshold(latency_by_speed_ms=MATCH.table),
        TEST(lambda speed, deployment, budget, table:
             budget is not None and table[deployment][speed] > budget),
        salience=SAL,
        basis=["thresholds:latency_by_speed_ms", "sources:slide-model-size"],
    )
    def reject_too_slow(self, model, speed, deployment, budget, table):
        """Estimated latency of the model's speed class on the device > latency_ms -> rejected."""
        est = table[deployment][speed]
        self.conclude(
            Rejected(model=model, reason=f"'{speed.replace('_', ' ')}' models take ~{est:g} ms per input "
                                         f"on {deployment}, over the {budget:g} ms budget"),
            basis=[f"models:{model}"],
        )

    @rule(
        "selection.reject_memory",
        ModelFact(id=MATCH.model, params=MATCH.params),
        Technique(value=MATCH.technique),
        TechniqueFact(id=MATCH.technique, memory_bytes_per_param=MATCH.bpp),
        MemoryBudget(gb=MATCH.gb, assumed=MATCH.assumed),
        Threshold(activation_memory_factor=MATCH.factor),
        TEST(lambda params, bpp, gb, factor: training_memory_gb(params, bpp, factor) > gb),
        salience=SAL,
        basis=["thresholds:activation_memory_factor", "thresholds:default_memory_gb"],
    )
    def reject_memory(self, model, params, technique, bpp, gb, assumed, factor):
        """Training memory (params x bytes per param of the technique x factor) > budget -> rejected."""
        need = training_memory_gb(params, bpp, factor)
        budget = (f"the {gb:g} GiB assumed (give gpu_memory_gb if you have more)" if assumed
                  else f"the {gb:g} GiB available")
        self.conclude(
            Rejected(model=model, reason=f"{technique.replace('_', ' ')} needs ~{need:,.0f} GiB, "
                                         f"more than {budget}"),
            basis=[f"models:{model}", f"techniques:{technique}"],
        )

    @rule(
        "selection.reject_cpu_training",
        ModelFact(id=MATCH.model, params=MATCH.params),
        Scenario(compute="cpu"),
        Technique(value=MATCH.technique),
        TechniqueFact(id=MATCH.technique, trains_backbone=True),
        Threshold(cpu_max_train_params=MATCH.limit),
        TEST(lambda params, limit: params > limit),
        salience=SAL,
        basis=["thresholds:cpu_max_train_params"],
    )
    def reject_cpu_training(self, model, params, technique, limit):
        """On cpu, a technique that backpropagates through > cpu_max_train_params -> rejected."""
        self.conclude(
            Rejected(model=model, reason=f"{technique.replace('_', ' ')} of {fmt_params(params)} parameters "
                                         f"on a CPU is too slow (limit {fmt_params(limit)})"),
            basis=[f"models:{model}"],
        )

    # --- ranking --------------------------------------------------------------
    @rule(
        "selection.rank_candidates",
        Family(value=MATCH.family),
        Technique(value=MATCH.technique),
        Scenario(task=MATCH.task, deployment=MATCH.deployment),
        salience=SAL - 10,
        basis=["sources:slide-model-size", "sources:slide-suitability", "sources:kornblith2019better"],
    )
    def rank_candidates(self, family, task, deployment):
        """After all rejections: rank the remaining models in the order of the selection criteria."""
        rejected = {f["model"] for f in self.facts_of(Rejected)}
        models = self.facts_of(ModelFact)
        fits = [m for m in models if m["id"] not in rejected]
        latency_first = bool(self.facts_of(LatencyCritical))

        def key(m):
            q = m["quality"]
            quality = -(q if q is not None else float("-inf"))
            if latency_first:  # size and latency first: a faster class always ranks higher
                return (SPEED_ORDER[m["speed"]], m["family"] != family, quality, m["params"], m["id"])
            return (m["family"] != family, quality, m["params"], m["id"])

        if fits:
            ranked = sorted(fits, key=key)
            meets = True
        else:  # nothing fits every constraint: offer the smallest, fastest model, flagged
            ranked = sorted(models, key=lambda m: (m["params"], SPEED_ORDER[m["speed"]], m["id"]))[:1]
            meets = False
        for rank, m in enumerate(ranked, 1):
            why = [f"{fmt_params(m['params'])} parameters, {m['speed'].replace('_', ' ')}"]
            if m["family"] == family:
                why.append(f"{family} family fits {task.replace('_', ' ')}")
            else:
                why.append(f"{m['family']} family also handles {task.replace('_', ' ')}")
            if m["quality"] is not None:
                why.append(f"{m['quality_metric']} {m['quality']:g}")
            why.append(m["best_use"])
            if m["offline"]:
                why.append("weights load offline on this install")
            if not meets:
                why.append("no model meets every constraint; this is the smallest and fastest, "
                           "relax the budget or expect to miss it")
            self.conclude(
                Candidate(model=m["id"], rank=rank, meets_constraints=meets, why="; ".join(why)),
                basis=[f"models:{m['id']}"],
            )
