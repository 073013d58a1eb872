"""Consultation speed: whole process and in process.

    python bench/bench_consult.py [--runs 21] [--inner 200]
    python bench/bench_consult.py --profile [--inner 300]   # where one consultation's time goes

1. `tlexpert consult ... --format json` as a whole process (start-up included),
   median wall time over --runs runs, and the heavy modules it imported (none
   expected).
2. One consultation in process (reset, declare, run, build the plan), median
   over --inner consultations of a rotating set of scenarios.
3. With --profile, instead: cProfile over --inner consultations without the trace (what `batch`
   runs), and the share of the time in experta's matching and firing (``run``), in declaring the
   scenario and the knowledge as facts (``reset``), and in building the typed plan (of which the
   contract's validation, ``Plan.from_dict``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import ROOT  # noqa: E402  (puts the project on sys.path)

SCENARIOS = [
    dict(task="text_classification", dataset_size=3000, compute="cpu", domain_similarity="low"),
    dict(task="image_classification", dataset_size=500, deployment="mobile", latency_ms=30),
    dict(task="question_answering", dataset_size=50000, compute="datacenter_gpu"),
    dict(task="image_captioning", dataset_size=2_000_000, compute="tpu", task_similarity="different"),
    dict(task="text_classification", dataset_size=20000, compute="consumer_gpu",
         symptoms=["general_language_loss"]),
    dict(task="text_generation", dataset_size=20000, compute="consumer_gpu", gpu_memory_gb=24),
    dict(task="image_classification", dataset_size=800, compute="cpu", deployment="edge",
         device_class="raspberry_pi_cpu", latency_ms=200),
]

CMD = [sys.executable, "-c", "import cli; cli.main()", "consult", "--task", "text_classification",
       "--dataset-size", "3000", "--compute", "cpu", "--format", "json", "--no-input"]
PROBE = ("import sys, runpy; sys.argv=['tlexpert','consult','--task','text_classification',"
         "'--dataset-size','3000','--format','json','--no-input'];\n"
         "import cli\ntry:\n    cli.main()\nexcept SystemExit:\n    pass\n"
         "print(sorted(m for m in ('torch','transformers','pandas','peft') if m in sys.modules), file=sys.stderr)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--inner", type=int, default=200)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if args.profile:
        profile(args.inner)
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    walls = []
    for _ in range(args.runs):
        t = time.perf_counter()
        out = subprocess.run(CMD, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        walls.append(time.perf_counter() - t)
        json.loads(out.stdout)  # only JSON on stdout
    heavy = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                           cwd=ROOT).stderr.strip().splitlines()[-1]

    from knowledge import get_kb
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    engine = get_engine(kb)
    scenarios = [normalize(s, kb) for s in SCENARIOS]
    for s in scenarios:
        engine.consult(s)
    times = []
    for i in range(args.inner):
        s = scenarios[i % len(scenarios)]
        t = time.perf_counter()
        engine.consult(s)
        times.append(time.perf_counter() - t)

    print(f"whole process `tlexpert consult --format json`: median {statistics.median(walls):.3f} s "
          f"(min {min(walls):.3f}, max {max(walls):.3f}, {args.runs} runs); heavy modules imported: {heavy}")
    print(f"in process, one consultation: median {statistics.median(times) * 1000:.2f} ms "
          f"(p90 {sorted(times)[int(0.9 * len(times))] * 1000:.2f} ms, {args.inner} consultations "
          f"over {len(SCENARIOS)} scenarios)")


def profile(n: int) -> None:
    import cProfile
    import pstats

    from knowledge import get_kb
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    engine = get_engine(kb)
    scenarios = [normalize(s, kb) for s in SCENARIOS]
    for i in range(40):
        engine.consult(scenarios[i % len(scenarios)], trace=False)
    times = []
    for i in range(n):
        t = time.perf_counter()
        engine.consult(scenarios[i % len(scenarios)], trace=False)
        times.append(time.perf_counter() - t)
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        engine.consult(scenarios[i % len(scenarios)], trace=False)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())  # tottime of every function: the profiled time

    def cum(file_end: str, name: str) -> float:
        return sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(file_end) and fn == name)

    whole = cum("rules/engine.py", "consult")
    parts = {"matching and firing (run)": cum("rules/base.py", "run"),
             "restoring the knowledge, declaring the scenario (reset)": cum("rules/engine.py", "reset"),
             "building the plan (build_plan)": cum("rules/plan.py", "build_plan"),
             "  of which the contract's validation (Plan.from_dict)": cum("rules/contract.py", "from_dict")}
    print(f"one consultation without the trace: median {statistics.median(times) * 1000:.2f} ms "
          f"({n} consultations over {len(SCENARIOS)} scenarios; profiled {total:.2f} s)")
    for name, t in parts.items():
        print(f"  {name:<56} {t / whole:6.1%}")


if __name__ == "__main__":
    main()
