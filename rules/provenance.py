"""What a plan was made from: a digest of the knowledge base's files and of the code that reasons over
them (rules and knowledge packages), and a digest of the plan's executed fields as written. A plan file
carries both (``made_from``), so ``run PLAN`` knows without consulting again whether anything could
differ: the same knowledge and rules give the same plan, and a plan nobody edited has nothing to report.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_DIGESTS: dict = {}


def knowledge_digest(kb) -> str:
    """A digest of the knowledge files ``kb`` was loaded from and of the rules' and loader's code."""
    key = (id(kb), tuple(kb.files))
    if key not in _DIGESTS:
        data_dir = _ROOT / "knowledge" / "data"
        files = sorted({Path(f).resolve() for f in kb.files} | set(data_dir.glob("*.json")))
        code = sorted(p for pkg in ("rules", "knowledge") for p in (_ROOT / pkg).rglob("*.py"))
        h = hashlib.sha256()
        for f in [*files, *code]:
            name = f.relative_to(_ROOT) if f.is_relative_to(_ROOT) else f
            h.update(f"{name}\n".encode())
            h.update(f.read_bytes())
        _DIGESTS[key] = h.hexdigest()[:20]
    return _DIGESTS[key]


def plan_digest(plan) -> str:
    """A digest of what the harness executes of ``plan`` (``rules.contract.executed_fields``)."""
    from rules.contract import executed_fields

    blob = json.dumps(executed_fields(plan), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def made_from(kb, plan) -> dict:
    return {"knowledge": knowledge_digest(kb), "plan": plan_digest(plan)}


def stamped(plan, kb):
    """``plan`` recording what it was made from (for a plan written to a file)."""
    return plan.changed({"made_from": made_from(kb, plan)}, kb, "the plan as written")


def unchanged(plan, kb) -> bool:
    """True when ``plan`` was made by this knowledge and these rules and its executed fields are as they
    were written: consulting its scenario again would give the same plan."""
    return bool(plan.made_from) and plan.made_from == made_from(kb, plan)
