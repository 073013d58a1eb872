"""Assemble the Plan contract (``rules.contract.Plan``) from the engine's working memory."""

from __future__ import annotations

import math

from rules.base import (
    Approach,
    Assumed,
    Candidate,
    Clarify,
    Criterion,
    DeployDevice,
    Diagnosis,
    EmpiricalVerdict,
    Evidence,
    Family,
    Fit,
    Hyper,
    LatencyBudget,
    MemoryBudget,
    Protocol,
    Recipe,
    Rejected,
    Risk,
    RunModel,
    Seeds,
    SizeClass,
    Technique,
    benchmark_of,
    task_metrics,
    sequence_tokens,
    unfreeze,
)
from rules.contract import SCHEMA_VERSION, Plan
from rules.evaluation import holdout
from rules.tuning import scenario_image_domain
from rules.fixes import LIST_FIELDS, concrete_fixes, findings_of, inert_fields
LIKELIHOOD_ORDER = {"high": 0, "medium": 1, "low": 2}
MAX_FIXES = 4
MAX_MITIGATIONS = 3


def why(fact) -> dict:
    """The explanation of one plan line: rule id, knowledge entries, reason."""
    return {"rule": fact["rule"], "knowledge": list(unfreeze(fact["basis"])), "text": fact.get("why", "")}


def _one(engine, cls):
    facts = engine.facts_of(cls)
    if len(facts) != 1:  # a knowledge-base or rule bug, not a user error
        raise RuntimeError(f"expected exactly one {cls.__name__}, the rules concluded {len(facts)}: "
                           f"{[f.as_dict() for f in facts]}")
    return facts[0]


def empirical_section(engine, ranking: dict, candidates: list[dict]) -> tuple[dict, list[dict]]:
    """The plan's ``empirical_ranking`` and the candidates in the order the rules settled on.

    An ``overturns`` verdict refills the places of the scored candidates in the measured
    order; unscored candidates keep their places. Every candidate gets its measured rank."""
    verdicts = engine.facts_of(EmpiricalVerdict)
    main = next((v for v in verdicts if v["verdict"] != "best_rejected"), None)
    notes = [{"text": v["why"], "rule": v["rule"]} for v in verdicts if v["verdict"] == "best_rejected"]
    by_id = {r.get("catalog_id"): r for r in ranking.get("rows", []) if r.get("catalog_id")}
    if main is not None and main["verdict"] == "overturns":
        order = list(unfreeze(main["order"]))
        slots = [i for i, c in enumerate(candidates) if c["model"] in order]
        placed = {c["model"]: c for c in candidates}
        new = list(candidates)
        for i, mid in zip(slots, order):
            new[i] = placed[mid]
        candidates = new
    for pos, c in enumerate(candidates, 1):
        c["rank"] = pos
        r = by_id.get(c["model"])
        if r is not None:
            c["empirical"] = {"status": r["status"], "rank": r.get("rank"), "mean_rank": r.get("mean_rank"),
                              "scores": r.get("scores") or {}, **({"error": r["error"]} if r.get("error") else {})}
    a = ranking.get("agreement") or {}
    section = {
        "verdict": main["verdict"] if main else "inconclusive",
        "why": why(main) if main else {"rule": "", "knowledge": [], "text": "no plan candidate was scored"},
        "notes": notes,
        "data": ranking.get("data"), "settings": ranking.get("settings"),
        "estimators": a.get("estimators"), "kendall_w": a.get("kendall_w"),
        "mean_pairwise_tau": a.get("mean_pairwise_tau"),
        "rows": [{"model": r["model"], "catalog_id": r.get("catalog_id"), "status": r["status"],
                  "rank": r.get("rank"), "mean_rank": r.get("mean_rank"), "scores": r.get("scores") or {},
                  "params": r.get("params"), "latency_ms": r.get("latency_ms"),
                  **({"error": r["error"]} if r.get("error") else {}),
                  **({"rejected": r["rejected"]} if r.get("rejected") else {})}
                 for r in ranking.get("rows", [])],
        "warnings": list(ranking.get("warnings") or []),
    }
    return section, candidates


def training_batching(engine, model_entry, tech_id: str, hyper: dict) -> dict:
    """How the plan's batch is trained within the memory (from the memory fit of the model it runs):
    micro-batch, gradient accumulation steps, gradient checkpointing; {} when the fit did not plan it."""
    fit = next((f for f in engine.facts_of(Fit) if model_entry is not None and f["model"] == model_entry.id
                and f["technique"] == tech_id), None)
    b = unfreeze(fit["batching"]) if fit is not None and fit.get("batching") else {}
    if not b or not isinstance(hyper.get("batch_size"), int):
        return {}
    return {"batching": {"batch_size": hyper["batch_size"], "micro_batch": b["micro_batch"],
                         "gradient_accumulation": b["accumulation"], "gradient_checkpointing": b["checkpointing"],
                         "estimated_gb": b["gb"]}}


def catalog_gaps(kb, scenario: dict, candidates: list) -> list[str]:
    """What the catalog lacks for this scenario, said once: no model trained on the stated language alone
    (only multilingual ones rank), or none pre-trained on the image domain (``ImageDomain.catalog_note``)."""
    notes = []
    if kb.tasks[scenario["task"]].modality.value in ("image", "image_text"):
        domain = scenario_image_domain(kb, scenario)
        if domain is not None and domain.catalog_note:
            notes.append(domain.catalog_note)
    lang = scenario.get("language")
    if not lang or lang in ("english", "multilingual", "code") or not candidates:
        return notes
    if any(lang in kb.models[c["model"]].languages for c in candidates):
        return notes
    return notes + [f"no model trained on {lang} alone is in this catalog: the candidates are multilingual; a "
                    f"monolingual {lang} encoder or LM (from the hub, given with --model) can beat them on the same "
                    "data, so compare one with `tlexpert rank-models`"]


def build_plan(engine, scenario: dict, trace: bool = True, readings=(),
               ranking: dict | None = None) -> Plan:
    """The typed, validated Plan from the facts the rules concluded."""
    kb = engine.kb
    family = _one(engine, Family)
    approach = _one(engine, Approach)
    technique = _one(engine, Technique)
    tech_id = technique["value"]

    candidates = []
    task = kb.tasks[scenario["task"]]
    for c in sorted(engine.facts_of(Candidate), key=lambda f: f["rank"]):
        m = kb.models[c["model"]]
        q = m.quality.get(task.id)
        candidates.append({
            "model": m.id, "name": m.name, "family": m.family.value, "params": m.params,
            "speed": c["speed"], "latency_ms": c["latency_ms"], "gflops": m.gflops, "layers": m.layers,
            "offline": m.offline, "technique": c["technique"], "memory_gb": c["memory_gb"],
            "licence": m.licence, "languages": list(m.languages), "context_length": m.context_length or None,
            "quality": None if q is None else {"metric": q.metric, "value": q.value, "source": q.source,
                                               "date": q.date, "reported": q.reported,
                                               "compared": q.metric == benchmark_of(task, scenario)},
            "meets_constraints": c["meets_constraints"], "why": why(c),
        })
    empirical = None
    if ranking is not None:
        empirical, candidates = empirical_section(engine, ranking, candidates)
    seed_facts = engine.facts_of(Seeds)  # none when the catalog holds no model for the task
    seeds = ({"value": seed_facts[0]["value"], "why": seed_facts[0]["why"]} if seed_facts else
             {"value": kb.threshold("default_seeds"), "why": f"{kb.threshold('default_seeds')} seeds: outcomes vary "
                                                              "with the seed"})
    run_models = engine.facts_of(RunModel)  # none when the catalog holds no model for the task
    run_model = run_models[0] if run_models else None
    model_entry = kb.models[run_model["model"]] if run_model else None
    top_layers = model_entry.layers if model_entry else 0

    rejected: dict[str, list] = {}
    for r in engine.facts_of(Rejected):
        rejected.setdefault(r["model"], []).append({"reason": r["reason"], "rule": r["rule"]})
    rejected_list = [
        {"model": mid, "name": kb.models[mid].name, "params": kb.models[mid].params,
         "reasons": [x["reason"] for x in rs], "rules": sorted({x["rule"] for x in rs})}
        for mid, rs in sorted(rejected.items(), key=lambda kv: (kb.models[kv[0]].params, kv[0]))
    ]

    hyper: dict = {}
    hyper_why: dict = {}
    # a technique's default gives way to a rule that decided the same setting for this scenario;
    # two deciding rules that disagree are a rule bug, never a silent pick
    for h in sorted(engine.facts_of(Hyper), key=lambda f: not f.get("default", False)):
        name, value = h["name"], unfreeze(h["value"])
        if name in LIST_FIELDS:
            hyper[name] = [*(hyper.get(name) or []), *[v for v in value if v not in (hyper.get(name) or [])]]
        else:
            if name in hyper and hyper[name] != value and not hyper_why[name].get("default"):
                raise RuntimeError(f"rules concluded {name}={hyper[name]!r} and {value!r} "
                                   f"({hyper_why[name]['rule']}, {h['rule']})")
            hyper[name] = value
        hyper_why[name] = {**why(h), **({"default": True} if h.get("default") else {})}
    for w in hyper_why.values():
        w.pop("default", None)

    risks = []
    for r in sorted(engine.facts_of(Risk), key=lambda f: (LIKELIHOOD_ORDER[f["likelihood"]], f["pitfall"])):
        pit = kb.pitfalls[r["pitfall"]]
        risks.append({
            "pitfall": r["pitfall"], "likelihood": r["likelihood"], "what": pit.what,
            "mitigations": concrete_fixes(kb, pit.fixes, hyper, tech_id, top_layers, MAX_MITIGATIONS,
                                          scenario["modality"], scenario, pitfall=r["pitfall"]),
            "why": why(r),
        })

    evidence = engine.facts_of(Evidence)
    # what the user says is already in place: the fixes for what they report start from it
    stated: dict = {}
    for r in readings or ():
        for k, v in (getattr(r, "stated", None) or {}).items():
            stated.setdefault(k, v)
    diagnoses = []
    for d in sorted(engine.facts_of(Diagnosis), key=lambda f: (-f["confidence"], f["pitfall"])):
        pit = kb.pitfalls[d["pitfall"]]
        symptoms = list(unfreeze(d["symptoms"]))
        preferred = [f for s in symptoms for f in kb.symptoms[s].preferred_fixes]
        ev = []
        for s in symptoms:
            e = next(x for x in evidence if x["pitfall"] == d["pitfall"] and x["symptom"] == s)
            ev.append({"symptom": s, "description": kb.symptoms[s].description,
                       "weight": e["weight"], **unfreeze(e["evidence"])})
        diagnoses.append({
            "pitfall": d["pitfall"], "name": pit.name, "confidence": d["confidence"],
            "what": pit.what, "evidence": ev,
            "fixes": concrete_fixes(kb, preferred + list(pit.fixes), {**hyper, **stated}, tech_id, top_layers,
                                    MAX_FIXES, scenario["modality"], scenario, evidence=symptoms, pitfall=d["pitfall"]),
            "why": why(d),
            **({"stated": dict(stated)} if stated else {}),
        })

    clarify = []
    for c in sorted(engine.facts_of(Clarify), key=lambda f: (f["text"], f["distinction"])):
        d = kb.sections["distinctions"][c["distinction"]]
        symptoms = list(unfreeze(c["symptoms"]))
        clarify.append({
            "question": d.question, "text": c["text"], "distinction": c["distinction"],
            "candidates": [{"pitfall": p, "symptom": s, "similarity": sc}
                           for p, s, sc in zip(unfreeze(c["pitfalls"]), symptoms, unfreeze(c["scores"]))],
            "answers": [{"answer": a.text, "symptoms": list(a.symptoms)} for a in d.answers],
            "why": why(c),
        })

    # a dense task trains for iterations: epochs raised until the plan's steps reach dense_min_steps
    epochs, batch = hyper.get("epochs"), hyper.get("batch_size")
    if (task.dense and kb.techniques[tech_id].trains_backbone and isinstance(epochs, int) and isinstance(batch, int)
            and batch > 0):
        per_epoch = max(1, math.ceil(scenario["dataset_size"] * 0.6 / batch))
        want = kb.threshold("dense_min_steps")
        if per_epoch * epochs < want:
            raised = min(300, math.ceil(want / per_epoch))
            hyper["epochs"] = raised
            hyper_why["epochs"] = {**hyper_why.get("epochs", {}), "default": None,
                                   "text": f"{raised} epochs of {per_epoch} steps (batch {batch}, 60% of "
                                           f"{scenario['dataset_size']:,} for training): a dense task trains for "
                                           f"at least {want:,} steps (dense_min_steps), not {epochs} epochs"}
            patience = hyper.get("early_stopping_patience")
            if isinstance(patience, int) and patience < raised // 10:
                hyper["early_stopping_patience"] = raised // 10
                hyper_why["early_stopping_patience"] = {
                    **hyper_why.get("early_stopping_patience", {}), "default": None,
                    "text": f"stop after {raised // 10} epochs without a better {task.stop_on}: a tenth of the "
                            "epoch budget, so a noisy epoch does not end a long schedule"}
    # the epoch budget bounds what depends on it: patience below the epochs, gradual unfreezing only
    # with epochs to unfreeze in
    epochs, patience = hyper.get("epochs"), hyper.get("early_stopping_patience")
    if isinstance(epochs, int) and isinstance(patience, int) and epochs > 1 and patience >= epochs:
        hyper["early_stopping_patience"] = max(1, epochs - 1)
        hyper_why["early_stopping_patience"] = {
            **hyper_why.get("early_stopping_patience", {}), "default": None,
            "text": f"stop after {epochs - 1 or 1} epoch(s) without a better {task.stop_on}: {patience} would never "
                    f"fire within a budget of {epochs} epochs; the best epoch's weights are kept"}
    patience = hyper.get("early_stopping_patience")
    if (isinstance(epochs, int) and isinstance(patience, int) and epochs > 1 and patience >= epochs - 1
            and "early_stopping_patience" in hyper_why):
        hyper_why["early_stopping_patience"] = {
            **hyper_why["early_stopping_patience"], "default": None,
            "text": f"validation {task.stop_on.replace('validation ', '')} after each epoch, the best epoch's weights "
                    f"kept: with {epochs} epochs, patience {patience} cannot end the run early, the budget is short "
                    "already"}
    if epochs == 1 and isinstance(patience, int) and "early_stopping_patience" in hyper_why:
        hyper_why["early_stopping_patience"] = {
            **hyper_why["early_stopping_patience"], "default": None,
            "text": "not used: early stopping cannot fire within one epoch (the epoch's weights are kept)"}
    if isinstance(epochs, int) and epochs < 2 and hyper.get("unfreeze") == "gradual":
        hyper["unfreeze"] = "none"
        hyper_why["unfreeze"] = {**hyper_why.get("unfreeze", {}),
                                 "text": "no gradual unfreezing: one epoch leaves no later epoch to unfreeze in"}
    for name, reason in inert_fields(kb, tech_id, hyper).items():  # shown, but said to be unused
        if name in hyper_why:
            hyper_why[name] = {**hyper_why[name], "text": reason}

    probes = ["domain_shift"]
    if approach["value"] == "transfer":
        probes.append("negative_transfer")
    # forgetting is measured for every technique of a run that changes the backbone (the plan's, or one a
    # comparison or a fix runs), unless the source abilities need not be kept
    if approach["value"] == "transfer" and scenario.get("retain_source") != "no":
        probes.append("forgetting")

    assumptions = [{"field": f, "value": scenario[f], "why": "not given: the default"}
                   for f in scenario.get("assumed") or () if f != "retain_source" or "forgetting" in probes]
    for mb in engine.facts_of(MemoryBudget):
        if mb.get("assumed"):
            assumptions.append({"field": "gpu_memory_gb", "value": mb["gb"], "why": mb["why"]})
    device = _one(engine, DeployDevice)
    dev = kb.devices[device["id"]]
    budgets = engine.facts_of(LatencyBudget)
    memory = _one(engine, MemoryBudget)
    tech_entry = kb.techniques[tech_id]
    assumptions += [{"field": a["field"], "value": unfreeze(a["value"]), "why": a["why"]}
                    for a in sorted(engine.facts_of(Assumed), key=lambda f: f["field"])]
    from rules.budget import training_time

    plan = {
        "schema_version": SCHEMA_VERSION,
        "scenario": {k: v for k, v in scenario.items() if k != "expect"},
        "architecture": {"family": family["value"], "name": kb.get("architectures", family["value"]).name,
                         "why": why(family)},
        "criteria": [{"rank": c["rank"], "name": c["name"], "why": why(c)}
                     for c in sorted(engine.facts_of(Criterion), key=lambda f: f["rank"])],
        "candidates": candidates,
        "rejected": rejected_list,
        "model": {"id": model_entry.id, "name": model_entry.name, "layers": model_entry.layers,
                  "available": bool(run_model["available"]), "why": why(run_model)} if model_entry else None,
        "size_class": _one(engine, SizeClass)["value"],
        "approach": {"choice": approach["value"], "name": kb.get("approaches", approach["value"]).name,
                     "why": why(approach)},
        "technique": {"choice": tech_id, "name": tech_entry.name,
                      "best_when": tech_entry.best_when, "why": why(technique),
                      **({"costs": tech_entry.costs} if tech_entry.costs else {}),
                      **({"runs_here": False} if not tech_entry.harness else {}),
                      **({"objective": task.objective} if task.objective else {}),
                      **findings_of(tech_entry, task.id)},
        **({"task_note": task.note} if task.note else {}),
        "notes": catalog_gaps(kb, scenario, candidates),
        "device": {"class": dev.id.value, "name": dev.name, "gflops": dev.gflops,
                   "reported_estimate": dev.reported, "sources": list(dev.sources),
                   "latency_budget_ms": budgets[0]["ms"] if budgets else None, "why": why(device),
                   **({"export": dev.export} if dev.export else {})},
        "memory": {"gb": memory["gb"], "usable_gb": round(memory["gb"] * kb.threshold("usable_memory_share"), 2),
                   "why": why(memory), **training_batching(engine, model_entry, tech_id, hyper),
                   # the tokens per text input the estimate assumed; `run` truncates to them (--max-length: other)
                   **({"sequence_tokens": sequence_tokens(kb, scenario, task.generative, training=True)}
                      if task.modality.value == "text" else {})},
        "assumptions": assumptions,
        "hyperparameters": hyper,
        "hyperparameters_why": hyper_why,
        "recipes": {r["technique"]: unfreeze(r["values"])
                    for r in sorted(engine.facts_of(Recipe), key=lambda f: f["technique"])},
        "training_time": training_time(kb, scenario, tech_id, hyper,
                                       model_entry.id if model_entry else None, seeds["value"]),
        "risks": risks,
        "diagnoses": diagnoses,
        "symptom_readings": [r.as_dict() for r in readings],
        "clarify": clarify,
        "evaluation": {"seeds": seeds["value"], "alpha": kb.threshold("alpha"),
                       "probes": probes, "retention_data": None, "metrics": task_metrics(task, scenario),
                       "stop_on": task.stop_on, "why": seeds["why"],
                       "protocol": next((p["text"] for p in engine.facts_of(Protocol)), ""),
                       **dict(zip(("validation_share", "test_share", "holdout_max"),
                                  holdout(kb, task, scenario.get("dataset_size") or 0)))},
        **({"empirical_ranking": empirical} if empirical is not None else {}),
        "trace": engine.public_trace() if trace else [],
    }
    # built through the typed contract: a knowledge base that leaves a field unresolved fails here
    return Plan.from_dict(plan, "the plan the rules built", kb)
