"""The plan linter over the scenario grid: size, run time, violations.

    python bench/bench_lint.py [--jobs 2] [--n 10080]
    python bench/bench_lint.py --in-process      # one process, no batch: counts by check

--in-process consults and lints in this process; it also runs against an
older checkout with this file and rules/lint.py copied in (the linter's
learning-rate floor is supplied when that knowledge base lacks it), which is
how BENCHMARKS.md counts the violations of the plans before the fixes.

Writes the grid of rules.lint.grid (every scenario field, every value) to a
JSONL file and times a whole `tlexpert batch GRID -o out.jsonl --jobs N
--format json` process (start-up included; every plan is linted inside
batch). Prints the grid size, the wall time, the throughput and the
violations by check (there should be none).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--n", type=int, default=None, help="grid size (default: rules.lint.GRID_SIZE)")
    ap.add_argument("--in-process", action="store_true", help="consult and lint here, without batch")
    args = ap.parse_args()
    if args.in_process:
        return in_process(args.n)
    from knowledge import get_kb
    from rules.lint import GRID_SIZE, grid, grid_values

    kb = get_kb()
    rows = grid(kb, n=args.n or GRID_SIZE)
    values = grid_values(kb)
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "grid.jsonl"
    src.write_text("\n".join(json.dumps(s) for s in rows) + "\n")
    out = tmp / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "batch", str(src), "-o", str(out),
                        "--jobs", str(args.jobs), "--format", "json"], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    if p.returncode not in (0, 1):
        sys.exit(f"batch failed ({p.returncode}): {p.stdout[-500:]} {p.stderr[-2000:]}")
    summary = json.loads(p.stdout)["summary"]
    print(f"grid: {len(rows)} scenarios, {len(values)} fields, "
          f"{sum(len(v) for v in values.values())} field values; {os.cpu_count()} cores, --jobs {args.jobs}")
    print(f"  batch + lint wall time: {wall:.1f} s ({len(rows) / wall:.0f} scenarios/s), "
          f"invalid: {summary['errors']}")
    print(f"  plans with violations: {summary['plans_with_violations']}  by check: {summary['violations'] or '{}'}")
    for v in summary["violation_examples"][:10]:
        print(f"    {v['id']}: [{v['check']}] {v['message']}")


def in_process(n) -> None:
    import collections

    from knowledge import get_kb
    from knowledge.schema import Threshold
    from rules.engine import get_engine
    from rules.lint import GRID_SIZE, grid, lint
    from rules.scenario import normalize

    kb = get_kb()
    if "learning_rate_floor" not in kb.sections["thresholds"]:  # an older knowledge base
        kb.sections["thresholds"]["learning_rate_floor"] = Threshold(
            id="learning_rate_floor", value=1e-5, reason="supplied by bench_lint", sources=[])
    engine = get_engine(kb)
    rows = grid(kb, n=n or GRID_SIZE)
    counts: collections.Counter = collections.Counter()
    bad = 0
    t = time.perf_counter()
    for s in rows:
        plan = engine.consult(normalize({k: v for k, v in s.items() if k != "id"}, kb), trace=False)
        found = lint(plan, kb)
        bad += bool(found)
        counts.update(v["check"] for v in found)
    wall = time.perf_counter() - t
    print(f"grid: {len(rows)} scenarios in process, {wall:.1f} s ({len(rows) / wall:.0f} scenarios/s)")
    print(f"  plans with violations: {bad}  by check: {dict(counts.most_common())}")


if __name__ == "__main__":
    main()
