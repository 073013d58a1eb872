"""Checks a knowledge base must pass after loading (overlays included): every threshold the rules
read is present, of its type and in its range; every reference between entries (a pitfall's fixes and
symptoms, a fix's sources, a model's tasks, ...) names an entry that exists."""

from __future__ import annotations

import re
from typing import Any

from knowledge.schema import FIX_OPS, MODEL_PACKAGES, Compute, KnowledgeError, choice_error, normalize_word, where_of
from knowledge.validate import number
REQUIRED_THRESHOLDS = (
    "learning_rate_floor",
    "early_stopping_patience",
    "dataset_small_max",
    "dataset_medium_max",
    "full_training_min_examples",
    "full_training_compute",
    "limited_compute",
    "limited_gpu_memory_gb",
    "default_memory_gb",
    "max_params_by_deployment",
    "speed_class_ms",
    "speed_reference_device",
    "sequence_tokens",
    "default_device_by_deployment",
    "default_latency_ms",
    "known_languages",
    "training_overhead_gb",
    "usable_memory_share",
    "latency_critical_ms",
    "cpu_max_train_params",
    "activation_memory_factor",
    "symptom_match_min_score",
    "symptom_semantic_min_score",
    "symptom_ambiguity_margin",
    "diagnosis_min_confidence",
)


def _num(lo=0.0, hi=None, integer=False, lo_open=True):
    """A threshold's number constraint (positive unless told otherwise)."""
    return number(lo, hi, lo_open=lo_open, integer=integer)


def _list_of(choices):
    return (lambda v: isinstance(v, list) and bool(v) and all(x in choices for x in v),
            f"a list of {', '.join(choices)}")


def _map_of(keys, check, what, allow_null=False):
    def ok(v):
        return (isinstance(v, dict) and set(v) == set(keys)
                and all((allow_null and x is None) or check(x) for x in v.values()))

    return ok, f"a mapping of {', '.join(keys)} to {what}" + (" (or null)" if allow_null else "")


def _threshold_specs():
    from knowledge.schema import Compute, Deployment, DeviceClass

    computes = [c.value for c in Compute]
    deployments = [d.value for d in Deployment]
    devices = [d.value for d in DeviceClass]
    pos, pos_text = _num()
    share = _num(0, 1)
    return {
        "dataset_small_max": _num(integer=True), "dataset_medium_max": _num(integer=True),
        "full_training_min_examples": _num(integer=True), "cpu_max_train_params": _num(integer=True),
        "default_seeds": _num(1, integer=True, lo_open=False),
        "few_seeds_params": _num(integer=True), "one_seed_params": _num(integer=True),
        "few_shot_per_class": _num(integer=True), "cpu_full_training_params": _num(integer=True),
        "few_seeds_cost": _num(), "one_seed_cost": _num(), "large_holdout_examples": _num(integer=True),
        "validation_share": _num(0, 0.5), "test_share": _num(0, 0.5), "generation_holdout_share": _num(0, 0.5),
        "dense_min_steps": _num(integer=True),
        "limited_gpu_memory_gb": _num(), "latency_critical_ms": _num(), "activation_memory_factor": _num(),
        "alpha": _num(0, 0.5), "symptom_match_min_score": share, "diagnosis_min_confidence": share,
        "symptom_semantic_min_score": share, "symptom_ambiguity_margin": share, "symptom_context_margin": share,
        "cka_drift_max": share, "freeze_fraction_medium_data": _num(0, 1, lo_open=False),
        "unk_rate_shift": share, "slice_gap_min": share,
        "divergence_loss_ratio": _num(1), "spike_factor": _num(1), "overfit_val_rise": _num(),
        "underfit_flat_ratio": share, "underfit_min_loss_share": share, "chance_loss_tolerance": share,
        "forgetting_min_drop": share, "seed_std_max": share, "learning_rate_floor": _num(),
        "early_stopping_patience": _num(integer=True),
        "full_training_compute": _list_of(computes), "limited_compute": _list_of(computes),
        "default_memory_gb": _map_of(computes, pos, "positive numbers"),
        "max_params_by_deployment": _map_of(deployments, _num(integer=True)[0], "positive integers", True),
        "speed_class_ms": _map_of(["fast", "medium", "slow"], pos, "positive numbers"),
        "speed_reference_device": (lambda v: v in devices, f"one of {', '.join(devices)}"),
        "sequence_tokens": _num(integer=True),
        "default_device_by_deployment": _map_of(deployments, lambda v: v in devices, f"device classes ({', '.join(devices)})"),
        "default_latency_ms": _map_of(deployments, pos, "positive numbers", True),
        "serving_device_by_compute": _map_of(computes, lambda v: v in devices, f"device classes ({', '.join(devices)})"),
        "known_languages": (lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v),
                            "a list of language names"),
        "training_overhead_gb": _num(lo_open=False), "usable_memory_share": share,
        "rank_min_examples_per_class": _num(integer=True), "rank_max_examples": _num(integer=True),
        "rank_candidate_overhead_s": _num(lo_open=False), "rank_budget_share": share,
        "rank_budget_min_examples_per_class": _num(integer=True),
    }


def _check_thresholds(kb, raw: dict[str, dict[str, Any]]) -> None:
    for tid, (ok, expected) in _threshold_specs().items():
        entry = raw["thresholds"].get(tid)
        if entry is not None and not ok(entry.get("value")):
            where = where_of(entry, "value", where_of(entry, None, "thresholds.yaml"))
            raise KnowledgeError(f"The 'value' field of threshold {tid!r} at {where} must be {expected}. "
                                 f"Got {entry.get('value')!r} instead.")
    v = {t: kb.sections["thresholds"][t].value
         for t in ("dataset_small_max", "dataset_medium_max", "full_training_min_examples")}
    bounds = kb.sections["thresholds"]["speed_class_ms"].value
    if not bounds["fast"] < bounds["medium"] < bounds["slow"]:
        raise KnowledgeError(f"thresholds: speed_class_ms must grow from fast to slow. Got {bounds} instead.")
    if not v["dataset_small_max"] < v["dataset_medium_max"] < v["full_training_min_examples"]:
        raise KnowledgeError(
            "thresholds: dataset_small_max < dataset_medium_max < full_training_min_examples must hold. "
            f"Got {v['dataset_small_max']}, {v['dataset_medium_max']}, {v['full_training_min_examples']} instead.")


def check_references(kb, raw: dict[str, dict[str, Any]]) -> None:
    """Cross-entry checks: every id an entry names must exist."""

    def need(section: str, ids, entry, key, what):
        known = kb.sections[section]
        for ref in ids:
            if str(getattr(ref, "value", ref)) not in known:
                raise choice_error(key, where_of(entry, key, where_of(entry, None, "knowledge")), ref, known)

    for section, entries in raw.items():
        for key, entry in entries.items():
            if "sources" in entry:
                need("sources", kb.sections[section][key].sources, entry, "sources", "source")
            for d in getattr(kb.sections[section][key], "image_domains", None) or []:
                need("sources", d.sources, entry, "image_domains", "source")
            for f in getattr(kb.sections[section][key], "findings", None) or []:
                need("tasks", [f.task], entry, "findings", "task")
    for key, m in kb.models.items():
        entry = raw["models"][key]
        need("tasks", m.tasks, entry, "tasks", "task")
        where = where_of(entry, None, "models.yaml")
        if "speed" in entry:
            raise KnowledgeError(
                f"The 'speed' field of {where_of(entry, 'speed', where)} is derived from 'gflops' and the devices' "
                f"throughput, not set by hand: give the model's 'gflops' (per input) instead.")
        if m.per not in ("image", "token", "clip"):
            raise choice_error("per", where_of(entry, "per", where), m.per, ["image", "token", "clip"])
        if m.gflops <= 0:
            raise KnowledgeError(f"The 'gflops' field of {where_of(entry, 'gflops', where)} must be a positive "
                                 f"number. Got {m.gflops!r} instead.")
        if m.offline_package and m.offline_package not in MODEL_PACKAGES:
            # the module is imported to find the weights: only packages known to ship a model, never
            # any module an overlay names (an import runs the module's code)
            raise choice_error("offline_package", where_of(entry, "offline_package", where), m.offline_package,
                               list(MODEL_PACKAGES))
        if m.base_model:
            need("models", [m.base_model], entry, "base_model", "model")
        need("sources", list(m.cite.values()), entry, "cite", "source")
        for key in ("quality", "frozen_quality"):
            figures = getattr(m, key)
            need("sources", [q.source for q in figures.values()], entry, key, "source")
            for task in figures:
                if task not in m.tasks:
                    raise KnowledgeError(f"The '{key}' field of {where_of(entry, key, where)} names task "
                                         f"{task!r}, which the model does not list in 'tasks'.")
    for key, d in kb.devices.items():
        entry = raw["devices"][key]
        where = where_of(entry, None, "devices.yaml")
        for name in ("gflops", "bandwidth_gbs", "memory_gb", "bytes_per_param"):
            if getattr(d, name) <= 0:
                raise KnowledgeError(f"The '{name}' field of {where_of(entry, name, where)} must be a positive "
                                     f"number. Got {getattr(d, name)!r} instead.")
        ref = d.reference
        if ref is not None:
            need("sources", [ref.source], entry, "reference", "source")
            derived = ref.gflops / (ref.latency_ms / 1000.0)
            if abs(d.gflops - derived) > 0.05 * derived:
                raise KnowledgeError(
                    f"The 'gflops' field of {where_of(entry, 'gflops', where)} must follow from its reference "
                    f"({ref.gflops:g} GFLOPs in {ref.latency_ms:g} ms = {derived:.3g} GFLOP/s). Got {d.gflops!r} instead.")
            cat = kb.models.get(ref.model)
            if cat is not None and abs(cat.gflops - ref.gflops) > 1e-9:
                raise KnowledgeError(
                    f"The 'reference' field of {where_of(entry, 'reference', where)} gives {ref.model} "
                    f"{ref.gflops:g} GFLOPs; the catalog says {cat.gflops:g}.")
    for key, t in kb.techniques.items():
        entry = raw["techniques"][key]
        need("techniques", t.fallback, entry, "fallback", "technique")
        need("sources", [f.source for f in t.memory_figures], entry, "memory_figures", "source")
        need("sources", [x for sc in t.scaled for x in sc.sources], entry, "scaled", "source")
        need("tasks", [x for sc in t.scaled for x in sc.tasks], entry, "scaled", "task")
        computes = [c.value for c in Compute]
        for sc in t.scaled:
            for c in sc.computes:
                if c not in computes:
                    raise choice_error("scaled.computes", where_of(entry, "scaled", "techniques.yaml"), c, computes)
        for c in t.requires:
            if c not in computes:
                raise choice_error("requires", where_of(entry, "requires", "techniques.yaml"), c, computes)

    for key, t in kb.tasks.items():
        for m in t.metrics:
            ok = isinstance(m, str) and m.strip() or (
                isinstance(m, dict) and isinstance(m.get("text"), str) and m["text"].strip()
                and isinstance(m.get("when"), list) and all(isinstance(w, str) for w in m["when"]) and m["when"])
            if not ok:
                raise KnowledgeError(f"The 'metrics' field of task {key!r} at "
                                     f"{where_of(raw['tasks'][key], 'metrics', 'tasks.yaml')} must list metric names or "
                                     f"{{text, when: [cue words]}} mappings. Got {m!r} instead.")

    seen_alias: dict[str, str] = {}
    for key, t in [*kb.tasks.items(), *kb.sections["uncovered_tasks"].items()]:
        for a in [t.id, *t.aliases]:
            w = normalize_word(a)
            if seen_alias.get(w, key) != key:
                raise KnowledgeError(f"tasks: the spelling {a!r} names both {seen_alias[w]!r} and {key!r}")
            seen_alias[w] = key
    for key, a in kb.sections["architectures"].items():
        need("tasks", a.best_for, raw["architectures"][key], "best_for", "task")
    for key, p in kb.pitfalls.items():
        need("fixes", p.fixes, raw["pitfalls"][key], "fixes", "fix")
        need("symptoms", p.symptoms, raw["pitfalls"][key], "symptoms", "symptom")
        need("symptoms", p.reported_as, raw["pitfalls"][key], "reported_as", "symptom")
        if p.scope not in ("transfer", "practical"):
            raise choice_error("scope", where_of(raw["pitfalls"][key], "scope", "pitfalls.yaml"), p.scope,
                               ("transfer", "practical"))
    for key, d in kb.sections.get("distinctions", {}).items():
        entry = raw["distinctions"][key]
        need("pitfalls", d.pitfalls, entry, "pitfalls", "pitfall")
        if len(set(d.pitfalls)) != 2:
            raise KnowledgeError(f"The 'pitfalls' field of {where_of(entry, 'pitfalls', 'distinctions.yaml')} "
                                 f"must name two different pitfalls. Got {[p.value for p in d.pitfalls]!r} instead.")
        for a in d.answers:
            need("symptoms", a.symptoms, entry, "answers", "symptom")
    for key, s in kb.symptoms.items():
        need("pitfalls", list(s.indicates), raw["symptoms"][key], "indicates", "pitfall")
        need("fixes", s.preferred_fixes, raw["symptoms"][key], "preferred_fixes", "fix")
        for pit, weight in s.indicates.items():
            if not isinstance(weight, (int, float)) or not 0 < weight <= 1:
                raise KnowledgeError(
                    f"The 'indicates' field of {where_of(raw['symptoms'][key], 'indicates', 'symptoms.yaml')} "
                    f"must map pitfall ids to weights in (0, 1]. Got {weight!r} for {pit!r} instead."
                )
    for key, f in kb.fixes.items():
        for ch in f.changes:
            if ch.op not in FIX_OPS:
                raise choice_error("op", where_of(raw["fixes"][key], "changes", "fixes.yaml"), ch.op, FIX_OPS)
        need("techniques", f.applies_to, raw["fixes"][key], "applies_to", "technique")
        need("pitfalls", f.avoid_except, raw["fixes"][key], "avoid_except", "pitfall")
    for key, q in kb.sections["questions"].items():
        for fld, cond in q.when.items():
            ok = isinstance(cond, list) or (isinstance(cond, dict) and set(cond) == {"above"}
                                            and cond["above"] in kb.sections["thresholds"])
            if not ok:
                raise KnowledgeError(
                    f"The 'when' field of {where_of(raw['questions'][key], 'when', 'questions.yaml')} must map "
                    f"scenario fields to a list of values or to {{above: <threshold id>}}. "
                    f"Got {fld}: {cond!r} instead.")
    for key, t in kb.sections["throughput"].items():
        entry = raw["throughput"][key]
        need("models", [t.model], entry, "model", "model")
        if t.technique not in ("embedding", "ranking"):
            need("techniques", [t.technique], entry, "technique", "technique")
        if t.task is not None:
            need("tasks", [t.task], entry, "task", "task")
        if not t.examples_per_second > 0:
            raise KnowledgeError(f"The 'examples_per_second' field of {where_of(entry, 'examples_per_second', 'throughput.yaml')} "
                                 f"must be a positive number. Got {t.examples_per_second!r} instead.")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", t.measured):
            raise KnowledgeError(f"The 'measured' field of {where_of(entry, 'measured', 'throughput.yaml')} must be "
                                 f"a date like 2026-11-27. Got {t.measured!r} instead.")
    for tid in REQUIRED_THRESHOLDS:
        if tid not in kb.sections["thresholds"]:
            raise KnowledgeError(f"thresholds: the threshold {tid!r} is required but missing")
    _check_thresholds(kb, raw)
