"""Free-text symptom matching: accuracy on the corpus (old vs new matcher) and consult latency.

    python bench/symptom_matcher.py [--runs 11] [--skip-latency] [--show-errors public]

1. Accuracy on tests/rules/data/symptom_corpus_{public,heldout,field}.yaml:
   - top-1: the first pitfall the reading names is one the item expects; an item
     that expects none is right when nothing is named (a refusal counts as none);
   - all named: the set of pitfalls named equals the set expected.
   "old" is the matcher before this change with its own symptoms file
   (bench/legacy_symptoms.py); "new" is rules.reader.symptoms.read_symptoms.
2. Whole-process `consult --format json --no-input` latency, median over --runs
   (runs of the three kinds interleaved): no symptom (the reference), a symptom
   the word path reads (no model), and one that needs the semantic matcher
   (phrase embeddings cached, as after the first use); wall time and the
   process's CPU time (user + system, less sensitive to a loaded machine), and
   which heavy modules each imported.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

import yaml

from _common import ROOT  # noqa: E402  (puts the project on sys.path)
from legacy_symptoms import legacy_pitfall

CORPUS = ROOT / "tests" / "rules" / "data"
SPLITS = ("public", "heldout", "field")  # field: real descriptions gathered after the last change, never tuned on
EXTRA = tuple(sorted(f.stem.removeprefix("symptom_corpus_") for f in CORPUS.glob("symptom_corpus_*.yaml")
                     if f.stem.removeprefix("symptom_corpus_") not in SPLITS))  # a new collection, before it joins public


def load(split: str) -> list[dict]:
    return yaml.safe_load((CORPUS / f"symptom_corpus_{split}.yaml").read_text())["items"]


def new_pitfalls(text: str, kb) -> list[str]:
    from rules.reader.symptoms import read_symptoms

    return read_symptoms(text, kb).pitfalls


def score(items, predict) -> tuple[float, float, list]:
    top1 = exact = 0
    errors = []
    for it in items:
        want = set(it["pitfalls"])
        got = predict(it["text"])
        ok1 = (not want and not got) or (bool(got) and got[0] in want)
        top1 += ok1
        exact += set(got) == want
        if not ok1:
            errors.append((it["text"], sorted(want), got))
    n = len(items)
    return top1 / n, exact / n, errors


PROBE = ("import sys\nsys.argv=['tlexpert','consult','--task','text_classification','--dataset-size','3000',"
         "'--format','json','--no-input','--symptom',{text!r}]\nimport cli\ntry:\n    cli.main()\n"
         "except SystemExit:\n    pass\n"
         "print(sorted(m for m in ('torch','transformers','pandas','peft','numpy') if m in sys.modules), file=sys.stderr)")


def run_once(cmd: list, env: dict) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stderr.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--show-errors", choices=SPLITS + EXTRA, action="append", default=[])
    args = ap.parse_args()

    from knowledge import get_kb

    kb = get_kb()
    print("| split | items | old top-1 | new top-1 | old all named | new all named |")
    print("| --- | --- | --- | --- | --- | --- |")
    for split in SPLITS + EXTRA:
        if not (CORPUS / f"symptom_corpus_{split}.yaml").exists():
            continue
        items = load(split)
        o1, oe, _ = score(items, lambda t: [p] if (p := legacy_pitfall(t)) else [])
        n1, ne, errs = score(items, lambda t: new_pitfalls(t, kb))
        print(f"| {split} | {len(items)} | {o1:.3f} | {n1:.3f} | {oe:.3f} | {ne:.3f} |")
        if split in args.show_errors:
            for text, want, got in errs:
                print(f"    MISS {text!r}: want {want}, got {got}", file=sys.stderr)
    if args.skip_latency:
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kinds = [("no symptom (reference)", None),
             ("word path (no model)", "the validation loss goes up while training loss falls"),
             ("semantic path", "images from a drone, but the validation set is satellite images")]
    cmds = [[sys.executable, "-c", PROBE.replace(",'--symptom',{text!r}", "").replace("{{", "{").replace("}}", "}")
             if text is None else PROBE.format(text=text)] for _, text in kinds]
    for cmd in cmds:
        run_once(cmd, env)  # warm the file cache and the embedding cache
    got = {label: ([], [], "") for label, _ in kinds}
    for _ in range(args.runs):
        for (label, _), cmd in zip(kinds, cmds):
            wall, cpu, mods = run_once(cmd, env)
            got[label][0].append(wall)
            got[label][1].append(cpu)
            got[label] = (got[label][0], got[label][1], mods)
    ref = statistics.median(got[kinds[0][0]][0])
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    print("| consult | wall median (min, max) | CPU median | vs reference (wall) | heavy modules imported |")
    print("| --- | --- | --- | --- | --- |")
    for label, _ in kinds:
        walls, cpus, mods = got[label]
        print(f"| {label} | {statistics.median(walls):.3f} s ({min(walls):.3f}, {max(walls):.3f}) | "
              f"{statistics.median(cpus):.3f} s | {statistics.median(walls) / ref:.2f}x | {mods} |")


if __name__ == "__main__":
    main()
