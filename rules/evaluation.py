"""Evaluation rules: how many seeds the comparison runs, and how the data are split to judge it."""

from __future__ import annotations

from rules.base import Protocol, RunModel, Scenario, Seeds, TaskFact, Technique, rule, task_metrics
from rules._experta import MATCH

SAL = 20


class EvaluationRules:
    @rule(
        "evaluation.seeds_by_cost",
        RunModel(model=MATCH.model),
        Technique(value=MATCH.technique),
        salience=SAL,
        basis=["thresholds:default_seeds", "thresholds:few_seeds_params", "thresholds:one_seed_params"],
    )
    def seeds_by_cost(self, model, technique):
        """The model the plan runs -> seeds by the cost of one run (fewer for billion-parameter models)."""
        kb = self.kb
        params = kb.models[model].params
        examples = next(iter(self.facts_of(Scenario)))["dataset_size"]
        cost = params * examples  # what one run costs grows with both (compute ~ 6 x params x tokens)
        n = kb.threshold("default_seeds")
        size = f"{params / 1e9:.3g}B" if params >= 1e9 else f"{params / 1e6:.3g}M"
        what = f"{size} parameters over {examples:,} examples"
        if params >= kb.threshold("one_seed_params") or cost >= kb.threshold("one_seed_cost"):
            self.conclude(Seeds(value=1, why=f"one seed: one run ({what}) is the budget; judge the comparison per "
                                             "test example (paired tests, bootstrap intervals over examples); "
                                             "the seed variance is not measured"))
        elif params >= kb.threshold("few_seeds_params") or cost >= kb.threshold("few_seeds_cost"):
            self.conclude(Seeds(value=min(3, n), why=f"{min(3, n)} seeds, not {n}: one run ({what}) takes "
                                                      "GPU-hours; bootstrap intervals over the test examples give "
                                                      "the spread"))
        else:
            probe = not kb.techniques[technique].trains_backbone
            self.conclude(Seeds(value=n, why=(
                f"{n} seeds: the linear probe is deterministic, so the seeds vary the split and the other "
                "techniques compared" if probe else
                f"{n} seeds: fine-tuning outcomes vary with the seed, and a run of this size is cheap enough "
                "to repeat")))

    @rule(
        "evaluation.protocol",
        Scenario(dataset_size=MATCH.n),
        TaskFact(generative=False),
        salience=SAL,
        basis=["thresholds:few_shot_per_class", "thresholds:validation_share", "thresholds:test_share",
               "thresholds:large_holdout_examples", "sources:tunstall2022setfit"],
    )
    def protocol(self, n):
        """Labelled examples per class -> a held-out split, or cross-validation and a warning when few-shot."""
        k = next(iter(self.facts_of(Scenario))).get("num_classes")
        per = n / k if k else None
        limit = self.kb.threshold("few_shot_per_class")
        if per is not None and per <= limit:
            self.conclude(Protocol(text=(
                f"few-shot ({per:.0f} examples per class): a held-out split would leave one or two examples "
                "per class to judge by, so estimate by repeated stratified cross-validation and report the "
                "spread; before trusting a number, label a separate test set (at least 20-30 per class); "
                "prefer methods built for few examples (a linear probe or SetFit on sentence embeddings, "
                "class prototypes)")))
        else:
            scen = next(iter(self.facts_of(Scenario)))
            classes = k or any("macro-F1" in m for m in task_metrics(self.kb.tasks[scen["task"]], scen))
            by_class = "stratified by class" if classes else "drawn at random"
            large = self.kb.threshold("large_holdout_examples")
            v, t, cap = holdout(self.kb, self.kb.tasks[scen["task"]], n)
            share = (f"{1 - v - t:.0%} training, {v:.0%} validation (model and early-stopping choices), {t:.0%} "
                     "test, touched once" if not cap else
                     f"validation and test sets of at most {large:,} examples each (a {max(v, t):.0%} share of "
                     f"{n:,} would waste labels without narrowing the intervals much), the rest for training; the "
                     "test set touched once")
            self.conclude(Protocol(text=(
                f"held out, {by_class}: {share}; when examples share a source (a speaker, patient, document, "
                "repository, query, site or time period) split by that group instead, or the test measures "
                "memory of the source")))


def holdout(kb, task, n: float) -> tuple:
    """(validation share, test share, cap) of the ``n`` labelled examples a plan for ``task`` holds out:
    a classifier's sets are capped at ``large_holdout_examples`` where a share would exceed it (cap 0:
    none needed); a generator's (80/10/10) are not. The plan states it, the run and the estimate use it."""
    if task.generative:
        g = kb.threshold("generation_holdout_share")
        return g, g, 0
    v, t = kb.threshold("validation_share"), kb.threshold("test_share")
    large = kb.threshold("large_holdout_examples")
    return v, t, (large if n * max(v, t) > large else 0)
