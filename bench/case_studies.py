"""The course's three case studies, reproduced on real tweets with all-MiniLM-L6-v2.

    python bench/case_studies.py [forgetting|negative|shift|all] [--seeds 3] [--out bench/out/cases]

Data: ../shared/data/tweeteval (three-class sentiment as the target task, like
the course's positive/neutral/negative reviews). Each case runs the harness
for real, lets the probes and rules diagnose the run, then carries out the
rules' fix and tests whether it helped. Results go to OUT/<case>/ (run
folders, autofix.json) and a summary to OUT/<case>.json; whatever the
outcome, it is reported as measured.

1. forgetting: full fine-tuning at a high learning rate (2e-4, nothing
   frozen); retention probe = TweetEval emotion (linear probe before/after).
   The loop fixes catastrophic forgetting; the course's two-part fix (lower
   learning rate + freeze early layers) is also run on its own.
2. negative: the "pre-trained" model is MiniLM first fine-tuned on the emoji
   task with shuffled labels (a source that hurts); compared with the plain
   model and the TF-IDF baseline; the loop applies the rules' fixes
   (feature extraction, then domain adaptation on emoji_train.csv).
3. shift: emoji-bearing tweets ([UNK] to the tokenizer) vs the rest; the loop
   applies the rules' fix for domain shift (emoji tokenization first).
4. negative-fe: only what feature extraction measured in case 2, again: the
   plain model's feature extraction (with the TF-IDF baseline), and the loop's
   round "switch to feature extraction" on the corrupted source, compared
   seed by seed with the corrupted source's fine-tuning accuracies of case 2
   (``--round0 run.json`` of that run, or ``--round0-accuracy`` values as
   recorded in BENCHMARKS.md; without either, only the plain model's row).
   Case 2 costs 40 minutes; this, a few (plus the corrupted source's
   training, once, when it is not in OUT yet).

Every technique runs with its own resolved recipe: the plan's for the plan's
technique, the knowledge base's defaults for the others; the shared
``--epochs`` reaches only techniques that train the backbone (the linear probe
of feature extraction has no epochs or learning rate).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

from _common import ROOT, TWEETEVAL, read_rows, sample, write_csv  # noqa: E402  (puts the project on sys.path)
DATA = TWEETEVAL



def read(name: str) -> list[tuple[str, str]]:
    return read_rows(DATA / name)  # DATA: TweetEval, or --data-dir



def sentiment_splits(tmp: Path) -> tuple[str, str, str]:
    """Disjoint train (1,500), validation (400) and test (1,000) tweets from one file.

    (TweetEval's validation split is measurably shifted from the file used for
    training here, AUC ~0.7 in the two-sample test, so it is not used as the
    test set: the case studies should not mix that shift into their effects.)"""
    rows = sample(read("sentiment_train.csv"), 2900, 1)
    return (write_csv(tmp / "train.csv", rows[:1500]), write_csv(tmp / "val.csv", rows[1500:1900]),
            write_csv(tmp / "test.csv", rows[1900:]))


def full_fine_tuning(plan, lr: float):
    """The plan with every layer trained from the start at ``lr`` (no freezing, no schedule tricks)."""
    return plan.changed({"hyperparameters.learning_rate": lr, "hyperparameters.frozen_layers": 0,
                         "hyperparameters.unfreeze": "none", "hyperparameters.discriminative_lr_decay": 1.0})


def plan_for(kb, **scenario):
    """The typed plan the rules give ``scenario`` (the case studies edit fields of it, as a user would)."""
    from rules.engine import get_engine
    from rules.scenario import normalize

    return get_engine(kb).consult(normalize(scenario, kb))


def summary_of(record: dict, tech: str) -> dict:
    rs = record["results"][tech]
    return {"accuracy": [round(r["accuracy"], 4) for r in rs],
            "retention_after": [round(r.get("retention_after", float("nan")), 4) for r in rs]
            if "retention_after" in rs[0] else None,
            "symptoms": [s["id"] for s in record["symptoms"]],
            "diagnoses": [(d["pitfall"], d["confidence"]) for d in record["diagnoses"]],
            "tests": {k: {"effect": v["effect"], "p": v["p_value"], "significant": v["significant"]}
                      for k, v in record["tests"].items()},
            "summary": record["summary"], "measurements": record["measurements"],
            "recipe": record["config"]["hyperparameters"][tech]}


ROUND0 = None  # --round0: run.json of case 2's round 0 (the corrupted source fine-tuned)
ROUND0_ACCURACY = ()  # --round0-accuracy: its per-seed test accuracies, when that file is gone
BAD_LR = 5e-4
GOOD_LR = 5e-5
EPOCHS = 3


def case_forgetting(kb, out: Path, seeds: int, progress) -> dict:
    from harness.troubleshooting.autofix import auto_fix
    from harness.training.run import RunConfig, execute

    tmp = out / "data"
    train, val, test = sentiment_splits(tmp)
    retention = write_csv(tmp / "retention.csv", sample(read("emotion_train.csv"), 2000, 1))
    plan = plan_for(kb, task="text_classification", dataset_size=1500, num_classes=3, compute="consumer_gpu",
                    domain_similarity="medium")
    plan = full_fine_tuning(plan, BAD_LR)  # the bad configuration: high learning rate, nothing frozen
    cfg = RunConfig(techniques=["fine_tuning"], seeds=seeds, train=train, validation=val, test=test,
                    retention_data=retention, out=str(out / "autofix"), overrides={"epochs": EPOCHS})
    result = auto_fix(plan, cfg, kb, max_rounds=2, progress=progress, pitfalls={"catastrophic_forgetting"})
    # the course's fix as one change: lower learning rate and freeze the early layers
    import copy
    from dataclasses import replace

    course = copy.deepcopy(plan)
    course.hyperparameters.learning_rate, course.hyperparameters.frozen_layers = BAD_LR / 10, 3
    course.hyperparameters.epochs = EPOCHS

    rec = execute(course, replace(cfg, out=str(out / "course_fix"), overrides={}), kb, progress)
    before = json.loads((out / "autofix" / "round-0" / "run.json").read_text())
    from harness.evaluation import stats
    import numpy as np

    ret_bad = np.array([r["retention_after"] for r in before["results"]["fine_tuning"]])
    ret_fix = np.array([r["retention_after"] for r in rec["results"]["fine_tuning"]])
    acc_bad = np.array([r["accuracy"] for r in before["results"]["fine_tuning"]])
    acc_fix = np.array([r["accuracy"] for r in rec["results"]["fine_tuning"]])
    return {
        "retention_before_finetuning": before["measurements"]["retention_before"],
        "bad": summary_of(before, "fine_tuning"),
        "autofix": {"chain": result["chain"], "final": result["final"]},
        "course_fix": summary_of(rec, "fine_tuning"),
        "course_fix_vs_bad": {
            "retention": stats.compare_paired(ret_bad, ret_fix, alternative="greater").to_dict(),
            "target_accuracy": stats.compare_paired(acc_bad, acc_fix, alternative="two-sided").to_dict()},
    }


def corrupt_source(kb, out: Path, progress) -> str:
    """MiniLM fine-tuned on the emoji task with shuffled labels, saved as a model folder."""
    from harness.training.data import TextData
    from harness.training.models import load_tokenizer, resolve_model
    from harness.training.techniques import run_transformer

    dest = out / "corrupted-minilm"
    if (dest / "config.json").exists():
        return str(dest)
    rows = sample(read("emoji_train.csv"), 4000, 3)
    labels = [lab for _, lab in rows]
    random.Random(4).shuffle(labels)  # the labels no longer mean anything
    data = TextData([t for t, _ in rows], labels)
    val = TextData(data.texts[:200], data.labels[:200], data.classes)
    path = resolve_model("all-MiniLM-L6-v2", kb)[1]
    tok = load_tokenizer(path)
    recipe = full_fine_tuning(plan_for(kb, task="text_classification", dataset_size=4000, num_classes=20,
                                       compute="consumer_gpu"), BAD_LR).recipe("fine_tuning")
    # the recipe this corrupted source was first made with: no warm-up, decay or early stopping
    hyper = {**asdict(recipe), "epochs": 3, "batch_size": 32, "warmup_ratio": 0.0, "weight_decay": 0.0,
             "early_stopping_patience": 0, "max_grad_norm": 1.0}
    _, model, _ = run_transformer(path, data, val, val, 0, hyper, technique="fine_tuning", tokenizer=tok,
                                  progress=progress)
    model.encoder.save_pretrained(dest)
    tok.save_pretrained(dest)
    return str(dest)


def case_negative(kb, out: Path, seeds: int, progress) -> dict:
    from harness.troubleshooting.autofix import auto_fix
    from harness.training.run import RunConfig, execute

    tmp = out / "data"
    train, val, test = sentiment_splits(tmp)
    informal = write_csv(tmp / "informal.csv", sample(read("emoji_train.csv"), 6000, 5))
    source = corrupt_source(kb, out, progress)
    plan = plan_for(kb, task="text_classification", dataset_size=1500, num_classes=3, compute="consumer_gpu",
                    domain_similarity="low", source_domain=["wikipedia", "news"], target_domain=["tweets"])
    plan = full_fine_tuning(plan, GOOD_LR)  # the same sound recipe for the plain and the corrupted source
    base = dict(seeds=seeds, train=train, validation=val, test=test, overrides={"epochs": EPOCHS},
                intermediate_data=informal)
    # each technique with its own recipe; the epoch budget is the fine-tuning comparison's only
    plain = execute(plan, RunConfig(techniques=["fine_tuning", "feature_extraction"], out=str(out / "plain"),
                                    override_scope=["fine_tuning"], **base), kb, progress)
    result = auto_fix(plan, RunConfig(techniques=["fine_tuning"], model=source, out=str(out / "autofix"), **base),
                      kb, max_rounds=3, progress=progress, pitfalls={"negative_transfer"})
    before = json.loads((out / "autofix" / "round-0" / "run.json").read_text())
    return {"plain_model": summary_of(plain, "fine_tuning"),
            "plain_model_fe": summary_of(plain, "feature_extraction"),
            "corrupted_source": summary_of(before, "fine_tuning"),
            "autofix": {"chain": result["chain"], "final": result["final"]}}


def case_negative_fe(kb, out: Path, seeds: int, progress) -> dict:
    """Case 2's feature-extraction measurements only, with the converged probe."""
    from harness.evaluation import stats
    from harness.training.run import RunConfig, execute

    tmp = out / "data"
    train, val, test = sentiment_splits(tmp)
    plan = plan_for(kb, task="text_classification", dataset_size=1500, num_classes=3, compute="consumer_gpu",
                    domain_similarity="low", source_domain=["wikipedia", "news"], target_domain=["tweets"])
    base = dict(seeds=seeds, train=train, validation=val, test=test)
    plain = execute(plan, RunConfig(techniques=["feature_extraction"], out=str(out / "plain-fe"), **base), kb,
                    progress)
    res = {"plain_model_fe": summary_of(plain, "feature_extraction"),
           "plain_model_tfidf": [round(r["accuracy"], 4) for r in plain["baseline"]]}
    if not (ROUND0 or ROUND0_ACCURACY):
        return res  # the loop's round needs case 2's round 0 to compare with
    source = corrupt_source(kb, out, progress)
    # the loop's round 1: the plan switched to feature extraction (autofix.apply_fix), on the corrupted source
    from harness.troubleshooting.autofix import apply_fix

    fix = {"fix": "switch_to_feature_extraction", "description": kb.fixes["switch_to_feature_extraction"].description,
           "changes": [{"field": "technique", "from": "fine_tuning", "to": "feature_extraction"}]}
    switched = apply_fix(plan, fix)
    fe = execute(switched, RunConfig(techniques=["feature_extraction"], model=source, out=str(out / "corrupted-fe"),
                                     **base), kb, progress)
    if ROUND0:
        before = json.loads(Path(ROUND0).read_text())
        ft = [r["accuracy"] for r in before["results"]["fine_tuning"]][:seeds]
    else:
        ft = list(ROUND0_ACCURACY)[:seeds]
    b = [r["accuracy"] for r in fe["results"]["feature_extraction"]]
    res.update({"corrupted_source_fe": summary_of(fe, "feature_extraction"), "corrupted_source_ft_round0": ft})
    if len(ft) == len(b) and len(b) >= 2:
        import numpy as np

        res["fe_vs_round0"] = {
            "better": stats.compare_paired(np.array(ft), np.array(b), alternative="greater").to_dict(),
            "worse": stats.compare_paired(np.array(ft), np.array(b), alternative="less").to_dict()}
    return res


def case_shift(kb, out: Path, seeds: int, progress) -> dict:
    from harness.troubleshooting.autofix import auto_fix
    from harness.training.data import has_emoji
    from harness.training.run import RunConfig

    rows = read("sentiment_train.csv")
    emoji_rows = [r for r in rows if has_emoji(r[0])]
    plain_rows = [r for r in rows if not has_emoji(r[0])]
    rng = random.Random(7)
    rng.shuffle(emoji_rows)
    rng.shuffle(plain_rows)
    tmp = out / "data"
    train = write_csv(tmp / "train.csv", emoji_rows[:250] + plain_rows[:1750])
    test = write_csv(tmp / "test.csv", emoji_rows[250:] + plain_rows[1750:2550])
    val = write_csv(tmp / "val.csv", sample(read("sentiment_val.csv"), 400, 1))
    plan = plan_for(kb, task="text_classification", dataset_size=2000, num_classes=3, compute="consumer_gpu",
                    domain_similarity="medium", target_domain=["tweets", "emoji"])
    plan = full_fine_tuning(plan, GOOD_LR)
    cfg = RunConfig(techniques=["fine_tuning"], seeds=seeds, train=train, validation=val, test=test,
                    out=str(out / "autofix"), overrides={"epochs": EPOCHS})
    result = auto_fix(plan, cfg, kb, max_rounds=3, progress=progress, pitfalls={"domain_shift"})
    before = json.loads((out / "autofix" / "round-0" / "run.json").read_text())
    final = json.loads((Path(result["final"]["run_dir"]) / "run.json").read_text())
    import numpy as np

    from harness.evaluation import stats

    def emoji_acc(rec):
        y = None
        out = []
        from harness.training.data import load_text

        d = load_text(test)
        y = np.array([d.classes.index(lab) for lab in d.labels])
        mask = np.array([has_emoji(t) for t in d.texts])
        for r in rec["results"]["fine_tuning"]:
            out.append(float((np.array(r["predictions"]) == y)[mask].mean()))
        return np.array(out)

    a, b = emoji_acc(before), emoji_acc(final)
    return {"before": summary_of(before, "fine_tuning"), "autofix": {"chain": result["chain"],
                                                                      "final": result["final"]},
            "emoji_slice_before": a.tolist(), "emoji_slice_after": b.tolist(),
            "emoji_slice_test": stats.compare_paired(a, b, alternative="greater").to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", nargs="?", default="all", choices=["forgetting", "negative", "shift", "negative-fe", "all"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "cases"))
    ap.add_argument("--bad-lr", type=float, default=BAD_LR, help="the too-high learning rate")
    ap.add_argument("--good-lr", type=float, default=GOOD_LR, help="a sound fine-tuning learning rate")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--round0", metavar="RUN_JSON", help="negative-fe: run.json of case 2's round 0")
    ap.add_argument("--round0-accuracy", type=float, nargs="+", default=(), metavar="ACC",
                    help="negative-fe: case 2's round-0 accuracies per seed, when its run.json is gone")
    args = ap.parse_args()
    globals().update(BAD_LR=args.bad_lr, GOOD_LR=args.good_lr, EPOCHS=args.epochs, ROUND0=args.round0,
                     ROUND0_ACCURACY=tuple(args.round0_accuracy))
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: the TweetEval files are not shipped with the project")
    from harness.reporting.progress import Progress
    from knowledge import get_kb

    kb = get_kb()
    progress = Progress(enabled=True)
    cases = ["forgetting", "negative", "shift"] if args.case == "all" else [args.case]
    fns = {"forgetting": case_forgetting, "negative": case_negative, "shift": case_shift,
           "negative-fe": case_negative_fe}
    for name in cases:
        t = time.perf_counter()
        out = Path(args.out) / name
        res = fns[name](kb, out, args.seeds, progress)
        res["seconds"] = round(time.perf_counter() - t, 1)
        (Path(args.out) / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))
        print(f"== {name} ({res['seconds']} s)")
        print(json.dumps({k: v for k, v in res.items() if k != "autofix"}, indent=1, default=str)[:4000])
        for c in res.get("autofix", {}).get("chain", []):
            print(f"  round {c['round']}: {c['diagnosis']} -> {c['fix']} ({c['summary']}): "
                  f"{c['metric_before']:.3f} -> {c['metric_after']:.3f}, p={c['p_improve']:.3g}, "
                  f"gone={c['symptoms_gone']}, new={c['symptoms_new']}, kept={c['kept']}")


if __name__ == "__main__":
    main()
