"""Turn a knowledge-base fix into concrete configuration changes, and apply them.

A fix (``knowledge/data/fixes.yaml``) is a list of changes ``{field, op, value}``;
against a plan's current hyperparameters and technique it becomes a list of
``{"field", "from", "to"}`` edits such as ``learning_rate: 2e-05 -> 2e-06``.
The same functions serve ``consult`` (diagnoses) and ``run --auto-fix``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Optional

from knowledge.schema import Fix
from knowledge.units import format_value

LIST_FIELDS = ("augmentation", "preprocessing", "stages")


def _frozen_count(value: Any, layers: int) -> int:
    if value == "all":
        return layers
    if isinstance(value, int):
        return value
    return 0


def _new_value(op: str, arg: Any, current: Any, layers: int, floor: Optional[float] = None) -> Any:
    if op == "set":
        return arg
    if op == "scale":
        if current is None:
            return None
        if floor is not None and arg < 1 and current <= floor:
            return current  # already at the floor the knowledge base sets: nothing to lower
        if isinstance(current, int) and not isinstance(current, bool):
            return max(1, round(current * arg))
        new = float(f"{current * arg:.3g}")
        return max(new, floor) if floor is not None and arg < 1 else new
    if op == "at_most":
        return arg if current is None or current > arg else current
    if op == "at_least":
        return arg if current is None or current < arg else current
    if op == "append":
        items = list(current or [])
        return items if arg in items else [*items, arg]
    if op == "freeze_fraction":
        if layers <= 1:
            return current
        now = _frozen_count(current, layers)
        target = max(now, math.ceil(arg * layers))
        if target <= now:  # already frozen that far: freeze half of what still trains
            target = now + math.ceil((layers - now) / 2)
        return min(target, layers - 1)
    raise ValueError(f"unknown fix op {op!r}")  # the loader already checks ops


def avoided(fix: Fix, scenario: Optional[dict], pitfall: Optional[str] = None) -> bool:
    """Whether the knowledge base records ``fix`` as useless or harmful for this scenario (as a
    remedy for ``pitfall``: ``avoid_except`` names pitfalls it was measured to help all the same)."""
    if not fix.avoid_when or not scenario or (pitfall and pitfall in fix.avoid_except):
        return False
    return all(str(scenario.get(k)) in [str(v) for v in vals] for k, vals in fix.avoid_when.items())


def relevant(fix: Fix, scenario: Optional[dict], evidence: Iterable[str] = ()) -> bool:
    """Whether ``fix`` suits this data (``relevant_when``): one of its symptoms is in the scenario
    or the evidence, or a source/target domain tag holds one of its domain words."""
    when = fix.relevant_when
    if not when:
        return True
    seen = set(evidence) | set((scenario or {}).get("symptoms") or ())
    if seen & set(when.get("symptoms") or ()):
        return True
    tags = " ".join(str(t) for k in ("source_domain", "target_domain") for t in (scenario or {}).get(k) or ()).lower()
    return any(re.search(rf"\b{re.escape(str(w).lower())}", tags) for w in when.get("domains") or ())


def _relative_change(op: str, arg: Any, field: str, layers: int) -> Optional[dict]:
    """The edit for a field whose current value is unknown: relative where the fix is relative
    (``scale``, ``freeze_fraction``), the fix's own value otherwise; never an invented ``from``."""
    out = {"field": field, "from": None, "to": None, "current_unknown": True, "op": op}
    if op == "scale":
        out["factor"] = arg
    elif op == "freeze_fraction":
        out["fraction"] = arg
        if layers > 1:
            out["to"] = min(math.ceil(arg * layers), layers - 1)
    elif op in ("set", "at_most", "at_least"):
        out["to"] = arg
    elif op == "append":
        out["to"] = [arg]
    else:
        return None
    return out


def fix_changes(fix: Fix, hyper: dict, technique: Optional[str], layers: int = 0,
                unknown: tuple | set | frozenset = ()) -> list[dict]:
    """The concrete edits ``fix`` makes to (hyper, technique); [] if it changes nothing.

    ``unknown`` names fields whose current value is not known (e.g. not in a training log;
    ``technique`` among them when the log does not say how the model was adapted): their
    edits are relative ("lower about 10x") and marked ``current_unknown``."""
    if fix.applies_to and technique not in fix.applies_to and "technique" not in unknown:
        return []
    state = {**hyper, "technique": technique}
    out = []
    for ch in fix.changes:
        if ch.field in unknown or ch.field.partition(".")[0] in unknown:
            edit = _relative_change(ch.op, ch.value, ch.field, layers)
            if edit is not None and not any(e["field"] == ch.field for e in out):
                out.append(edit)
            continue
        head, _, key = ch.field.partition(".")  # "lora.rank": a setting inside a block of the recipe
        block = state.get(head) if key else None
        if key and not isinstance(block, dict):
            continue  # the recipe has no such block (no LoRA adapters to shrink): nothing to change
        before = block.get(key) if key else state.get(ch.field)
        floor = ch.floor.get(technique, ch.floor.get("default")) if isinstance(ch.floor, dict) else ch.floor
        after = _new_value(ch.op, ch.value, before, layers, floor)
        if after != before:
            out.append({"field": ch.field, "from": before, "to": after})
            if key:
                state[head] = {**block, key: after}
            else:
                state[ch.field] = after
    return out


def direction(change: dict) -> int:
    """+1 when an edit raises its field, -1 when it lowers it, 0 when neither can be said."""
    op = change.get("op")
    if op == "scale":
        f = change.get("factor") or 1
        return (f > 1) - (f < 1)
    if op in ("at_most", "at_least", "freeze_fraction"):
        return {"at_most": -1, "at_least": 1, "freeze_fraction": 1}[op]
    a, b = change.get("from"), change.get("to")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return (b > a) - (b < a)
    return 0


def presumes_pretrained(fix: Fix, kb) -> bool:
    """A fix for adapting a pre-trained model only (every technique it applies to starts pre-trained)."""
    return bool(fix.applies_to) and all(t in kb.techniques and kb.techniques[t].pretrained for t in fix.applies_to)


def apply_changes(hyper: dict, technique: str, changes: list[dict]) -> tuple[dict, str]:
    """A copy of (hyper, technique) with ``changes`` applied."""
    hyper = dict(hyper)
    for ch in changes:
        if ch["field"] == "technique":
            technique = ch["to"]
        else:
            hyper[ch["field"]] = ch["to"]
    return hyper, technique


def _times(x: float) -> str:
    return f"{x:.3g}×"


def format_change(ch: dict, layers: int = 0) -> str:
    """``learning_rate: 2e-05 → 2e-06`` (``freeze: first 3 of 6 layers``); for an unknown current
    value ``learning_rate: lower about 10× (current value not in the log)``."""
    name = "freeze" if ch["field"] == "frozen_layers" else ch["field"]
    if ch.get("current_unknown"):
        op = ch.get("op")
        if op == "scale":
            f = ch["factor"]
            what = f"lower about {_times(1 / f)}" if f < 1 else f"raise about {_times(f)}"
        elif op == "freeze_fraction":
            share = f"{ch['fraction']:.0%}"
            what = (f"the first {ch['to']} of {layers} layers ({share})" if ch.get("to") and layers
                    else f"the first {share} of the layers")
        elif op == "at_least":
            what = f"at least {format_value(ch['field'], ch['to'], layers)}"
        elif op == "at_most":
            what = f"at most {format_value(ch['field'], ch['to'], layers)}"
        elif op == "append":
            what = f"add {format_value(ch['field'], ch['to'][0], layers)}"
        else:
            what = f"set to {format_value(ch['field'], ch['to'], layers)}"
        return f"{name}: {what} (current value not in the log)"
    return f"{name}: {format_value(ch['field'], ch['from'], layers)} → {format_value(ch['field'], ch['to'], layers)}"


def findings_of(entry, task: Optional[str] = None) -> dict:
    """A knowledge entry's measured findings for a plan on ``task``: ``finding`` (their text, each
    with its date) and ``findings`` (each with its command, data, recipe and date); {} when it has
    none. Only findings measured on that task are carried (all of them when the task is unknown)."""
    fs = [f for f in getattr(entry, "findings", None) or [] if task is None or f.task == task]
    if not fs:
        return {}
    return {"finding": " ".join(f"{f.text} (measured {f.measured})" for f in fs),
            "findings": [{"text": f.text, "command": f.command, "data": f.data, "recipe": f.recipe,
                          "measured": f.measured, "source": f.source, "task": f.task} for f in fs]}


def against_task_or_domain(kb, changes: list[dict], hyper: dict, scenario: Optional[dict]) -> bool:
    """Whether a fix's changes go against what the task or the data's domain rules out: a technique
    the task cannot use (a head on frozen features cannot predict masks or boxes, nor generate), or
    photo augmentation where the plan follows a domain's policy (no flips for documents)."""
    task = kb.tasks.get((scenario or {}).get("task")) if scenario else None
    domain_policies = {d.policy for d in kb.get("regularization", "data_augmentation").image_domains}
    for c in changes:
        if (c["field"] == "technique" and c["to"] in kb.techniques and kb.techniques[c["to"]].head_only
                and task is not None
                and (task.dense or task.generative)):
            return True
        if (c["field"] == "augmentation" and "standard" in (c.get("to") or [])
                and domain_policies & set(hyper.get("augmentation") or [])):
            return True
    return False


def inert_fields(kb, technique: Optional[str], hyper: dict) -> dict:
    """Settings ``technique`` does not use with these hyperparameters (``Technique.inert_fields``):
    field -> why."""
    entry = kb.techniques.get(technique) if technique else None
    out: dict = {}
    for cond, spec in (entry.inert_fields if entry is not None else {}).items():
        name, _, value = cond.partition("=")
        if str(hyper.get(name)) == value:
            out.update({f: spec["why"] for f in spec["fields"]})
    return out


def concrete_fixes(kb, fix_ids: list[str], hyper: dict, technique: Optional[str], layers: int,
                   limit: Optional[int] = None, modality: Optional[str] = None,
                   scenario: Optional[dict] = None, unknown: tuple | set | frozenset = (),
                   evidence: Iterable[str] = (), pitfall: Optional[str] = None) -> list[dict]:
    """Fixes in order, each with its concrete changes; fixes that change nothing, that
    are for another input modality (emoji handling is for text) or other data (``relevant_when``:
    emoji handling where emoji were seen or the domain is social-media text; ``evidence``: the
    symptoms measured or reported), or that the knowledge base records as useless or harmful for
    this scenario (``avoid_when``, unless ``pitfall`` is one of its ``avoid_except``) are skipped.
    Fields in ``unknown`` get relative edits (see ``fix_changes``)."""
    evidence = list(evidence)
    out = []
    for fid in dict.fromkeys(fix_ids):
        fix = kb.fixes[fid]
        if modality and fix.modalities and modality not in [m.value for m in fix.modalities]:
            continue
        if "technique" in unknown and presumes_pretrained(fix, kb):
            continue  # the log does not say the model was pre-trained: no fine-tuning advice by default
        if avoided(fix, scenario, pitfall) or not relevant(fix, scenario, evidence):
            continue
        inert = inert_fields(kb, technique, hyper)
        changes = [c for c in fix_changes(fix, hyper, technique, layers, unknown) if c["field"] not in inert]
        if not changes:
            continue  # (or only settings the plan's technique does not use: no rate to raise for a probe)
        if against_task_or_domain(kb, changes, hyper, scenario):
            continue
        primary = fix.changes[0].field if fix.changes else None
        if (len(fix.changes) > 1 and primary in hyper and primary not in unknown
                and primary not in {c["field"] for c in changes}):
            continue  # its main change is already in place (batch size 1 already: accumulation alone saves nothing)
        out.append({
            "fix": fid,
            "description": fix.description,
            "changes": changes,
            "summary": "; ".join(format_change(c, layers) for c in changes),
            "sources": list(fix.sources),
            **findings_of(fix, (scenario or {}).get("task")),
        })
        if limit and len(out) >= limit:
            break
    return out


def refix(kb, diagnoses: list[dict], hyper: dict, technique: Optional[str], layers: int, limit: int = 4,
          modality: Optional[str] = None, scenario: Optional[dict] = None,
          unknown: tuple | set | frozenset = ()) -> list[dict]:
    """Diagnoses with their fixes recomputed against the configuration actually run
    (``unknown``: fields of that configuration nobody recorded)."""
    out = []
    for d in diagnoses:
        preferred = [f for e in d["evidence"] for f in kb.symptoms[e["symptom"]].preferred_fixes]
        fixes = concrete_fixes(kb, preferred + list(kb.pitfalls[d["pitfall"]].fixes), hyper, technique,
                               layers, limit, modality, scenario, unknown,
                               evidence=[e["symptom"] for e in d["evidence"]], pitfall=d["pitfall"])
        out.append({**d, "fixes": fixes})
    return out
