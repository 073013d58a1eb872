"""The plan linter: invariants every plan must satisfy, checked on the plan itself.

    violations = lint(plan, kb)      # [] for a sound plan; else [{check, message}]

The rules build plans; this module checks what they built, independently of
how: candidates inside the latency, size and memory budgets; no fix that the
knowledge base records as useless or harmful for the scenario; no mitigation
or fix that contradicts the plan's own hyperparameter lines; risks that agree
with the technique and with what the user must keep; a ranking that follows
the plan's own selection criteria; every assumed value named. Pure: the plan
dict and the knowledge base in, plain dicts out (no engine, no torch).
"""

from __future__ import annotations

from typing import Any, Iterator

from rules.memory import memory_plan
from rules.tuning import scenario_image_domain

from knowledge.schema import SPEED_ORDER
from rules.fixes import avoided, relevant

# check id -> the invariant, one line (``tlexpert consult --explain`` prints violations by id)
CHECKS = {
    "candidate_rejected": "a model is never both a candidate and rejected",
    "closed_weights": "a candidate's weights are released (it can be adapted and deployed)",
    "latency_budget": "every candidate meeting the constraints fits the latency budget on the deployment target",
    "size_budget": "every candidate meeting the constraints fits the deployment's parameter limit",
    "memory_budget": "every candidate meeting the constraints can be trained in the memory budget",
    "cpu_training": "on a CPU, no candidate needs backpropagation through more parameters than the CPU limit",
    "criteria_ranking": "with 'model size and inference latency' first, no slower class ranks above a faster one",
    "technique_approach": "the technique belongs to the chosen approach",
    "frozen_layers": "frozen layers agree with the technique (all for a frozen backbone, fewer than all when fine-tuning)",
    "freeze_dissimilar": "with dissimilar data (domain_similarity low) fine-tuning freezes no early layer",
    "augmentation_cached": "no data augmentation when the backbone's features are computed once and cached",
    "text_augmentation": "no task-agnostic text augmentation (the plan's own line: it adds little)",
    "forgetting_not_needed": "forgetting is neither a risk nor probed when the source abilities need not be kept",
    "forgetting_frozen": "forgetting is not a risk when the backbone is not trained",
    "forgetting_needed": "forgetting is probed whenever the source abilities must be kept and the backbone trains",
    "fix_avoided": "no mitigation or fix that the knowledge base records as useless or harmful here (avoid_when)",
    "fix_modality": "no mitigation or fix for another input modality",
    "fix_relevant": "no mitigation or fix for another kind of data (relevant_when: emoji handling needs emoji "
                    "seen or a social-media domain)",
    "fix_technique": "no mitigation or fix for another technique",
    "fix_contradicts_plan": "no mitigation or fix that reverses a hyperparameter line of the same plan",
    "learning_rate_cut": "a learning-rate cut stays at or above the floor and is at most 10x "
                         "(more only together with longer training)",
    "assumed_marked": "every value the plan assumed (not given) is listed as assumed",
    "memory_batch": "the model the plan runs trains at the plan's batch size (accumulated and checkpointed if "
                    "need be) within the memory budget",
    "metric_task": "the evaluation and early stopping watch the task's own figure (never macro-F1 for generation)",
    "augmentation_domain": "image augmentation is the policy of the target domain (no flips for documents ...)",
    "epoch_budget": "early-stopping patience below the epoch budget, gradual unfreezing only with several epochs",
    "device_compute": "an assumed serving device is the kind of machine the scenario trains on (no GPU for a "
                      "CPU scenario)",
}


def _v(check: str, message: str) -> dict:
    return {"check": check, "message": message, "invariant": CHECKS[check]}


def _fixes(plan: dict) -> Iterator[tuple[str, str, dict]]:
    for r in plan.risks or ():
        for m in r.get("mitigations") or ():
            yield f"mitigation of {r['pitfall']}", r["pitfall"], m
    for d in plan.diagnoses or ():
        for f in d.get("fixes") or ():
            yield f"fix for {d['pitfall']}", d["pitfall"], f


def _latency_estimate(cand: dict, deployment: str, kb, plan: dict | None = None) -> float | None:
    for key in ("latency_ms", "latency_estimate_ms"):  # a per-candidate estimate, where the plan carries one
        if isinstance(cand.get(key), (int, float)):
            return float(cand[key])
    device = (plan.device or {}).get("class") if plan is not None else None
    scenario = plan.scenario if plan is not None else {}
    model = kb.models.get(cand.get("model"))
    if device in getattr(kb, "sections", {}).get("devices", {}) and model is not None:
        from knowledge.estimates import latency_ms  # the estimate the rules make, from the same numbers

        task = kb.tasks.get(scenario.get("task"))
        return latency_ms(model, kb.devices[device], generative=bool(task and task.generative),
                          sequence_tokens=scenario.get("sequence_length")
                          or _threshold(kb, "sequence_tokens") or 128,
                          image_size=scenario.get("image_size") or 0)
    table = _threshold(kb, "latency_by_speed_ms") or {}
    return (table.get(deployment) or {}).get(cand.get("speed"))


def _threshold(kb, tid: str) -> Any:
    entry = kb.sections["thresholds"].get(tid)
    return entry.value if entry is not None else None


def _head_only(kb, technique) -> bool:
    """Whether ``technique`` trains only a head on frozen features."""
    return technique in kb.techniques and kb.techniques[technique].head_only


def _frozen_count(value: Any, layers: int) -> int:
    if value == "all":
        return layers
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def lint(plan, kb) -> list[dict]:
    """Every invariant the plan breaks, as ``{check, message, invariant}``; [] when sound."""
    out: list[dict] = []
    sc = plan.scenario
    tech_id = plan.technique["choice"]
    tech = kb.techniques[tech_id]
    hp = plan.hyperparameters.as_dict()
    cands = plan.candidates or []
    rejected = {r["model"] for r in plan.rejected or ()}
    assumed_fields = {a["field"] for a in plan.assumptions or ()}

    # --- candidates and budgets (a plan may carry the budgets it used; else the scenario's and the
    # knowledge base's thresholds)
    budget_ms = (plan.device or {}).get("latency_budget_ms", sc.get("latency_ms"))
    limit = (_threshold(kb, "max_params_by_deployment") or {}).get(sc.get("deployment"))
    gb = (plan.memory or {}).get("usable_gb", sc.get("gpu_memory_gb"))
    if gb is None:
        gb = (_threshold(kb, "default_memory_gb") or {}).get(sc.get("compute"))
    factor = _threshold(kb, "activation_memory_factor") or 1.0
    cpu_limit = _threshold(kb, "cpu_max_train_params")
    for c in cands:
        name = c["model"]
        if name in rejected and c.get("meets_constraints", True):
            out.append(_v("candidate_rejected", f"{name} is ranked as a candidate and also rejected"))
        entry = kb.models.get(name)
        if entry is not None and not entry.open_weights:
            out.append(_v("closed_weights", f"{name} is a candidate but its weights are not released"))
        if not c.get("meets_constraints", True):
            continue  # flagged in the plan itself: no model meets every constraint
        est = _latency_estimate(c, sc.get("deployment"), kb, plan)
        if budget_ms is not None and est is not None and est > budget_ms:
            out.append(_v("latency_budget", f"{name}: ~{est:g} ms per input on {sc.get('deployment')}, "
                                            f"over the {budget_ms:g} ms budget"))
        if limit is not None and c["params"] > limit:
            out.append(_v("size_budget", f"{name}: {c['params']:,} parameters over the {limit:,} limit "
                                         f"for {sc.get('deployment')}"))
        if gb is not None:
            need = c.get("memory_gb")
            if not isinstance(need, (int, float)):
                need = c["params"] * tech.memory_bytes_per_param * factor / 2**30
            if need > gb:
                out.append(_v("memory_budget", f"{name}: {tech.name} needs ~{need:,.1f} GiB, over {gb:g} GiB"))
        if cpu_limit and sc.get("compute") == "cpu" and tech.trains_backbone and c["params"] > cpu_limit:
            out.append(_v("cpu_training", f"{name}: {tech.name} of {c['params']:,} parameters on a CPU "
                                          f"(limit {cpu_limit:,})"))
    criteria = plan.criteria or []
    if criteria and criteria[0]["name"] == "model size and inference latency":
        ok = [c for c in cands if c.get("meets_constraints", True)]
        for a, b in zip(ok, ok[1:]):
            if SPEED_ORDER.get(a["speed"], 0) > SPEED_ORDER.get(b["speed"], 0):
                out.append(_v("criteria_ranking", f"{a['model']} ({a['speed']}) ranks above {b['model']} "
                                                  f"({b['speed']}) although size and latency come first"))

    # --- technique and hyperparameters
    if tech.approach != plan.approach["choice"]:
        out.append(_v("technique_approach", f"{tech_id} belongs to {tech.approach}, "
                                            f"the plan chose {plan.approach['choice']}"))
    layers = cands[0]["layers"] if cands else 0
    frozen = hp.get("frozen_layers")
    if tech.head_only or tech.adapters:
        if frozen not in ("all", None):
            out.append(_v("frozen_layers", f"{tech_id} keeps the backbone frozen, the plan freezes {frozen!r}"))
    elif tech.full_update and layers and _frozen_count(frozen, layers) >= layers:
        out.append(_v("frozen_layers", f"fine-tuning with all {layers} layers frozen"))
    dissimilar = sc.get("domain_similarity") == "low"
    if dissimilar and tech.full_update:
        if _frozen_count(frozen, layers) > 0:
            out.append(_v("freeze_dissimilar", f"domain similarity is low, yet {frozen} early layers stay frozen"))
        if hp.get("unfreeze") == "gradual":
            out.append(_v("freeze_dissimilar", "domain similarity is low, yet the lower layers unfreeze gradually"))
    augmentation = list(hp.get("augmentation") or [])
    if augmentation and not tech.trains_backbone:
        out.append(_v("augmentation_cached", f"augmentation {augmentation} with {tech.name}: the features are "
                                             "computed once and cached"))
    if sc.get("modality") == "text" and "standard" in augmentation:
        out.append(_v("text_augmentation", "standard text augmentation in a text plan"))

    epochs, patience = hp.get("epochs"), hp.get("early_stopping_patience")
    if isinstance(epochs, int) and isinstance(patience, int) and 1 < epochs <= patience:
        out.append(_v("epoch_budget", f"patience {patience} within {epochs} epochs can never stop the run"))
    if isinstance(epochs, int) and epochs < 2 and hp.get("unfreeze") == "gradual":
        out.append(_v("epoch_budget", "gradual unfreezing, one group per epoch, in a single epoch"))

    # --- the task's figure, the domain's augmentation, the device, the batch in memory
    task = kb.tasks.get(sc.get("task"))
    ev = plan.evaluation
    if task is not None:
        stop = ev.stop_on or ""
        if stop and stop != task.stop_on:
            out.append(_v("metric_task", f"early stopping watches {stop!r}, the task's figure is {task.stop_on!r}"))
        if task.generative and "macro-F1" in " ".join([stop, *ev.metrics]):
            out.append(_v("metric_task", "a generation plan judged by macro-F1"))
        es_why = ((plan.hyperparameters_why or {}).get("early_stopping_patience") or {}).get("text", "")
        if task.generative and "macro-F1" in es_why:
            out.append(_v("metric_task", "a generation plan stops early on macro-F1"))
    if sc.get("modality") in ("image", "image_text") and tech.trains_backbone:
        want = scenario_image_domain(kb, sc)
        if want is not None and augmentation and want.policy not in augmentation:
            out.append(_v("augmentation_domain", f"augmentation {augmentation} for {want.policy} images"))
    device = (plan.device or {}).get("class")
    if "device_class" in assumed_fields and sc.get("deployment") in ("server", "batch") and device:
        by_compute = _threshold(kb, "serving_device_by_compute") or {}
        want_device = by_compute.get(sc.get("compute"))
        if want_device and device != want_device:
            out.append(_v("device_compute", f"serving on an assumed {device} although the scenario trains on "
                                            f"{sc.get('compute')}"))
    model_id = plan.model.id if plan.model else None
    runs = {c["model"] for c in cands if c.get("meets_constraints", True)}
    if model_id in runs and gb is not None and tech.kind == "core" and isinstance(hp.get("batch_size"), int):
        fitted = memory_plan(kb, model_id, tech_id, gb, sc)  # any batch fits by accumulation if micro-batch 1 does
        if fitted is not None and not fitted[2]:
            out.append(_v("memory_batch", f"{model_id}: {tech.name} needs ~{fitted[0]:,.1f} GiB{fitted[1]}, "
                                          f"over {gb:g} GiB"))

    # --- risks and the evaluation
    risks = {r["pitfall"]: r for r in plan.risks or ()}
    probes = plan.evaluation.probes
    retain = sc.get("retain_source")
    if retain == "no":
        if "catastrophic_forgetting" in risks:
            out.append(_v("forgetting_not_needed", "forgetting is rated a risk, but the source abilities "
                                                   "need not be kept (retain_source: no)"))
        if "forgetting" in probes:
            out.append(_v("forgetting_not_needed", "the forgetting probe runs although retain_source is no"))
    if "catastrophic_forgetting" in risks and not tech.trains_backbone:
        out.append(_v("forgetting_frozen", f"forgetting is rated a risk under {tech.name}, "
                                           "which does not change the backbone"))
    if (retain == "yes" and tech.trains_backbone and plan.approach["choice"] == "transfer"
            and "forgetting" not in probes):
        out.append(_v("forgetting_needed", "the source abilities must be kept, but forgetting is not probed"))

    # --- mitigations and fixes
    floor = _threshold(kb, "learning_rate_floor") or 0.0
    seen = [e["symptom"] for d in plan.diagnoses or () for e in d.get("evidence") or ()]
    for where, pitfall, f in _fixes(plan):
        fix = kb.fixes.get(f["fix"])
        if fix is None:
            continue
        label = f"{where}: {f['fix']}"
        if avoided(fix, sc, pitfall):
            out.append(_v("fix_avoided", f"{label} is offered where the knowledge base records it as "
                                         f"useless or harmful: {fix.avoid_why}"))
        if not relevant(fix, sc, seen):
            out.append(_v("fix_relevant", f"{label} is for other data: {fix.relevant_when}"))
        if fix.modalities and sc.get("modality") not in [m.value for m in fix.modalities]:
            out.append(_v("fix_modality", f"{label} is for {', '.join(m.value for m in fix.modalities)} inputs"))
        if fix.applies_to and tech_id not in fix.applies_to:
            out.append(_v("fix_technique", f"{label} applies to {', '.join(fix.applies_to)}, not {tech_id}"))
        changes = f.get("changes") or []
        raises_epochs = any(ch["field"] == "epochs" and (ch["to"] or 0) > (ch["from"] or 0) for ch in changes)
        for ch in changes:
            fld, before, after = ch["field"], ch["from"], ch["to"]
            if fld == "augmentation" and "standard" in (after or []) and "standard" not in (before or []):
                if not tech.trains_backbone or sc.get("modality") == "text":
                    out.append(_v("fix_contradicts_plan", f"{label} adds standard augmentation against the "
                                                          "plan's augmentation line"))
            if fld == "frozen_layers" and dissimilar and tech.full_update and \
                    _frozen_count(after, layers) > _frozen_count(before, layers):
                out.append(_v("fix_contradicts_plan", f"{label} freezes layers that the plan adapts because "
                                                      "the data are dissimilar"))
            if fld == "unfreeze" and after == "gradual" and dissimilar and tech.full_update:
                out.append(_v("fix_contradicts_plan", f"{label} unfreezes gradually, against the plan's "
                                                      "'every layer trains from the start'"))
            if fld == "technique" and _head_only(kb, after) and dissimilar and tech.full_update \
                    and pitfall not in fix.avoid_except:  # measured to help against that pitfall all the same
                out.append(_v("fix_contradicts_plan", f"{label} freezes the whole backbone that the plan "
                                                      "adapts because the data are dissimilar"))
            if fld == "learning_rate" and isinstance(before, (int, float)) and isinstance(after, (int, float)) \
                    and after < before:
                if after < floor * (1 - 1e-9):
                    out.append(_v("learning_rate_cut", f"{label}: {before:g} → {after:g} goes below the "
                                                       f"{floor:g} floor"))
                if after < before * 0.1 * (1 - 1e-9) and not raises_epochs:
                    out.append(_v("learning_rate_cut", f"{label}: {before:g} → {after:g} is a cut of more "
                                                       "than 10x without longer training"))

    # --- assumptions
    for fld in sc.get("assumed") or ():
        if fld == "retain_source" and "forgetting" not in probes:
            continue  # nothing in the plan depends on it (the backbone does not train)
        if fld not in assumed_fields:
            out.append(_v("assumed_marked", f"{fld} = {sc.get(fld)!r} was not given but is not listed as assumed"))
    if sc.get("gpu_memory_gb") is None:
        if "gpu_memory_gb" not in assumed_fields:
            out.append(_v("assumed_marked", "the training memory was not given but is not listed as assumed"))
        for r in plan.rejected or ():
            for reason in r["reasons"]:
                if "GiB" in reason and "assumed" not in reason:
                    out.append(_v("assumed_marked", f"{r['model']}: '{reason}' rests on an assumed memory "
                                                    "without saying so"))
    return out


# --- the scenario grid the tests and bench/bench_lint.py lint


def grid_values(kb) -> dict[str, list]:
    """Every scenario field with the values the grid covers: each enum's every value,
    sizes on both sides of every data-size threshold, budgets on both sides of the
    latency and memory thresholds, domain tags shared or not, each symptom."""
    from rules.scenario import ENUMS, FIELDS

    small, medium, huge = (kb.threshold(t) for t in
                           ("dataset_small_max", "dataset_medium_max", "full_training_min_examples"))
    values: dict[str, list] = {
        "task": sorted(kb.tasks),
        "dataset_size": [1, small, small + 1, medium, medium + 1, huge - 1, huge],
        **{k: [*v, None] for k, v in ENUMS.items()},  # None: left out, the default is assumed
        "num_classes": [None, 2, 10, 1000],
        "gpu_memory_gb": [None, 2, kb.threshold("limited_gpu_memory_gb"), 24, 80],
        "latency_ms": [None, 5, 30, kb.threshold("latency_critical_ms"), 200, 1000, 100000],
        "sequence_length": [None, 10, 512, 4096],
        "image_size": [None, 64, 1024],
        "modality": [None],
        "source_domain": [[], ["wikipedia", "news"], ["news"]],
        "target_domain": [[], ["customer reviews", "informal", "emoji"], ["news"]],
        "symptoms": [[], *([s] for s in sorted(kb.symptoms)), ["retention_drop", "unknown_tokens"],
                     ["below_baseline", "val_loss_rising"]],
    }
    # fields some knowledge bases add: the device to deploy on, the language of the text
    if "device_class" in FIELDS and getattr(kb, "devices", None):
        values["device_class"] = [None, *sorted(kb.devices)]
    if "language" in FIELDS and "known_languages" in kb.sections["thresholds"]:
        values["language"] = [None, *kb.threshold("known_languages")]
    missing = [f for f in FIELDS if f not in values]
    if missing:  # a field the grid does not know yet: a test fails here rather than skip it silently
        raise KeyError(f"the lint grid has no values for scenario field(s) {missing}")
    return values


CORE = ("task", "dataset_size", "task_similarity", "domain_similarity", "deployment")
GRID_SIZE = 10_080


def grid(kb, n: int = GRID_SIZE, core: tuple = CORE, seed: int = 0) -> list[dict]:
    """The lint grid: ``n`` scenarios cycling through the full product of the ``core``
    fields' values; every other field takes each of its values equally often, in a
    seeded shuffled order (so no two fields move in step)."""
    import itertools
    import random

    values = grid_values(kb)
    core = tuple(f for f in core if f in values)
    rest = [f for f in values if f not in core]
    product = list(itertools.product(*(values[f] for f in core)))
    rng = random.Random(seed)
    columns = {}
    for f in rest:
        col = [values[f][k % len(values[f])] for k in range(n)]
        rng.shuffle(col)
        columns[f] = col
    out = []
    for i in range(n):
        s = dict(zip(core, product[i % len(product)]))
        s.update({f: columns[f][i] for f in rest})
        s = {k: v for k, v in s.items() if v is not None and v != []}
        if "language" in s and kb.tasks[s["task"]].modality.value == "image":
            del s["language"]  # a language is for tasks with text
        if s.get("num_classes", 0) > s["dataset_size"]:
            del s["num_classes"]  # every class needs an example: such a scenario is refused, not planned
        s["id"] = f"grid-{i}"
        out.append(s)
    return out
