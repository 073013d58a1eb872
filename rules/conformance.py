"""Conformance: one scenario -> one table row, its decisions and its ``expect:`` checks.

``consult_chunk`` is the worker ``harness.scaleout.batch.run_batch`` schedules; each row holds
the plan's decisions and, for a scenario with an ``expect:`` block, each check's
expected and actual value, and for a failed check the rule-trace steps behind it.
A bad scenario becomes an error row naming file, row and field. ``summarize`` counts
the checks and the plan-check violations over all rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from knowledge.schema import KnowledgeError, nearest

CHECKS = {
    "family": "architecture family equals",
    "approach": "approach equals",
    "technique": "technique equals",
    "top_candidate": "first candidate equals",
    "top_candidate_max_params": "first candidate has at most this many parameters",
    "candidates_include": "candidates include all of",
    "candidates_exclude": "candidates include none of",
    "rejected_include": "rejected models include all of",
    "risks_include": "risks include all of",
    "risks_exclude": "risks include none of",
    "diagnoses_include": "diagnoses include all of",
    "diagnoses_exclude": "diagnoses include none of",
    "top_diagnosis": "the most confident diagnosis is",
    "first_fix": "the top diagnosis's first fix is",
    "fixes_include": "the top diagnosis's fixes include all of",
    "frozen_layers": "frozen_layers equals",
    "unfreeze": "unfreeze equals",
    "learning_rate": "learning_rate equals",
    "mitigations_exclude": "no risk's mitigations include any of",
    "criterion": "the first selection criterion is",
    "top3_include": "the first three candidates include all of",
    "augmentation": "augmentation equals",
    "epochs": "epochs equals",
    "batch_size": "batch_size equals",
    "seeds": "evaluation seeds equal",
    "device": "the deployment device class is",
    "deployment": "the deployment is",
    "stop_on_contains": "early stopping watches a figure whose name contains",
}
# the fact class whose rules explain a failed check
CHECK_FACT = {"family": "Family", "approach": "Approach", "technique": ("Preferred", "Technique"),
              "top_candidate": "Candidate", "top_candidate_max_params": "Candidate",
              "candidates_include": "Candidate", "candidates_exclude": "Candidate",
              "rejected_include": "Rejected", "risks_include": "Risk", "risks_exclude": "Risk",
              "diagnoses_include": "Diagnosis", "diagnoses_exclude": "Diagnosis",
              "top_diagnosis": "Diagnosis", "first_fix": "Diagnosis", "fixes_include": "Diagnosis",
              "frozen_layers": "Hyper", "unfreeze": "Hyper", "learning_rate": "Hyper",
              "mitigations_exclude": "Risk", "criterion": "Criterion", "top3_include": "Candidate",
              "augmentation": "Hyper", "epochs": "Hyper", "batch_size": "Hyper", "seeds": "Seeds",
              "device": "DeployDevice", "deployment": "DeployDevice", "stop_on_contains": "Hyper"}

COLUMNS = ["id", "file", "row", "status", "error", "task", "dataset_size", "task_similarity",
           "domain_similarity", "compute", "deployment", "latency_ms", "family", "top_candidates",
           "approach", "technique", "learning_rate", "frozen_layers", "unfreeze", "lora_rank", "risks",
           "diagnoses", "checks", "checks_failed", "check_results", "failures", "violations"]


# --- reading scenario files



def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


# --- one scenario -> one row


def check_expectations(expect: Any, plan, where: str) -> list[dict]:
    """[{check, expected, actual, passed}] for an ``expect:`` block."""
    if not isinstance(expect, dict):
        raise KnowledgeError(f"The 'expect' field of {where} must be a mapping of checks "
                             f"({', '.join(CHECKS)}). Got {type(expect).__name__} instead.")
    cands = [c["model"] for c in plan.candidates]
    risks = [r["pitfall"] for r in plan.risks]
    diags = [d["pitfall"] for d in plan.diagnoses]
    top_fixes = [f["fix"] for f in plan.diagnoses[0]["fixes"]] if plan.diagnoses else []
    actual = {
        "family": plan.architecture["family"], "approach": plan.approach["choice"],
        "technique": plan.technique_id, "top_candidate": cands[0] if cands else None,
        "top_candidate_max_params": plan.candidates[0]["params"] if cands else None,
        "candidates_include": cands, "candidates_exclude": cands,
        "rejected_include": [r["model"] for r in plan.rejected],
        "risks_include": risks, "risks_exclude": risks,
        "diagnoses_include": diags, "diagnoses_exclude": diags,
        "top_diagnosis": diags[0] if diags else None,
        "first_fix": top_fixes[0] if top_fixes else None, "fixes_include": top_fixes,
        "frozen_layers": plan.hyperparameters.frozen_layers,
        "unfreeze": plan.hyperparameters.unfreeze,
        "learning_rate": plan.hyperparameters.learning_rate,
        "mitigations_exclude": [m["fix"] for r in plan.risks for m in r["mitigations"]],
        "criterion": plan.criteria[0]["name"] if plan.criteria else None,
        "top3_include": cands[:3],
        "augmentation": plan.hyperparameters.augmentation,
        "epochs": plan.hyperparameters.epochs,
        "batch_size": plan.hyperparameters.batch_size,
        "seeds": plan.evaluation.seeds,
        "device": (plan.device or {}).get("class"),
        "deployment": plan.scenario.get("deployment"),
        "stop_on_contains": plan.evaluation.stop_on or "",
    }
    out = []
    for check, expected in expect.items():
        if check not in CHECKS:
            close = nearest(check, CHECKS)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise KnowledgeError(f"The 'expect.{check}' field of {where} is not a known check "
                                 f"({', '.join(CHECKS)}).{hint}")
        got = actual[check]
        if check.endswith("_include"):
            passed = all(e in got for e in _as_list(expected))
        elif check.endswith("_exclude"):
            passed = not any(e in got for e in _as_list(expected))
        elif check == "stop_on_contains":
            passed = str(expected).lower() in str(got).lower()
        elif check == "augmentation":
            passed = list(got or []) == _as_list(expected)
        elif check == "top_candidate_max_params":
            passed = got is not None and got <= _count(expected, f"expect.{check}", where)
        elif check == "learning_rate":
            passed = isinstance(got, (int, float)) and isinstance(expected, (int, float)) \
                and not isinstance(expected, bool) and abs(got - expected) <= 1e-12 + 1e-9 * abs(expected)
        else:
            passed = got == expected or str(got) == str(expected)
        out.append({"check": check, "expected": expected, "actual": got, "passed": passed})
    return out


def _count(value: Any, name: str, where: str) -> float:
    """A parameter count: a number or text such as 30M or 1.5B."""
    from knowledge.reading import finite

    if isinstance(value, str) and len(value) <= 64:
        t = value.strip().upper().replace("_", "").replace(",", "")
        mult = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(t[-1:], 1)
        try:
            value = float(t[:-1] if mult != 1 else t) * mult
        except ValueError:
            pass
    if not finite(value) or value <= 0:
        from knowledge.schema import error

        raise error(name, where, "a positive parameter count such as 30000000 or 30M", value)
    return float(value)


def explain_failure(plan, check: str) -> list[str]:
    """The rule-trace steps that concluded the fact a failed check is about."""
    classes = CHECK_FACT[check]
    want = tuple(f"{c}(" for c in ((classes,) if isinstance(classes, str) else classes))
    return [f"{t['rule']}: {'; '.join(c for c in t['concluded'] if c.startswith(want))}"
            for t in plan.trace if any(c.startswith(want) for c in t["concluded"])]


def consult_row(kb, engine, file: str, row: int, raw: Any) -> dict:
    """One output row: decisions and checks, or an error naming file, row and field."""
    from rules.scenario import normalize
    from rules.reader.symptoms import match_symptoms

    base = {c: None for c in COLUMNS}
    where = f"{file}:{row}" if not getattr(raw, "origin", None) else None
    sid = raw.get("id") if isinstance(raw, dict) else None
    base.update({"id": str(sid) if sid is not None else f"{Path(file).name}:{row}", "file": file, "row": row})
    try:
        if isinstance(raw, Exception):
            raise raw
        if isinstance(raw, dict) and not getattr(raw, "origin", None):
            from knowledge.loader import LineDict

            raw = LineDict(raw)
            raw.origin, raw.line, raw.lines = f"{file}:{row}", 0, {}
        readings: list = []
        scenario = normalize(raw, kb, origin=where or file,
                             symptom_matcher=lambda text, w: match_symptoms(text, kb, w, readings))
        plan = engine.consult(scenario, trace=False, readings=readings)
        checks = check_expectations(raw["expect"], plan, f"{file}:{row}") if raw.get("expect") else []
        if any(not c["passed"] for c in checks):  # explain the failure: consult again with the trace
            plan = engine.consult(scenario, readings=readings)
    except KnowledgeError as exc:
        from knowledge.reading import show

        base.update({"status": "error", "error": show(str(exc), 4000)})
        if isinstance(raw, dict):
            for k in ("task", "dataset_size"):
                base[k] = raw.get(k) if not isinstance(raw.get(k), (list, dict)) else None
        return base
    from rules.lint import lint

    hp = plan.hyperparameters
    failed = [c for c in checks if not c["passed"]]
    violations = lint(plan, kb)
    base.update({
        "status": "ok",
        **{k: scenario[k] for k in ("task", "dataset_size", "task_similarity", "domain_similarity",
                                     "compute", "deployment", "latency_ms")},
        "family": plan.architecture["family"],
        "top_candidates": ";".join(c["model"] for c in plan.candidates[:3]),
        "approach": plan.approach["choice"], "technique": plan.technique_id,
        "learning_rate": hp.learning_rate, "frozen_layers": None if hp.frozen_layers is None
        else str(hp.frozen_layers), "unfreeze": hp.unfreeze,
        "lora_rank": hp.lora.rank if hp.lora else None,
        "risks": ";".join(f"{r['pitfall']}:{r['likelihood']}" for r in plan.risks),
        "diagnoses": ";".join(f"{d['pitfall']}:{d['confidence']:.2f}" for d in plan.diagnoses),
        "checks": len(checks), "checks_failed": len(failed),
        "check_results": ";".join(f"{c['check']}={'pass' if c['passed'] else 'fail'}" for c in checks) or None,
        "failures": json.dumps([{**{k: c[k] for k in ("check", "expected", "actual")},
                                 "trace": explain_failure(plan, c["check"])} for c in failed],
                               default=str) if failed else None,
        "violations": json.dumps(violations) if violations else None,
    })
    return base


def consult_chunk(items: list, knowledge_dirs: tuple = ()) -> list[dict]:
    """Rows for a chunk of (file, row, raw) items; one engine per process serves them all."""
    from knowledge.loader import get_kb
    from rules.engine import get_engine

    kb = get_kb(knowledge_dirs)
    engine = get_engine(kb)
    return [consult_row(kb, engine, f, r, raw) for f, r, raw in items]


def summarize(rows: list[dict]) -> dict:
    """Conformance: passed/failed per check, and the failures with their rule trace."""
    per: dict = {}
    failures = []
    for r in rows:
        if r["status"] != "ok":
            continue
        for item in (r["check_results"] or "").split(";"):
            if item:
                name, _, result = item.partition("=")
                per.setdefault(name, {"passed": 0, "failed": 0})["passed" if result == "pass" else "failed"] += 1
        for f in json.loads(r["failures"]) if r["failures"] else []:
            failures.append({"id": r["id"], "file": r["file"], "row": r["row"], **f})
    passed = sum(v["passed"] for v in per.values())
    failed = sum(v["failed"] for v in per.values())
    violations: dict = {}
    lint_failures = []
    for r in rows:
        for v in json.loads(r["violations"]) if r.get("violations") else []:
            violations[v["check"]] = violations.get(v["check"], 0) + 1
            lint_failures.append({"id": r["id"], "file": r["file"], "row": r["row"], **v})
    return {"scenarios": len(rows), "errors": sum(r["status"] == "error" for r in rows),
            "checks": passed + failed, "passed": passed, "failed": failed,
            "by_check": dict(sorted(per.items())), "failures": failures,
            "plans_with_violations": sum(bool(r.get("violations")) for r in rows),
            "violations": dict(sorted(violations.items())), "violation_examples": lint_failures[:50]}
