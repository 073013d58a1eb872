"""Turn a knowledge-base fix into concrete configuration changes, and apply them.

A fix (``knowledge/data/fixes.yaml``) is a list of changes ``{field, op, value}``;
against a plan's current hyperparameters and technique it becomes a list of
``{"field", "from", "to"}`` edits such as ``learning_rate: 2e-05 -> 2e-06``.
The same functions serve ``consult`` (diagnoses) and ``run --auto-fix``.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from knowledge.schema import Fix

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


def avoided(fix: Fix, scenario: Optional[dict]) -> bool:
    """Whether the knowledge base records ``fix`` as useless or harmful for this scenario."""
    if not fix.avoid_when or not scenario:
        return False
    return all(str(scenario.get(k)) in [str(v) for v in vals] for k, vals in fix.avoid_when.items())


def fix_changes(fix: Fix, hyper: dict, technique: str, layers: int = 0) -> list[dict]:
    """The concrete edits ``fix`` makes to (hyper, technique); [] if it changes nothing."""
    if fix.applies_to and technique not in fix.applies_to:
        return []
    state = {**hyper, "technique": technique}
    out = []
    for ch in fix.changes:
        before = state.get(ch.field)
        after = _new_value(ch.op, ch.value, before, layers, ch.floor)
        if after != before:
            out.append({"field": ch.field, "from": before, "to": after})
            state[ch.field] = after
    return out


def apply_changes(hyper: dict, technique: str, changes: list[dict]) -> tuple[dict, str]:
    """A copy of (hyper, technique) with ``changes`` applied."""
    hyper = dict(hyper)
    for ch in changes:
        if ch["field"] == "technique":
            technique = ch["to"]
        else:
            hyper[ch["field"]] = ch["to"]
    return hyper, technique


def format_value(field: str, value: Any, layers: int = 0) -> str:
    if value is None:
        return "none"
    if field == "frozen_layers" and isinstance(value, int) and layers:
        return f"first {value} of {layers} layers" if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def format_change(ch: dict, layers: int = 0) -> str:
    """``learning_rate: 2e-05 -> 2e-06`` (``freeze: first 3 of 6 layers``)."""
    name = "freeze" if ch["field"] == "frozen_layers" else ch["field"]
    return f"{name}: {format_value(ch['field'], ch['from'], layers)} → {format_value(ch['field'], ch['to'], layers)}"


def concrete_fixes(kb, fix_ids: list[str], hyper: dict, technique: str, layers: int,
                   limit: Optional[int] = None, modality: Optional[str] = None,
                   scenario: Optional[dict] = None) -> list[dict]:
    """Fixes in order, each with its concrete changes; fixes that change nothing, that
    are for another input modality (emoji handling is for text), or that the knowledge
    base records as useless or harmful for this scenario (``avoid_when``) are skipped."""
    out = []
    for fid in dict.fromkeys(fix_ids):
        fix = kb.fixes[fid]
        if modality and fix.modalities and modality not in [m.value for m in fix.modalities]:
            continue
        if avoided(fix, scenario):
            continue
        changes = fix_changes(fix, hyper, technique, layers)
        if not changes:
            continue
        out.append({
            "fix": fid,
            "description": fix.description,
            "changes": changes,
            "summary": "; ".join(format_change(c, layers) for c in changes),
            "sources": list(fix.sources),
            **({"finding": fix.finding} if fix.finding else {}),
        })
        if limit and len(out) >= limit:
            break
    return out


def refix(kb, diagnoses: list[dict], hyper: dict, technique: str, layers: int, limit: int = 4,
          modality: Optional[str] = None, scenario: Optional[dict] = None) -> list[dict]:
    """Diagnoses with their fixes recomputed against the configuration actually run."""
    out = []
    for d in diagnoses:
        preferred = [f for e in d["evidence"] for f in kb.symptoms[e["symptom"]].preferred_fixes]
        fixes = concrete_fixes(kb, preferred + list(kb.pitfalls[d["pitfall"]].fixes), hyper, technique,
                               layers, limit, modality, scenario)
        out.append({**d, "fixes": fixes})
    return out
