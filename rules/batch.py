"""Batch consultation: many scenario files -> one table, with expectation checks.

Input files: YAML (a list, or ``scenarios:`` with shared ``defaults:``), JSON
(the same shapes), JSONL (one scenario per line) and CSV (one per row; list
fields separated by ``;``, ``expect.<check>`` columns for checks). Each
scenario may carry an ``id`` and an ``expect:`` block.

Every input scenario yields exactly one output row; a bad scenario yields an
error row naming file, row and field, and the batch goes on. Rows are
computed in chunks (``consult_chunk``) so that one engine per worker process
serves many scenarios: the same code runs in process, on joblib's local
processes (``--jobs``) or on a Dask cluster (``--scheduler``).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Iterable, Optional

from knowledge.schema import KnowledgeError, nearest

LIST_FIELDS = ("source_domain", "target_domain", "symptoms")
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
    "criterion": "the first selection criterion is",
}
# the fact class whose rules explain a failed check
CHECK_FACT = {"family": "Family", "approach": "Approach", "technique": ("Preferred", "Technique"),
              "top_candidate": "Candidate", "top_candidate_max_params": "Candidate",
              "candidates_include": "Candidate", "candidates_exclude": "Candidate",
              "rejected_include": "Rejected", "risks_include": "Risk", "risks_exclude": "Risk",
              "diagnoses_include": "Diagnosis", "diagnoses_exclude": "Diagnosis",
              "top_diagnosis": "Diagnosis", "first_fix": "Diagnosis", "fixes_include": "Diagnosis",
              "frozen_layers": "Hyper", "unfreeze": "Hyper", "criterion": "Criterion"}

COLUMNS = ["id", "file", "row", "status", "error", "task", "dataset_size", "task_similarity",
           "domain_similarity", "compute", "deployment", "latency_ms", "family", "top_candidates",
           "approach", "technique", "learning_rate", "frozen_layers", "unfreeze", "lora_rank", "risks",
           "diagnoses", "checks", "checks_failed", "check_results", "failures", "violations"]


# --- reading scenario files


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    from knowledge.reading import parse_csv

    rows = []
    _, records = parse_csv(text, str(path))
    for line, r in records:
        item: dict = {}
        for k, v in r.items():
            if k is None or v is None or v.strip() == "":
                continue
            v = v.strip()
            if k.startswith("expect."):
                check = k[len("expect."):]
                item.setdefault("expect", {})[check] = ([x.strip() for x in v.split(";") if x.strip()]
                                                        if check.endswith(("_include", "_exclude")) else _scalar(v))
            elif k in LIST_FIELDS:
                item[k] = [x.strip() for x in v.split(";") if x.strip()]
            else:
                item[k] = _scalar(v) if k != "id" else v
        rows.append((line, item))
    return rows


def _scalar(v: str):
    if len(v) > 64:  # no number is this long (and int() of thousands of digits is refused or slow)
        return v
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def read_scenarios(path: str | Path) -> list[tuple[str, int, Any]]:
    """(file, row number, raw scenario or an Exception) for every scenario of one file."""
    from knowledge.loader import LineDict, read_yaml
    from knowledge.reading import read_text

    path = Path(path)
    name = str(path)
    suffix = path.suffix.lower()
    text = read_text(path, kind="structured", what="scenario file")
    if not text.strip():
        raise KnowledgeError(f"{name}: an empty file, expected scenarios")
    if suffix == ".csv":
        rows = _csv_rows(path, text)
        if not rows:
            raise KnowledgeError(f"{name}: a header and no rows, expected one scenario per row")
        return [(name, line, r) for line, r in rows]
    if suffix in (".jsonl", ".ndjson"):
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append((name, i, read_yaml(path, text=line, origin=f"{name}:{i}")))
            except KnowledgeError as exc:
                out.append((name, i, exc))
        return out
    data = read_yaml(path, text=text)
    defaults: dict = {}
    if isinstance(data, dict) and "scenarios" in data:
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise KnowledgeError(f"The 'defaults' field of {name} must be a mapping of scenario fields. "
                                 f"Got {type(defaults).__name__} instead.")
        data = data["scenarios"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise KnowledgeError(f"{name}: a scenario file must hold a list of scenarios or 'scenarios:'. "
                             f"Got {type(data).__name__} instead.")
    if not data:
        raise KnowledgeError(f"{name}: an empty list of scenarios, expected at least one")
    out = []
    for i, item in enumerate(data, 1):
        line = getattr(item, "line", i)
        if isinstance(item, dict) and defaults:
            merged = LineDict({**defaults, **item})
            merged.origin, merged.line = getattr(item, "origin", name), getattr(item, "line", 0)
            merged.lines = {**getattr(defaults, "lines", {}), **getattr(item, "lines", {})}
            if isinstance(defaults.get("expect"), dict) and isinstance(item.get("expect"), dict):
                merged["expect"] = {**defaults["expect"], **item["expect"]}
            item = merged
        out.append((name, line, item))
    return out


# --- one scenario -> one row


def check_expectations(expect: Any, plan: dict, where: str) -> list[dict]:
    """[{check, expected, actual, passed}] for an ``expect:`` block."""
    if not isinstance(expect, dict):
        raise KnowledgeError(f"The 'expect' field of {where} must be a mapping of checks "
                             f"({', '.join(CHECKS)}). Got {type(expect).__name__} instead.")
    cands = [c["model"] for c in plan["candidates"]]
    risks = [r["pitfall"] for r in plan["risks"]]
    diags = [d["pitfall"] for d in plan["diagnoses"]]
    top_fixes = [f["fix"] for f in plan["diagnoses"][0]["fixes"]] if plan["diagnoses"] else []
    actual = {
        "family": plan["architecture"]["family"], "approach": plan["approach"]["choice"],
        "technique": plan["technique"]["choice"], "top_candidate": cands[0] if cands else None,
        "top_candidate_max_params": plan["candidates"][0]["params"] if cands else None,
        "candidates_include": cands, "candidates_exclude": cands,
        "rejected_include": [r["model"] for r in plan["rejected"]],
        "risks_include": risks, "risks_exclude": risks,
        "diagnoses_include": diags, "diagnoses_exclude": diags,
        "top_diagnosis": diags[0] if diags else None,
        "first_fix": top_fixes[0] if top_fixes else None, "fixes_include": top_fixes,
        "frozen_layers": plan["hyperparameters"].get("frozen_layers"),
        "unfreeze": plan["hyperparameters"].get("unfreeze"),
        "criterion": plan["criteria"][0]["name"] if plan["criteria"] else None,
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
        elif check == "top_candidate_max_params":
            passed = got is not None and got <= _count(expected, f"expect.{check}", where)
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


def explain_failure(plan: dict, check: str) -> list[str]:
    """The rule-trace steps that concluded the fact a failed check is about."""
    classes = CHECK_FACT[check]
    want = tuple(f"{c}(" for c in ((classes,) if isinstance(classes, str) else classes))
    return [f"{t['rule']}: {'; '.join(c for c in t['concluded'] if c.startswith(want))}"
            for t in plan["trace"] if any(c.startswith(want) for c in t["concluded"])]


def consult_row(kb, engine, file: str, row: int, raw: Any) -> dict:
    """One output row: decisions and checks, or an error naming file, row and field."""
    from rules.scenario import normalize
    from rules.symptoms import match_symptoms

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

    hp = plan["hyperparameters"]
    failed = [c for c in checks if not c["passed"]]
    violations = lint(plan, kb)
    base.update({
        "status": "ok",
        **{k: scenario[k] for k in ("task", "dataset_size", "task_similarity", "domain_similarity",
                                     "compute", "deployment", "latency_ms")},
        "family": plan["architecture"]["family"],
        "top_candidates": ";".join(c["model"] for c in plan["candidates"][:3]),
        "approach": plan["approach"]["choice"], "technique": plan["technique"]["choice"],
        "learning_rate": hp.get("learning_rate"), "frozen_layers": None if hp.get("frozen_layers") is None
        else str(hp["frozen_layers"]), "unfreeze": hp.get("unfreeze"),
        "lora_rank": (hp.get("lora") or {}).get("rank"),
        "risks": ";".join(f"{r['pitfall']}:{r['likelihood']}" for r in plan["risks"]),
        "diagnoses": ";".join(f"{d['pitfall']}:{d['confidence']:.2f}" for d in plan["diagnoses"]),
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


# --- writing tables (stdlib and pyarrow; no pandas on this path)


def _cell(v):
    return "" if v is None else v


def to_markdown(rows: list[dict], columns: list[str]) -> str:
    from knowledge.reading import show

    def esc(v):  # control and right-to-left characters escaped (ids and names are user text)
        return show(str(_cell(v)).replace("\n", " "), 1_000_000).replace("|", "\\|")

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(esc(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_table(rows: list[dict], path: Path) -> None:
    """CSV, JSON, JSONL, Parquet or Markdown by extension, written atomically."""
    from knowledge.reading import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise KnowledgeError(f"{path}: unknown output format {suffix!r} "
                             f"(use .csv, .json, .jsonl, .parquet or .md)")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols = {c: [r.get(c) for r in rows] for c in COLUMNS}
            for c in ("dataset_size", "row", "checks", "checks_failed", "lora_rank"):  # an error row may hold text
                cols[c] = pa.array([v if isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2 ** 63
                                    else None for v in cols[c]], type=pa.int64())
            for c in ("latency_ms", "learning_rate"):
                cols[c] = pa.array([float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                                    for v in cols[c]], type=pa.float64())
            for c in COLUMNS:
                if not isinstance(cols[c], pa.Array):
                    cols[c] = pa.array([None if v is None else str(v) for v in cols[c]], type=pa.string())
            pq.write_table(pa.table(cols), tmp)
        else:
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                if suffix == ".csv":
                    w = csv.DictWriter(fh, fieldnames=COLUMNS)
                    w.writeheader()
                    w.writerows({c: _cell(r.get(c)) for c in COLUMNS} for r in rows)
                elif suffix == ".json":
                    json.dump(rows, fh, indent=1, default=str)
                elif suffix == ".jsonl":
                    for r in rows:
                        fh.write(json.dumps(r, default=str) + "\n")
                else:
                    fh.write(to_markdown(rows, COLUMNS))


OUTPUT_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet", ".md", ".markdown")


# --- the batch


class Journal:
    """Rows finished so far, appended as JSON lines beside the output (for --resume)."""

    def __init__(self, out: Optional[Path]):
        self.path = out.with_name(f".{out.name}.partial.jsonl") if out else None
        self.fh = None

    def done(self) -> dict:
        """Rows finished by an earlier run; a damaged line (cut short by a kill, or edited) is
        left out, so its scenario is consulted again."""
        from knowledge.reading import parse_json, read_text

        rows: dict = {}
        if not (self.path and (self.path.exists() or self.path.is_symlink())):
            return rows
        try:
            text = read_text(self.path, kind="log", what="batch journal")
        except KnowledgeError:
            return rows  # unreadable as a whole (binary, too big, not a file): every row is consulted again
        for i, line in enumerate(text.splitlines(), 1):
            try:
                r = parse_json(line, str(self.path), line=i)
            except KnowledgeError:
                continue
            if (isinstance(r, dict) and set(COLUMNS) <= set(r) and isinstance(r["file"], str)
                    and isinstance(r["row"], int) and not isinstance(r["row"], bool)
                    and r["status"] in ("ok", "error")):
                rows[(r["file"], r["row"])] = r
        return rows

    def add(self, rows: Iterable[dict]) -> None:
        if not self.path:
            return
        try:
            if self.fh is None:
                self.fh = self.path.open("a", encoding="utf-8")
            for r in rows:
                self.fh.write(json.dumps(r, default=str) + "\n")
            self.fh.flush()
        except OSError as exc:
            from knowledge.reading import OutputError

            raise OutputError(f"{self.path}: cannot write the batch journal ({exc.strerror or exc})") from None

    def close(self, remove: bool) -> None:
        if self.fh:
            self.fh.close()
        if remove and self.path and self.path.exists():
            self.path.unlink()


SCHEDULER_RE = re.compile(r"(?:(?:tcp|tls|ucx|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):\d{1,5}"
                          r"|inproc://\S+")


def check_scheduler(address: str) -> str:
    """A Dask scheduler address (``tcp://host:port``, ``host:port``, ``tls://...``), checked before any work."""
    from knowledge.reading import show

    if not SCHEDULER_RE.fullmatch(address or "") or (
            ":" in address and not address.startswith("inproc") and int(address.rsplit(":", 1)[1]) > 65535):
        raise KnowledgeError(f"The '--scheduler' option must be a Dask scheduler address such as "
                             f"tcp://host:8786. Got {show(repr(address))} instead.")
    return address


def run_batch(items: list, *, jobs: int = 1, scheduler: Optional[str] = None, chunk_size: int = 250,
              knowledge_dirs: tuple = (), journal: Optional[Journal] = None, bar=None) -> list[dict]:
    """Rows for ``items`` in input order, in process, on local processes or on a Dask cluster."""
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    results: list = [None] * len(chunks)

    def collect(i, rows):
        results[i] = rows
        if journal:
            journal.add(rows)
        if bar is not None:
            bar.update(len(rows))

    if scheduler is None and jobs <= 1:
        for i, ch in enumerate(chunks):
            collect(i, consult_chunk(ch, knowledge_dirs))
    else:
        from joblib import Parallel, delayed, parallel_config

        if scheduler is not None:
            from dask.distributed import Client

            try:
                client = Client(check_scheduler(scheduler), timeout="20s")
            except (OSError, ValueError, TypeError) as exc:
                raise KnowledgeError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from None
            ctx = parallel_config(backend="dask")
        else:
            client = None
            ctx = parallel_config(backend="loky", n_jobs=jobs)
        try:
            with ctx:
                par = Parallel(n_jobs=jobs if scheduler is None else -1, return_as="generator")
                for i, rows in enumerate(par(delayed(consult_chunk)(ch, knowledge_dirs) for ch in chunks)):
                    collect(i, rows)
        finally:
            if client is not None:
                client.close()
    return [r for rows in results for r in rows]


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
