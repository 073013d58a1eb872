"""Hostile input: how fast and in how much memory the commands refuse it, and what the reading
layer's checks cost on ordinary input.

    python bench/bench_hostile.py [--repeats 5]

1. Each hostile file through ``tlexpert consult --scenario FILE --format json`` in a fresh
   process: wall time, peak memory (max RSS of the child), bytes on stdout and stderr, exit code.
2. Loading the built-in knowledge base with and without the YAML node checks (aliases, sizes,
   nesting): medians of interleaved repeats in one process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

BOMB = "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi"))
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BOMB


def cases(d: Path) -> dict:
    files = {
        "alias bomb in task (9 levels)": BOMB + "task: *i\ndataset_size: 100\n",
        "alias bomb in name (9 levels)": BOMB + "name: *i\ntask: text_classification\ndataset_size: 100\n",
        "5000-digit integer": "task: text_classification\ndataset_size: " + "9" * 5000 + "\n",
        "50 MB name": "task: text_classification\ndataset_size: 100\nname: " + "n" * 50_000_000 + "\n",
        "duplicate key": "task: text_classification\ndataset_size: 100\ntask: x\n",
        "ordinary scenario": "task: text_classification\ndataset_size: 800\n",
    }
    out = {}
    for i, (name, text) in enumerate(files.items()):
        f = d / f"case{i}.yaml"
        f.write_text(text)
        out[name] = (f, len(text.encode()))
    return out


def run_cli(path: Path) -> dict:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "consult", "--scenario", str(path),
                              "--format", "json"], stdout=out, stderr=err, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(p.pid, 0)  # this child's own peak memory
        seconds = time.perf_counter() - t
        return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024, "stdout": out.seek(0, 2),
                "stderr": err.seek(0, 2), "code": os.waitstatus_to_exitcode(status)}


def kb_overhead(repeats: int) -> tuple[float, float]:
    sys.path.insert(0, str(ROOT))
    import knowledge.reading as reading
    from knowledge.loader import load

    check = reading._check_nodes
    on, off = [], []
    for _ in range(repeats):
        for flag, acc in ((True, on), (False, off)):
            reading._check_nodes = check if flag else (lambda node, origin: None)
            t = time.perf_counter()
            load()
            acc.append(time.perf_counter() - t)
    reading._check_nodes = check
    return statistics.median(on), statistics.median(off)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("| input | file size | exit | wall s | peak RSS MiB | stdout bytes | stderr bytes |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, (path, size) in cases(Path(tmp)).items():
            runs = [run_cli(path) for _ in range(args.repeats)]
            med = statistics.median(r["seconds"] for r in runs)
            r = runs[-1]
            print(f"| {name} | {size:,} B | {r['code']} | {med:.2f} | {max(x['peak_mib'] for x in runs):.0f} | "
                  f"{r['stdout']:,} | {r['stderr']:,} |")
    on, off = kb_overhead(args.repeats * 2)
    print(f"\nknowledge base load: {on * 1000:.0f} ms with the node checks, {off * 1000:.0f} ms without "
          f"({on / off:.2f}x)")


if __name__ == "__main__":
    main()
