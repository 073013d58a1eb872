"""The layout's invariants, measured: import cycles among the project's modules (module-level and
function-local imports both count), files over 500 lines, technique names compared outside the
technique registry (``==``/``!=``/``in`` with a technique id, a tuple of ids, an experta pattern matching
a technique by name), and plans read as dicts (``plan["field"]``, ``plan.get("field")``) outside the
file boundary (``rules/contract.py``, where a plan file's JSON form is read and written, and the reader
of a run folder's run.json, ``harness/troubleshooting/formats.py``).

    python bench/check_layout.py            # a report; exit 1 when an invariant is broken
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("knowledge", "rules", "harness")
MAX_LINES = 500
LONG_OK = {"harness/evaluation/stats.py"}  # the statistics module may be long (issue: tested, pure functions)
# where technique names may be compared: the technique registry (the knowledge base's entries carry the
# properties everything else asks)
REGISTRY_OK = {"harness/training/registry.py"}
# the file boundary: where a plan's JSON form is read or written (plan files; run.json's recorded plan)
BOUNDARY_OK = {"rules/contract.py", "harness/troubleshooting/formats.py"}


def entry_ids(name: str) -> set[str]:
    """The entry ids of one knowledge file (``knowledge/data/<name>.yaml``)."""
    import re

    text = (ROOT / "knowledge" / "data" / f"{name}.yaml").read_text()
    return set(re.findall(r"^  - id: (\w+)", text, re.M))


def technique_ids() -> set[str]:
    return entry_ids("techniques")


def _names(node) -> list:
    """String constants a comparison operand names: a constant, or a tuple/list/set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def technique_comparisons(path: Path, ids: set) -> list[int]:
    """Lines comparing a value with a technique's name (``==``, ``!=``, ``in``), a tuple of technique
    names assigned as a dispatch list, or an experta pattern matching a technique fact by name."""
    tree = ast.parse(path.read_text(), str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            if any(n in ids for side in (node.left, *node.comparators) for n in _names(side)):
                lines.append(node.lineno)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) > 1:
            names = _names(node)
            if len(names) == len(node.elts) and all(n in ids for n in names):
                lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Technique"
              and any(k.arg == "value" and (_names(k.value) or (isinstance(k.value, ast.BinOp)))
                      for k in node.keywords)):
            lines.append(node.lineno)
    return sorted(set(lines))


PLAN_FIELDS = ("schema_version", "scenario", "architecture", "criteria", "candidates", "rejected", "model",
               "size_class", "approach", "technique", "hyperparameters", "hyperparameters_why", "recipes",
               "risks", "diagnoses", "evaluation", "trace", "applied_fixes", "assumptions", "device", "memory",
               "symptom_readings", "clarify", "empirical_ranking", "training_time", "task_note", "notes")


def _is_plan(node) -> bool:
    return isinstance(node, ast.Name) and "plan" in node.id.lower()


def plan_dict_reads(path: Path) -> list[int]:
    """Lines reading a plan as a dict: ``plan["field"]`` or ``plan.get("field")`` on a name that holds
    a plan, with a key that is one of the Plan's fields."""
    tree = ast.parse(path.read_text(), str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_plan(node.value) and \
                isinstance(node.slice, ast.Constant) and node.slice.value in PLAN_FIELDS:
            lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and _is_plan(node.func.value) and node.args and isinstance(node.args[0], ast.Constant)
              and node.args[0].value in PLAN_FIELDS):
            lines.append(node.lineno)
    return sorted(set(lines))


def threshold_ids() -> set[str]:
    return entry_ids("thresholds")


TH_NAMES = {"th", "thresholds"}  # the names a dict of thresholds goes by in the code


def threshold_reads(path: Path) -> list[tuple[int, str]]:
    """(line, name) of each threshold the code reads by name: ``kb.threshold("x")``, ``th["x"]``,
    ``th.get("x", ...)``, and an experta pattern on the Threshold fact (``Threshold(x=MATCH.x)``)."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and _names(node.args[0]):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "threshold") or (
                    isinstance(f, ast.Attribute) and f.attr == "get" and isinstance(f.value, ast.Name)
                    and f.value.id in TH_NAMES):
                out += [(node.lineno, n) for n in _names(node.args[0])]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Threshold":
            out += [(node.lineno, k.arg) for k in node.keywords if k.arg and k.arg not in ("rule", "basis")]
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in TH_NAMES
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            out.append((node.lineno, node.slice.value))
    return out


def project_files() -> list[Path]:
    files = [ROOT / "cli.py"]
    for pkg in PACKAGES:
        files += sorted((ROOT / pkg).rglob("*.py"))
    return files


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules imported anywhere in the file (module level or inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path)
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            while n and n not in modules:
                n = n.rpartition(".")[0]
            if n and n != here and not here.startswith(n + "."):  # a package's own __init__ is not a cycle
                out.add(n)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main() -> int:
    files = project_files()
    modules = {module_name(f) for f in files}
    graph = {module_name(f): imports(f, modules) for f in files}
    cyc = cycles(graph)
    long = [(str(f.relative_to(ROOT)), n) for f in files
            if (n := len(f.read_text().splitlines())) > MAX_LINES and str(f.relative_to(ROOT)) not in LONG_OK]
    print(f"modules: {len(modules)}")
    print(f"import cycles: {len(cyc)}")
    for c in cyc:
        print("  " + " <-> ".join(c))
    print(f"files over {MAX_LINES} lines (statistics module excepted): {len(long)}")
    for f, n in sorted(long, key=lambda x: -x[1]):
        print(f"  {f}: {n}")
    ids = technique_ids()
    rel = {f: str(f.relative_to(ROOT)) for f in files}
    tech = {rel[f]: n for f in files if rel[f] not in REGISTRY_OK and (n := technique_comparisons(f, ids))}
    print(f"technique-name comparisons outside the registry: {sum(len(v) for v in tech.values())}")
    for f, n in sorted(tech.items()):
        print(f"  {f}: lines {', '.join(map(str, n))}")
    reads = {rel[f]: n for f in files if rel[f] not in BOUNDARY_OK and (n := plan_dict_reads(f))}
    print(f"plans read as dicts outside the file boundary: {sum(len(v) for v in reads.values())}")
    for f, n in sorted(reads.items()):
        print(f"  {f}: lines {', '.join(map(str, n))}")
    known = threshold_ids()
    unknown = {rel[f]: bad for f in files if (bad := [(n, x) for n, x in threshold_reads(f) if x not in known])}
    print(f"thresholds read by a name the knowledge base does not define: {sum(len(v) for v in unknown.values())}")
    for f, bad in sorted(unknown.items()):
        print(f"  {f}: " + ", ".join(f"line {n} {x!r}" for n, x in bad))
    return 1 if cyc or long or tech or reads or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
