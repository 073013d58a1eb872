"""The one seam from measurements back to the rules: ``revise(plan, measurements, kb)``.

``run``, ``run --auto-fix`` and ``diagnose`` all hand what they measured to this
function and nothing else: the plan's scenario is consulted again with the measured
symptoms, the rules diagnose them, and each diagnosis's fixes are made concrete
against the configuration that actually ran (not the one the plan assumed), then
weighed against the techniques the run measured.

    measurements = {
        "symptoms": [{"id": "below_baseline", "evidence": {...}}, ...],
        "technique": "fine_tuning",             # what ran (default: the plan's)
        "hyperparameters": {...},               # what ran (default: the plan's)
        "layers": 6,                            # layer groups of the model that ran (0: unknown)
        "accuracy": {"fine_tuning": 0.67, ...}, # mean target metric per technique measured, optional
        "unknown": ["learning_rate"],           # values the caller could not read (fixes go relative)
        "technique_known": True,                # False: the log does not say which technique ran
        "scenario_known": True,                 # False: the scenario is a stand-in (no fix ruled out by it)
    }
    revised = revise(plan, measurements, kb)    # {"diagnoses": [...], "notes": [...], "trace": [...]}
"""

from __future__ import annotations

from typing import Any

from rules.fixes import direction


def weigh_fixes(diagnoses: list[dict], accuracy: dict, current: str) -> list[dict]:
    """Fixes that switch to a technique the run measured as worse than ``current`` move last and say so.

    ``accuracy``: mean target metric per technique measured in the same run."""
    if current not in accuracy:
        return diagnoses
    out = []
    for d in diagnoses:
        keep, worse = [], []
        for f in d["fixes"]:
            target = next((c["to"] for c in f["changes"] if c["field"] == "technique"), None)
            if target in accuracy and accuracy[target] < accuracy[current]:
                worse.append({**f, "measured": f"{target} scored {accuracy[target]:.3f} vs {current} "
                                              f"{accuracy[current]:.3f} in this run: not recommended here"})
            else:
                keep.append(f)
        out.append({**d, "fixes": keep + worse})
    return out


def without_contradictions(diagnoses: list[dict]) -> list[dict]:
    """One report never advises a change and its opposite: a fix that moves a field against a fix of
    a diagnosis held with more confidence (lowering the learning rate there, raising it here) is held
    back, with the reason."""
    order = sorted(range(len(diagnoses)), key=lambda i: -float(diagnoses[i].get("confidence") or 0))
    claimed: dict = {}  # field -> (direction, fix, pitfall) of the most confident diagnosis that moves it
    out = list(diagnoses)
    for i in order:
        d = diagnoses[i]
        keep, held = [], list(d.get("held_back") or [])
        for f in d.get("fixes") or []:
            clash = next((claimed[c["field"]] for c in f["changes"] if c["field"] in claimed
                          and direction(c) * claimed[c["field"]][0] < 0), None)
            if clash:
                held.append({"fix": f["fix"], "why": f"moves {', '.join(c['field'] for c in f['changes'])} against "
                                                    f"{clash[1]} (for {clash[2]}, held with more confidence)"})
                continue
            keep.append(f)
            for c in f["changes"]:
                if direction(c) and c["field"] not in claimed:
                    claimed[c["field"]] = (direction(c), f["fix"], d["pitfall"])
        out[i] = {**d, "fixes": keep, **({"held_back": held} if held else {})}
    return out


def revise(plan: Any, measurements: dict, kb, limit: int = 4) -> dict:
    """The rules' diagnoses of ``measurements`` for ``plan``: the typed ``rules.contract.Plan`` that ran,
    or, where no plan is known (a log from elsewhere), the normalized scenario it stands for. Returns
    ``{"diagnoses", "notes", "trace"}``."""
    from rules.contract import Plan
    from rules.engine import get_engine
    from rules.fixes import presumes_pretrained, refix

    scenario = plan.scenario if isinstance(plan, Plan) else plan
    revised = get_engine(kb).consult(scenario, measured=measurements.get("symptoms") or [])
    ran = plan if isinstance(plan, Plan) else revised  # the settings that ran, else the plan the rules give
    if measurements.get("technique_known", True):
        technique = measurements.get("technique") or ran.technique_id
    else:
        technique = None  # a log that does not say which technique ran
    hyper = ran.hyperparameters.as_dict()
    hyper.update(measurements.get("hyperparameters") or {})
    if "seeds" not in hyper:
        hyper["seeds"] = ran.evaluation.seeds
    layers = measurements.get("layers")
    if layers is None:
        layers = ran.model.layers if ran.model else 0
    known = measurements.get("scenario_known", True)
    diagnoses = refix(kb, revised.diagnoses, hyper, technique, layers, limit, modality=scenario.get("modality"),
                      scenario=scenario if known else None, unknown=tuple(measurements.get("unknown") or ()))
    diagnoses = weigh_fixes(diagnoses, measurements.get("accuracy") or {}, technique)
    diagnoses = without_contradictions(diagnoses)
    notes = []
    if technique is None:
        held = sorted({f for d in diagnoses for f in kb.pitfalls[d["pitfall"]].fixes
                       if presumes_pretrained(kb.fixes[f], kb)})
        if held:
            notes.append("The log does not say whether the model was pre-trained or how it was adapted: fixes for "
                         f"adapting a pre-trained model ({', '.join(held)}) are left out; give --scenario (or a "
                         "run folder) to see them.")
    return {"diagnoses": diagnoses, "notes": notes,
            "trace": [t for t in revised.trace if t["rule"].startswith("diagnosis.")]}
