"""Case study: does LoRA learn less and forget less than full fine-tuning (Biderman et al. 2024) when
SmolLM2-135M-Instruct is adapted to a narrow task on this machine?

    .venv/bin/python bench/lm_case_study.py OUT [--train 150] [--seeds 3] [--epochs 1]
    .venv/bin/python bench/lm_case_study.py OUT --analyze      # re-read OUT/run/run.json only

The task: TweetEval emotion (``../shared/data/tweeteval``), each tweet turned into an instruction whose
answer is one label word. One ``tlexpert run`` of a text-generation plan (made by ``tlexpert consult``)
with ``--technique lora --technique fine_tuning``: each technique with the plan's own recipe (LoRA at its
rate, full fine-tuning at the fine-tuning recipe's), the same seeds, batches and data; forgetting measured
on WikiText-2 paragraphs and Self-Instruct seed tasks' reference answers (``../shared/data/llm``).

Then, per item and averaged over seeds, paired tests between the two techniques (Wilcoxon signed-rank,
as the harness uses): "learns less" = LoRA's held-out target loss above full fine-tuning's; "forgets
less" = LoRA's rise in general-text loss below full fine-tuning's. Prints a Markdown table for
BENCHMARKS.md; reads and writes only under OUT.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
QUESTION = "Which emotion does this tweet express? Answer with one word: anger, joy, optimism or sadness."


def write_task(out: Path, n_train: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    sizes = {"train": n_train, "val": max(20, n_train // 5), "test": 60}
    paths = {}
    for split, n in sizes.items():
        rows = list(csv.DictReader((SHARED / "tweeteval" / f"emotion_{split}.csv").open(encoding="utf-8")))
        rng.shuffle(rows)
        p = out / f"emotion_{split}.jsonl"
        with p.open("w", encoding="utf-8") as fh:
            for r in rows[:n]:
                fh.write(json.dumps({"instruction": QUESTION, "input": r["text"], "output": r["label"]}) + "\n")
        paths[split] = p
    return paths


def tlexpert(*args) -> None:
    cmd = [str(ROOT / ".venv" / "bin" / "tlexpert"), *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def analyze(run_dir: Path) -> str:
    from scipy.stats import wilcoxon

    rec = json.loads((run_dir / "run.json").read_text())
    res, base = rec["results"], rec["base"]
    lo, ft = res["lora"], res["fine_tuning"]
    lines = [f"Model {rec['model']}; {rec['data']['examples']['train']} training, {rec['data']['examples']['test']} test "
             f"examples; seeds {rec['seeds']}; {rec['seconds']:.0f} s for the whole run on {rec['device']}.", "",
             "| | base | LoRA | full fine-tuning | LoRA - full (paired per item) | p (Wilcoxon) |",
             "|---|---|---|---|---|---|"]

    def mean_items(rows, key, sub=None):
        return np.mean([r[key][sub] if sub else r[key] for r in rows], axis=0)

    t_lo, t_ft = mean_items(lo, "test_losses"), mean_items(ft, "test_losses")
    d = t_lo - t_ft
    p = wilcoxon(t_lo, t_ft).pvalue
    lines.append(f"| target loss (nats/token) | {base['test_loss']:.3f} | {t_lo.mean():.3f} | {t_ft.mean():.3f} | "
                 f"{d.mean():+.3f} | {p:.3g} |")
    if rec["summary"]["lora"].get("exact_match") is not None:
        e_lo, e_ft = mean_items(lo, "exact_match"), mean_items(ft, "exact_match")
        pe = wilcoxon(e_lo, e_ft).pvalue if np.any(e_lo != e_ft) else 1.0
        lines.append(f"| exact match | {base['exact_match']:.3f} | {e_lo.mean():.3f} | {e_ft.mean():.3f} | "
                     f"{(e_lo - e_ft).mean():+.3f} | {pe:.3g} |")
    verdict = {"learns_less": bool(d.mean() > 0 and p < 0.05)}
    forgets = []
    for k in base["retention_loss"]:
        r_lo, r_ft = mean_items(lo, "retention", k), mean_items(ft, "retention", k)
        pk = wilcoxon(r_lo, r_ft).pvalue
        lines.append(f"| {k} loss (forgetting) | {base['retention_loss'][k]:.3f} | {r_lo.mean():.3f} | "
                     f"{r_ft.mean():.3f} | {(r_lo - r_ft).mean():+.3f} | {pk:.3g} |")
        forgets.append((r_lo - r_ft).mean() < 0 and pk < 0.05)
    lines.append(f"| KL drift on target prompts | 0 | {rec['summary']['lora']['kl_drift']:.4f} | "
                 f"{rec['summary']['fine_tuning']['kl_drift']:.4f} | | |")
    lines.append(f"| trainable parameters | | {rec['summary']['lora']['trainable_parameters']:,} | "
                 f"{rec['summary']['fine_tuning']['trainable_parameters']:,} | | |")
    lines.append(f"| tokens/s (training) | | {rec['summary']['lora']['tokens_per_second']} | "
                 f"{rec['summary']['fine_tuning']['tokens_per_second']} | | |")
    verdict["forgets_less"] = bool(forgets and all(forgets))
    lines += ["", f"Verdict: LoRA learns less: {'yes' if verdict['learns_less'] else 'no'} (significant at 0.05); "
                  f"LoRA forgets less: {'yes' if verdict['forgets_less'] else 'no'} (on every retention set, "
                  f"significant at 0.05).", "", "```json", json.dumps(verdict), "```"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=150)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--analyze", action="store_true")
    a = ap.parse_args()
    run_dir = a.out / "run"
    if not a.analyze:
        a.out.mkdir(parents=True, exist_ok=True)
        paths = write_task(a.out, a.train)
        plan = a.out / "plan.json"
        tlexpert("consult", "--task", "text_generation", "--dataset-size", a.train, "--compute", "cpu",
                 "--retain-source", "yes", "--no-input", "-o", plan)
        t0 = time.time()
        tlexpert("run", plan, "--train", paths["train"], "--validation", paths["val"], "--test", paths["test"],
                 "--technique", "lora", "--technique", "fine_tuning", "--seeds", a.seeds, "--epochs", a.epochs,
                 "--batch-size", 8, "--max-length", 96, "--out", run_dir, "--force",
                 "--retention-data", f"{SHARED / 'llm' / 'wikitext2_valid.txt'},{SHARED / 'llm' / 'seed_tasks.jsonl'}")
        print(f"<!-- run: {time.time() - t0:.0f} s -->")
    print(analyze(run_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
