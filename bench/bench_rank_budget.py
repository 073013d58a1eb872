"""What rank-models costs per candidate and per example, and how well `--budget` keeps to a budget.

    python bench/bench_rank_budget.py [--sizes 250,2000] [--repeats 3] [--budgets 40,80,160] [--out bench/out/rank-budget]

1. Rate: all-MiniLM-L6-v2 scored (every layer encoded, LogME, H-score, kNN and the
   cross-validated probe, layers `mean`) on stratified samples of N tweets of
   TweetEval `sentiment_train.csv`, each time with empty caches; sizes interleaved
   and repeated, medians. The slope gives the examples per second (the
   knowledge base's `cpu-ranking-minilm` throughput), the intercept the fixed cost per
   candidate (`rank_candidate_overhead_s`).
2. Budget: `rank-models --budget B` on four candidates (all-MiniLM-L6-v2, the same
   model cut after 2 and 4 layers, and a randomly initialised copy; the copies are
   built in seconds, without training) on 3,000 tweets, fresh caches each time:
   the examples it chose, its estimate, the wall time it spent and what it skipped.

Prints a Markdown table; writes OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, TWEETEVAL, read_rows, sample, write_csv  # noqa: E402  (puts the project on sys.path)


def build_copies(out: Path) -> dict[str, str]:
    """all-MiniLM-L6-v2 and three copies of it: cut after 2 and 4 layers, and random weights."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from harness.training.models import resolve_model
    from knowledge import get_kb

    _, base = resolve_model("all-MiniLM-L6-v2", get_kb())
    cands = {"minilm-L6": base}
    tok = AutoTokenizer.from_pretrained(base)
    for name in ("minilm-L4", "minilm-L2", "random-init"):
        dest = out / name
        cands[name] = str(dest)
        if (dest / "config.json").exists():
            continue
        if name == "random-init":
            model = AutoModel.from_config(AutoConfig.from_pretrained(base))
        else:
            model = AutoModel.from_pretrained(base)
            keep = int(name[-1])
            model.encoder.layer = model.encoder.layer[:keep]
            model.config.num_hidden_layers = keep
        model.save_pretrained(dest)
        tok.save_pretrained(dest)
    return cands


def time_scoring(path: str, data, n: int) -> float:
    """Seconds to score one candidate on n examples, caches empty."""
    from harness.ranking.rank import rank_models
    from knowledge import get_kb

    with tempfile.TemporaryDirectory() as cache:
        os.environ["TLEXPERT_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        res = rank_models([path], data, get_kb(), max_examples=n, seed=0)
        dt = time.perf_counter() - t0
    assert res["rows"][0]["status"] == "ok", res["rows"][0]
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="250,2000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budgets", default="40,80,160")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "rank-budget"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from harness.training.data import load_text
    from harness.training.models import resolve_model
    from knowledge import get_kb

    rows = sample(read_rows(TWEETEVAL / "sentiment_train.csv"), 3000, 11)
    data_file = write_csv(out / "tweets-3000.csv", rows)
    data = load_text(data_file)
    base = resolve_model("all-MiniLM-L6-v2", get_kb())[1]
    sizes = [int(s) for s in args.sizes.split(",")]
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for rep in range(args.repeats):
        for n in (sizes if rep % 2 == 0 else sizes[::-1]):
            times[n].append(time_scoring(base, data, n))
            print(f"  scored {n} examples: {times[n][-1]:.1f} s", file=sys.stderr, flush=True)
    med = {n: statistics.median(v) for n, v in times.items()}
    lo, hi = min(sizes), max(sizes)
    rate = (hi - lo) / (med[hi] - med[lo])
    overhead = med[lo] - lo / rate

    cands = build_copies(out / "models")
    budget_rows = []
    for b in [float(x) for x in args.budgets.split(",")]:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TLEXPERT_CACHE_DIR": cache}
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, str(ROOT / "cli.py"), "rank-models", "--data", data_file, "--candidates",
                 ",".join(cands.values()), "--budget", f"{b:g}s", "--max-examples", "3000", "--format", "json"],
                capture_output=True, text=True, env=env, cwd=ROOT)
            wall = time.perf_counter() - t0
        if proc.returncode != 0:
            budget_rows.append({"budget_s": b, "error": proc.stderr.strip()[-300:], "process_s": round(wall, 1)})
            continue
        res = json.loads(proc.stdout)
        bud = res["budget"]
        budget_rows.append({"budget_s": b, "examples": bud["examples"], "estimated_s": bud["estimated_seconds"],
                            "spent_s": bud["spent_seconds"], "process_s": round(wall, 1),
                            "scored": [r["candidate"] for r in res["rows"] if r["status"] == "ok"],
                            "skipped": bud["skipped"]})
        print(f"  budget {b:g} s: {budget_rows[-1]}", file=sys.stderr, flush=True)
    summary = {"times": times, "median": med, "examples_per_second": round(rate, 1),
               "overhead_s": round(overhead, 2), "budgets": budget_rows,
               "candidates": {k: str(v) for k, v in cands.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("| examples | scoring time, median of %d (s) |" % args.repeats)
    print("| --- | --- |")
    for n in sizes:
        print(f"| {n:,} | {med[n]:.1f} ({', '.join(f'{t:.1f}' for t in times[n])}) |")
    print(f"\nrate {rate:.1f} examples/s, overhead {overhead:.2f} s per candidate\n")
    print("| budget | examples | estimated | spent (scoring) | whole process | scored | skipped |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    name = {str(v): k for k, v in cands.items()}
    for r in budget_rows:
        if "error" in r:
            print(f"| {r['budget_s']:g} s | error: {r['error']} | | | {r['process_s']} s | | |")
            continue
        print(f"| {r['budget_s']:g} s | {r['examples']:,} | {r['estimated_s']:.0f} s | {r['spent_s']:.0f} s | "
              f"{r['process_s']:.0f} s | {', '.join(name.get(c, c) for c in r['scored'])} | "
              f"{', '.join(name.get(c, c) for c in r['skipped']) or '-'} |")


if __name__ == "__main__":
    main()
