"""Does rehearsal (``replay_ratio``) reduce what SmolLM2-135M-Instruct forgets when it is fully
fine-tuned at a rate that makes it forget, and what does it cost on the target task?

    .venv/bin/python bench/lm_replay_study.py OUT [--train 150] [--seeds 2] [--epochs 2] [--lr 5e-4] [--ratio 0.5]
    .venv/bin/python bench/lm_replay_study.py OUT --analyze      # re-read OUT/*/run.json only

The task of ``bench/lm_case_study.py`` (TweetEval emotion as one-word instructions). Two ``tlexpert run``
of the same text-generation plan, full fine-tuning at ``--lr``, the same seeds and data: one without
replay, one with ``--replay-ratio``, whose general examples come from the retention files' items the
forgetting test does not measure (WikiText-2 paragraphs past the first 60, Self-Instruct tasks past
the first 60). Then, per item and averaged over seeds, paired Wilcoxon tests between the two runs on the
target loss and on each retention set. Prints a Markdown table; reads and writes only under OUT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_case_study import SHARED, tlexpert, write_task  # noqa: E402


def analyze(out: Path) -> str:
    from scipy.stats import wilcoxon

    plain, replay = (json.loads((out / n / "run.json").read_text()) for n in ("plain", "replay"))
    a, b = plain["results"]["fine_tuning"], replay["results"]["fine_tuning"]
    base = plain["base"]
    ratio = replay["data"]["replay"]["ratio"]
    lines = [f"Model {plain['model']}; full fine-tuning at {plain['hyperparameters']['fine_tuning']['learning_rate']:g}, "
             f"{plain['hyperparameters']['fine_tuning']['epochs']} epochs; {plain['data']['examples']['train']} training, "
             f"{plain['data']['examples']['test']} test examples; seeds {plain['seeds']}; replay {ratio:g} per training "
             f"example from a pool of {replay['data']['replay']['pool']}; {plain['seconds'] + replay['seconds']:.0f} s "
             f"for both runs on {plain['device']}.", "",
             f"| | base | no replay | replay {ratio:g} | replay - none (paired per item) | p (Wilcoxon) |",
             "|---|---|---|---|---|---|"]

    def items(rows, key, sub=None):
        return np.mean([r[key][sub] if sub else r[key] for r in rows], axis=0)

    verdict = {}
    t_a, t_b = items(a, "test_losses"), items(b, "test_losses")
    p = wilcoxon(t_a, t_b).pvalue
    lines.append(f"| target loss | {base['test_loss']:.3f} | {t_a.mean():.3f} | {t_b.mean():.3f} | "
                 f"{(t_b - t_a).mean():+.3f} | {p:.3g} |")
    verdict["target_worse"] = bool((t_b - t_a).mean() > 0 and p < 0.05)
    for k in base["retention_loss"]:
        r_a, r_b = items(a, "retention", k), items(b, "retention", k)
        pk = wilcoxon(r_a, r_b).pvalue
        lines.append(f"| {k} loss (forgetting) | {base['retention_loss'][k]:.3f} | {r_a.mean():.3f} | "
                     f"{r_b.mean():.3f} | {(r_b - r_a).mean():+.3f} | {pk:.3g} |")
        verdict[f"forgets_less.{k}"] = bool((r_b - r_a).mean() < 0 and pk < 0.05)
    for name, rec in (("no replay", plain), ("replay", replay)):
        lines.append(f"\n{name}: symptoms {', '.join(s['id'] for s in rec['symptoms']) or 'none'}; "
                     f"diagnoses {', '.join(d['pitfall'] for d in rec['diagnoses']) or 'none'}")
    lines += ["", "```json", json.dumps(verdict), "```"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=150)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--analyze", action="store_true")
    a = ap.parse_args()
    if not a.analyze:
        a.out.mkdir(parents=True, exist_ok=True)
        paths = write_task(a.out, a.train)
        plan = a.out / "plan.json"
        tlexpert("consult", "--task", "text_generation", "--dataset-size", a.train, "--compute", "cpu",
                 "--retain-source", "yes", "--no-input", "-o", plan)
        for name, extra in (("plain", []), ("replay", ["--replay-ratio", a.ratio])):
            t0 = time.time()
            tlexpert("run", plan, "--train", paths["train"], "--validation", paths["val"], "--test", paths["test"],
                     "--technique", "fine_tuning", "--seeds", a.seeds, "--epochs", a.epochs, "--learning-rate", a.lr,
                     "--batch-size", 8, "--max-length", 96, "--out", a.out / name, "--force", *extra,
                     "--retention-data", f"{SHARED / 'llm' / 'wikitext2_valid.txt'},{SHARED / 'llm' / 'seed_tasks.jsonl'}")
            print(f"<!-- {name}: {time.time() - t0:.0f} s -->", flush=True)
    print(analyze(a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
