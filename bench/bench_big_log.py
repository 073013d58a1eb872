"""`diagnose` on a large printed log: time and peak memory, in a fresh process each.

    python bench/bench_big_log.py [--mb 100] [--style keras|trainer|pytorch]

Writes a text log of about --mb MB (per-step lines in the chosen style, a healthy curve with noise and
a NaN at the very end), then runs `tlexpert diagnose` on it in a subprocess and reports wall time and
the peak resident memory of that process (ru_maxrss). Budget (issue): under 30 s and 500 MB for 100 MB.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def line(style: str, step: int, loss: float) -> str:
    if style == "trainer":
        return f"{{'loss': {loss:.4f}, 'grad_norm': 1.234, 'learning_rate': 5e-05, 'epoch': {step / 5000:.4f}}}\n"
    if style == "pytorch":
        return f"Epoch [{step // 5000 + 1}/100], Step [{step}/500000], Loss: {loss:.4f}, Acc: {0.9 - loss / 10:.4f}\n"
    return f"{step}/500000 [==============================] - ETA: 0s - loss: {loss:.4f} - accuracy: 0.8750\n"


def write_log(path: Path, mb: int, style: str) -> int:
    rng = random.Random(0)
    target = mb * 1024 * 1024
    n = 0
    with path.open("w") as fh:
        size = 0
        if style == "keras":
            fh.write("Epoch 1/1\n")
        while size < target:
            n += 1
            loss = 2.0 * math.exp(-n / 200000) + 0.1 + 0.05 * rng.random()
            s = line(style, n, loss)
            fh.write(s)
            size += len(s)
        fh.write(line(style, n + 1, float("nan")).replace("nan", "nan"))
        if style == "keras":
            fh.write(f"{n + 1}/{n + 1} [==============================] - 100s 1ms/step - loss: nan - accuracy: 0.1\n")
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--style", default="pytorch", choices=("keras", "trainer", "pytorch"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "train.log"
        t0 = time.perf_counter()
        n = write_log(f, args.mb, args.style)
        print(f"wrote {f.stat().st_size / 1e6:.0f} MB, {n:,} lines ({args.style}) in {time.perf_counter() - t0:.1f} s")
        cmd = [sys.executable, "-c", "import resource, sys; from cli import main\n"
               "try:\n    main(sys.argv[1:], standalone_mode=False)\nfinally:\n"
               "    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)",
               "diagnose", str(f), "--format", "json"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        secs = time.perf_counter() - t0
        peak = next((int(x.split()[1]) for x in r.stderr.splitlines() if x.startswith("PEAK_KB")), -1)
        import json

        rep = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        named = [d["pitfall"] for d in rep.get("diagnoses", [])]
        print(f"diagnose: {secs:.1f} s, peak RSS {peak / 1024:.0f} MB, exit {r.returncode}, named {named or 'nothing'}")
        if r.returncode:
            print(r.stderr[-2000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
