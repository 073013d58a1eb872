"""`diagnose` on real logs nobody here wrote: sensitivity, specificity and the right pitfall first.

Corpora (ground truth decided from the numbers before any diagnosis ran; see each item's reason):
- bench/data/keras_logs_truth.yaml: the Defects4ML Keras logs in ../shared/data/keras_logs
  (buggy and fixed programs; split by bug id: even -> dev, odd -> heldout);
- bench/data/real_logs/labels.yaml: logs from public repositories (Trainer, Lightning, Keras CSVs,
  PyTorch prints), split dev/heldout by a rule fixed before anything ran.

    python bench/bench_diagnose_logs.py [--split dev|heldout|all] [--show]

Per split: specificity (healthy runs called healthy), sensitivity (faulty runs flagged), top-1 (the
right pitfall named first, of the faulty runs), unreadable logs, beside an always-healthy and an
always-faulty baseline. A log that cannot be read counts as not flagged.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "keras_logs"
CORPORA = {
    "keras": (ROOT / "bench/data/keras_logs_truth.yaml", SHARED),
    "public": (ROOT / "bench/data/real_logs/labels.yaml", ROOT / "bench/data/real_logs"),
    # a second batch: held out at first contact (BENCHMARKS.md), a development split since
    "public2": (ROOT / "bench/data/real_logs2/labels.yaml", ROOT / "bench/data/real_logs2"),
    "public3": (ROOT / "bench/data/real_logs3/labels.yaml", ROOT / "bench/data/real_logs3"),
    # a fourth batch (2026-12-07): held out; its first-contact figure is recorded in BENCHMARKS.md
    "public4": (ROOT / "bench/data/real_logs4/labels.yaml", ROOT / "bench/data/real_logs4"),
    # a fifth batch (2026-12-07, later): held out at first contact (BENCHMARKS.md), a development split since
    "public5": (ROOT / "bench/data/real_logs5/labels.yaml", ROOT / "bench/data/real_logs5"),
    # a sixth batch (2026-12-07, evening): held out at first contact (BENCHMARKS.md), a development split since
    "public6": (ROOT / "bench/data/real_logs6/labels.yaml", ROOT / "bench/data/real_logs6"),
    # a seventh batch (2026-12-07, late evening): held out; first contact recorded in BENCHMARKS.md
    "public7": (ROOT / "bench/data/real_logs7/labels.yaml", ROOT / "bench/data/real_logs7"),
    # an eighth batch (2026-12-07, night): held out at first contact (BENCHMARKS.md), a development split since
    "public8": (ROOT / "bench/data/real_logs8/labels.yaml", ROOT / "bench/data/real_logs8"),
    # a ninth batch (2026-12-08): held out; first contact recorded in BENCHMARKS.md
    "public9": (ROOT / "bench/data/real_logs9/labels.yaml", ROOT / "bench/data/real_logs9"),
    # a tenth batch (2026-12-08, later; 10 printed logs): first contact recorded in BENCHMARKS.md, a development
    # split since
    "public10": (ROOT / "bench/data/real_logs10/labels.yaml", ROOT / "bench/data/real_logs10"),
    # an eleventh batch (2026-12-08, later): held out at first contact (BENCHMARKS.md), a development split since
    "public11": (ROOT / "bench/data/real_logs11/labels.yaml", ROOT / "bench/data/real_logs11"),
    # a twelfth batch (2026-12-08, later): held out; first contact recorded in BENCHMARKS.md
    "public12": (ROOT / "bench/data/real_logs12/labels.yaml", ROOT / "bench/data/real_logs12"),
    # a thirteenth batch (2026-12-08, last): held out; first contact recorded in BENCHMARKS.md
    "public13": (ROOT / "bench/data/real_logs13/labels.yaml", ROOT / "bench/data/real_logs13"),
    # a fourteenth batch (2026-12-08, last): held out; first contact recorded in BENCHMARKS.md
    "public14": (ROOT / "bench/data/real_logs14/labels.yaml", ROOT / "bench/data/real_logs14"),
}


def items():
    for name, (labels, base) in CORPORA.items():
        if not labels.exists() or not base.exists():
            print(f"skipping {name}: {base if not base.exists() else labels} is absent", file=sys.stderr)
            continue
        for it in yaml.safe_load(labels.read_text())["items"]:
            yield name, base / it["file"], it


def pitfalls_named(report: dict) -> list[str]:
    """Pitfalls in the report's order (strongest first)."""
    seen = []
    for d in sorted(report["diagnoses"], key=lambda d: -float(d.get("confidence") or 0)):
        p = d.get("pitfall")
        if p and p not in seen:
            seen.append(p)
    return seen


def evaluate(rows: list[dict]) -> dict:
    """Borderline items (a fault with 'healthy' also acceptable) count in neither rate; they are right
    when the report names nothing or an acceptable pitfall first."""
    border = [r for r in rows if r["truth"] != "healthy" and "healthy" in r["ok"]]
    healthy = [r for r in rows if r["truth"] == "healthy"]
    faulty = [r for r in rows if r["truth"] != "healthy" and r not in border]
    spec = sum(not r["named"] for r in healthy) / len(healthy) if healthy else float("nan")
    sens = sum(bool(r["named"]) for r in faulty) / len(faulty) if faulty else float("nan")
    top1 = sum(bool(r["named"]) and r["named"][0] in r["ok"] for r in faulty) / len(faulty) if faulty else float("nan")
    return {"n": len(rows), "healthy": len(healthy), "faulty": len(faulty),
            "borderline_right": f"{sum(not r['named'] or r['named'][0] in r['ok'] for r in border)}/{len(border)}",
            "specificity": spec,
            "sensitivity": sens, "top1": top1, "unreadable": sum(r["error"] is not None for r in rows)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="all", choices=("dev", "heldout", "all"))
    ap.add_argument("--show", action="store_true", help="one line per log")
    args = ap.parse_args(argv)
    from harness.troubleshooting.diagnose import diagnose
    from knowledge import get_kb
    from knowledge.schema import KnowledgeError

    kb = get_kb()
    rows, crashes = [], []
    t0 = time.perf_counter()
    for corpus, path, it in items():
        if args.split != "all" and it["split"] != args.split:
            continue
        ok = {it["truth"], *(it.get("also") or [])}
        try:
            rep = diagnose([str(path)], kb)
            named, error = pitfalls_named(rep), None
        except KnowledgeError as exc:
            named, error = [], str(exc).splitlines()[0][:160]
        except Exception as exc:  # noqa: BLE001 -- a crash is counted (as unreadable) and named, not hidden
            named, error = [], f"CRASH {type(exc).__name__}: {exc}"[:160]
            crashes.append(f"{it['id']}: {error}")
        rows.append({"corpus": corpus, "id": it["id"], "split": it["split"], "truth": it["truth"], "ok": ok,
                     "named": named, "error": error})
    secs = time.perf_counter() - t0
    for c in crashes:
        print(f"crashed (counted as unreadable): {c}", file=sys.stderr)
    if args.show:
        for r in rows:
            right = (not r["named"] and "healthy" in r["ok"]) or (bool(r["named"]) and r["named"][0] in r["ok"])
            mark = "ok " if right else "XX "
            print(f"{mark}{r['corpus']:7s} {r['split']:8s} {r['id']:34s} truth={r['truth']:16s} "
                  f"named={','.join(r['named']) or 'healthy'}" + (f"  [{r['error']}]" if r["error"] else ""))
    print(f"{len(rows)} logs in {secs:.1f} s")
    print(f"{'part':22s} {'n':>4s} {'healthy':>7s} {'faulty':>6s} {'spec':>6s} {'sens':>6s} {'top1':>6s} {'unread':>6s}"
          f" {'borderline right':>16s}")
    parts = {}
    for r in rows:
        parts.setdefault(f"{r['corpus']}/{r['split']}", []).append(r)
        parts.setdefault(f"all/{r['split']}", []).append(r)
    for name in sorted(parts):
        e = evaluate(parts[name])
        print(f"{name:22s} {e['n']:4d} {e['healthy']:7d} {e['faulty']:6d} {e['specificity']:6.2f} "
              f"{e['sensitivity']:6.2f} {e['top1']:6.2f} {e['unreadable']:6d} {e['borderline_right']:>16s}")
    for split in sorted({r["split"] for r in rows}):
        sub = [r for r in rows if r["split"] == split]
        h = sum(r["truth"] == "healthy" for r in sub)
        f = len(sub) - h
        print(f"baselines {split}: always-healthy spec 1.00 sens 0.00 top1 0.00; "
              f"always-faulty spec 0.00 sens 1.00 (n healthy {h}, faulty {f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
