"""Batch throughput: 10,000 generated scenarios through `tlexpert batch`, 1 vs 2 workers.

    python bench/bench_batch.py [--n 10000] [--repeats 3]
    python bench/bench_batch.py --n 10000 --repeats 1 --jobs 2 --baseline REF   # this tree vs commit REF

With ``--baseline REF`` the same scenarios go through the code of commit REF (a temporary ``git worktree``,
the same virtual environment) and through this tree, interleaved, at ``--jobs``: the two times side by side.

Generates --n scenarios (seeded: every task, size from 50 to 5M on a log
scale, every similarity, compute, deployment, optional latency budget and
symptoms) into a JSONL file, then times whole `tlexpert batch FILE -o
out.parquet --jobs N` processes (start-up included) for N = 1 and 2,
interleaved; medians and the 2-vs-1 throughput ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TASKS = ["image_classification", "object_detection", "text_classification", "text_generation",
         "question_answering", "image_captioning", "vision_language"]
SYMPTOMS = ["retention_drop", "below_baseline", "unknown_tokens", "val_loss_rising", "loss_nan",
            "majority_class_collapse", "high_train_loss"]


def generate(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = {"id": f"gen-{i}", "task": rng.choice(TASKS),
             "dataset_size": int(10 ** rng.uniform(1.7, 6.7)),
             "task_similarity": rng.choice(["same", "related", "different"]),
             "domain_similarity": rng.choice(["high", "medium", "low"]),
             "compute": rng.choice(["cpu", "consumer_gpu", "datacenter_gpu", "tpu"]),
             "deployment": rng.choice(["mobile", "edge", "server", "batch"])}
        if rng.random() < 0.4:
            s["latency_ms"] = rng.choice([10, 30, 100, 500, 2000])
        if rng.random() < 0.3:
            s["gpu_memory_gb"] = rng.choice([4, 8, 16, 24, 80])
        if rng.random() < 0.3:
            s["symptoms"] = rng.sample(SYMPTOMS, rng.randint(1, 2))
        out.append(s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", metavar="REF", help="compare this tree with the code of git commit REF")
    ap.add_argument("--jobs", type=int, default=2, help="workers for the --baseline comparison")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "scenarios.jsonl"
    src.write_text("\n".join(json.dumps(s) for s in generate(args.n)) + "\n")
    if args.baseline:
        compare(args, src, tmp)
        return
    exe = [sys.executable, "-c", "import cli; cli.main()"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = {1: [], 2: []}
    for _ in range(args.repeats):
        for jobs in (1, 2):
            out = tmp / f"out-{jobs}.parquet"
            t = time.perf_counter()
            p = subprocess.run([*exe, "batch", str(src), "-o", str(out), "--jobs", str(jobs)],
                               capture_output=True, text=True, env=env, cwd=ROOT)
            times[jobs].append(time.perf_counter() - t)
            if p.returncode != 0:
                sys.exit(f"batch failed ({p.returncode}): {p.stdout[-500:]} {p.stderr[-2000:]}")
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp / "out-2.parquet").num_rows
    m1, m2 = statistics.median(times[1]), statistics.median(times[2])
    print(f"{args.n} generated scenarios -> {rows} rows (parquet), {os.cpu_count()} cores, {args.repeats} repeats")
    print(f"  --jobs 1: median {m1:.1f} s ({args.n / m1:.0f} scenarios/s)  runs: "
          + ", ".join(f"{x:.1f}" for x in times[1]))
    print(f"  --jobs 2: median {m2:.1f} s ({args.n / m2:.0f} scenarios/s)  runs: "
          + ", ".join(f"{x:.1f}" for x in times[2]))
    print(f"throughput 2 workers / 1 worker: {m1 / m2:.2f}x")


def compare(args, src: Path, tmp: Path) -> None:
    old = tmp / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(old), args.baseline], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        trees = {"this tree": ROOT, args.baseline: old}
        times: dict = {k: [] for k in trees}
        for _ in range(args.repeats):
            for name, root in trees.items():
                out = tmp / f"out-{len(times[name])}-{name.replace(' ', '_')}.csv"
                t = time.perf_counter()
                p = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "batch", str(src), "-o", str(out),
                                    "--jobs", str(args.jobs)], capture_output=True, text=True, cwd=root,
                                   env={**os.environ, "PYTHONPATH": str(root)})
                times[name].append(time.perf_counter() - t)
                if p.returncode != 0:
                    sys.exit(f"{name}: batch failed ({p.returncode}): {p.stderr[-2000:]}")
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.n} generated scenarios, --jobs {args.jobs}, {os.cpu_count()} cores, {args.repeats} repeat(s), "
              f"interleaved")
        for k, v in times.items():
            print(f"  {k}: median {med[k]:.1f} s ({args.n / med[k]:.0f} scenarios/s)  runs: "
                  + ", ".join(f"{x:.1f}" for x in v))
        print(f"this tree / {args.baseline}: {med['this tree'] / med[args.baseline]:.2f}x the time")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    main()
