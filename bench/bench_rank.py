"""Validate `rank-models` on real tweets: do transferability scores order candidates the
way training them does?

    nice -n 5 python bench/bench_rank.py [--train 1500] [--seeds 3] [--epochs 2] [--out bench/out/rank]
                                         [--peer-python /path/to/venv/bin/python]

Target task: TweetEval sentiment (../shared/data/tweeteval). Candidates, all
offline, built once and cached under OUT/models:

- all-MiniLM-L6-v2 (the packaged model)
- the same model cut after 4, 2 and 1 of its 6 layers (truncated copies)
- the same model after a short intermediate fine-tuning on TweetEval emotion,
  on TweetEval emoji, and on emotion with shuffled labels
- a randomly initialised model of the same shape

Steps (each cached in OUT, so a rerun resumes):
1. score: the `rank-models` code path (harness.ranking.rank.rank_models) on the
   training tweets with an empty embedding cache, for the layer choices
   last / mean / best; timed.
2. peer: transformer-ranker (if --peer-python names an interpreter where it is
   installed) on the same texts and candidates, per estimator; timed.
3. train: every candidate with the plan's technique for this scenario (LoRA,
   the plan's hyperparameters, --epochs epochs) for --seeds seeds; test accuracy.
4. compare: Kendall's tau of each estimator's scores (and of the aggregate) with
   the mean trained accuracy; the wall-time ratio of training to scoring.

The summary goes to OUT/summary.json and is printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, TWEETEVAL, read_rows, sample, write_csv  # noqa: E402  (puts the project on sys.path)

SCENARIO = {"task": "text_classification", "dataset_size": 1500, "num_classes": 3,
            "task_similarity": "related", "domain_similarity": "low", "compute": "cpu",
            "deployment": "server", "source_domain": ["wikipedia", "news"],
            "target_domain": ["tweets", "informal", "emoji"]}


DATA = TWEETEVAL


def read(name: str) -> list[tuple[str, str]]:
    return read_rows(DATA / name)  # DATA: TweetEval, or --data-dir




def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- candidates


def build_candidates(out: Path, n_inter: int, inter_epochs: int, lr: float, max_length: int) -> dict[str, str]:
    """name -> local folder of every candidate, built once."""
    import torch
    from transformers import AutoConfig, AutoModel

    from harness.training.data import TextData
    from harness.training.models import load_tokenizer, resolve_model
    from harness.training.techniques import adapted_encoder, run_transformer

    from knowledge.loader import get_kb

    _, base = resolve_model("all-MiniLM-L6-v2", get_kb())
    models = out / "models"
    cands = {"minilm-L6": base}
    tok = load_tokenizer(base)
    for k in (4, 2, 1):
        d = models / f"minilm-L{k}"
        if not (d / "config.json").exists():
            m = AutoModel.from_pretrained(base)
            m.encoder.layer = m.encoder.layer[:k]
            m.config.num_hidden_layers = k
            m.save_pretrained(d)
            tok.save_pretrained(d)
        cands[f"minilm-L{k}"] = str(d)
    inter = {"emotion": ("emotion_train.csv", False), "emoji": ("emoji_train.csv", False),
             "shuffled": ("emotion_train.csv", True)}
    for name, (fname, shuffle) in inter.items():
        d = models / f"minilm-{name}"
        if not (d / "config.json").exists():
            rows = sample(read(fname), n_inter + 100, seed=1)
            texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
            if shuffle:
                random.Random(2).shuffle(labels)
            train = TextData(texts[:n_inter], labels[:n_inter])
            val = TextData(texts[n_inter:], labels[n_inter:], train.classes)
            t0 = time.perf_counter()
            hyper = {"learning_rate": lr, "epochs": inter_epochs, "batch_size": 32, "warmup_ratio": 0.1,
                     "weight_decay": 0.01, "dropout": 0.1, "frozen_layers": "none"}
            res, model, _ = run_transformer(base, train, val, val, seed=0, hyper=hyper,
                                            technique="fine_tuning", max_length=max_length)
            adapted_encoder(model).save_pretrained(d)
            tok.save_pretrained(d)
            (d / "intermediate.json").write_text(json.dumps(
                {"task": fname, "shuffled_labels": shuffle, "examples": n_inter, "epochs": inter_epochs, "lr": lr,
                 "val_accuracy": res.accuracy, "seconds": time.perf_counter() - t0}))
            log(f"intermediate {name}: val accuracy {res.accuracy:.3f} in {time.perf_counter() - t0:.0f}s")
        cands[f"minilm-{name}"] = str(d)
    d = models / "random-init"
    if not (d / "config.json").exists():
        torch.manual_seed(0)
        m = AutoModel.from_config(AutoConfig.from_pretrained(base))
        m.save_pretrained(d)
        tok.save_pretrained(d)
    cands["random-init"] = str(d)
    return cands


# --- scoring


def score(cands: dict, train_csv: str, out: Path, max_length: int) -> dict:
    from harness.training.data import load_text
    from harness.ranking.rank import rank_models
    from knowledge.loader import get_kb

    f = out / "scores.json"
    if f.exists():
        return json.loads(f.read_text())
    kb = get_kb()
    data = load_text(train_csv)
    res = {}
    os.environ["TLEXPERT_CACHE_DIR"] = str((out / "cache").resolve())
    for layer in ("mean", "last", "best"):  # the first call pays for the embeddings
        t0 = time.perf_counter()
        r = rank_models(list(cands.values()), data, kb, layer=layer, max_examples=len(data), max_length=max_length,
                        use_cache=True)
        res[layer] = {"seconds": time.perf_counter() - t0,
                      "scores": {name: next(x for x in r["rows"] if x["path"] == p)["scores"]
                                 for name, p in cands.items()},
                      "per_layer": {name: next(x for x in r["rows"] if x["path"] == p).get("per_layer")
                                    for name, p in cands.items()},
                      "params": {name: next(x for x in r["rows"] if x["path"] == p)["params"]
                                 for name, p in cands.items()},
                      "agreement": r["agreement"], "warnings": r["warnings"]}
        log(f"scored ({layer}) in {res[layer]['seconds']:.0f}s")
    f.write_text(json.dumps(res, indent=1))
    return res


PEER_SCRIPT = r"""
import json, sys, time, csv
from datasets import Dataset
from transformer_ranker import TransformerRanker
cfg = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(cfg["train"], encoding="utf-8")))
ds = Dataset.from_dict({"text": [r["text"] for r in rows], "label": [r["label"] for r in rows]})
out = {}
for est in cfg["estimators"]:
    t0 = time.perf_counter()
    ranker = TransformerRanker(ds, dataset_downsample=None, text_column="text", label_column="label")
    res = ranker.run(list(cfg["models"].values()), estimator=est, layer_aggregator=cfg["layer"],
                     batch_size=64, device="cpu")  # gpu_estimation=False raises TypeError in 0.2.0
    names = {**{v: k for k, v in cfg["models"].items()}, **{v.rstrip("/").split("/")[-1]: k for k, v in cfg["models"].items()}}
    out[est] = {"seconds": time.perf_counter() - t0,
                "scores": {names.get(m, names.get(m.rstrip("/").split("/")[-1], m)): float(s) for m, s in res.scores.items()}}
    json.dump(out, open(cfg["out"], "w"))
"""


def peer(cands: dict, train_csv: str, out: Path, python: str, estimators, layer: str) -> dict:
    f = out / f"peer-{layer}.json"
    if f.exists():
        return json.loads(f.read_text())
    if not python:
        return {"error": "not run: no --peer-python given"}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "peer.py"
        script.write_text(PEER_SCRIPT)
        cfg = Path(tmp) / "cfg.json"
        res_f = Path(tmp) / "res.json"
        cfg.write_text(json.dumps({"train": train_csv, "models": cands, "estimators": list(estimators),
                                   "layer": layer, "out": str(res_f)}))
        t0 = time.perf_counter()
        p = subprocess.run([python, str(script), str(cfg)], capture_output=True, text=True,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": ""})
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            res = {"error": (p.stderr.strip().splitlines() or ["no output"])[-1], "returncode": p.returncode,
                   "seconds": wall}
        else:
            res = {**json.loads(res_f.read_text()), "total_seconds": wall}
    f.write_text(json.dumps(res, indent=1))
    return res


# --- training


def plan_for(n_train: int) -> dict:
    from knowledge.loader import get_kb
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    return get_engine(kb).consult(normalize({**SCENARIO, "dataset_size": n_train}, kb))


def train_all(cands: dict, splits, out: Path, seeds: int, technique: str = "", epochs: int = 0,
              max_length: int = 64) -> dict:
    """Train every candidate with ``technique`` (default: the plan's for this many examples), seeds 0..seeds-1.

    Feature extraction goes the harness's way: cached last-layer embeddings, a linear head per seed
    (the embedding time counted once per candidate); LoRA/fine-tuning through run_transformer."""
    from harness.training.data import load_text
    from harness.training.embed import cached_encode
    from harness.training.models import load_encoder
    from harness.training.run import technique_hyper
    from harness.training.techniques import run_head, run_transformer
    from knowledge.loader import get_kb

    kb = get_kb()
    train, val, test = (load_text(p) for p in splits)
    val.classes = test.classes = train.classes
    plan = plan_for(len(train))
    tech = technique or plan["technique"]["choice"]
    over = {"epochs": epochs or None}
    res = {"technique": tech, "plan_technique": plan["technique"]["choice"], "runs": {}}
    for seed in range(seeds):  # seed-major: every candidate has seed 0 before any has seed 1
        for name, path in cands.items():
            f = out / "train" / f"{tech}-{name}-s{seed}-e{epochs or 'plan'}-n{len(train)}.json"
            if f.exists():
                rec = json.loads(f.read_text())
            else:
                hyper = technique_hyper(kb, plan, tech, over, 6)
                t0 = time.perf_counter()
                if tech == "feature_extraction":
                    tok, enc = load_encoder(path)
                    X = [cached_encode(path, enc, tok, d.texts, data_key=d.fingerprint(), max_length=max_length)
                         for d in (train, val, test)]
                    embed_s = time.perf_counter() - t0
                    r = run_head(X[0][0], train.y, X[1][0], val.y, X[2][0], test.y, train.classes, seed, hyper)
                    # embeddings are computed once per candidate: charge them to seed 0 only
                    seconds = r.seconds + (embed_s if not any(x[1] for x in X) else 0.0)
                else:
                    r, _, _ = run_transformer(path, train, val, test, seed=seed, hyper=hyper, technique=tech,
                                              max_length=max_length,
                                              lora_targets=(hyper.get("lora") or {}).get("target_modules"))
                    seconds = r.seconds
                rec = {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "seconds": seconds, "hyper": hyper}
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(json.dumps(rec, default=str))
                log(f"{tech} {name} seed {seed}: accuracy {r.accuracy:.3f} in {seconds:.0f}s")
            res["runs"].setdefault(name, []).append(rec)
    return res


def pool_protocol(cands: dict, train_csv: str, out: Path, seeds: int, max_length: int,
                  batch_size: int) -> dict:
    """Ground truth and scores from the embeddings the scoring step cached (no new encoding).

    The scored tweets are split (stratified, seed 0) into 60% train / 15% validation / 25% test.
    Each candidate: the plan's feature-extraction head (harness run_head, the plan's hyperparameters,
    ``batch_size`` for the batch) on the last layer, ``seeds`` seeds, test accuracy; the estimators
    on the 60% train part only (last, mean and best layer; the probe for last and mean)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from harness.training.data import load_text
    from harness.training.embed import cached_encode
    from harness.ranking.scoring import score_layers
    from harness.training.run import technique_hyper
    from harness.training.techniques import run_head
    from knowledge.loader import get_kb

    f = out / f"pool-s{seeds}-b{batch_size}.json"
    if f.exists():
        return json.loads(f.read_text())
    kb = get_kb()
    data = load_text(train_csv)
    y = np.asarray(data.y)
    idx = np.arange(len(y))
    tr, rest = train_test_split(idx, test_size=0.4, random_state=0, stratify=y)
    va, te = train_test_split(rest, test_size=0.625, random_state=0, stratify=y[rest])
    plan = plan_for(len(tr))
    tech = plan["technique"]["choice"]
    hyper = technique_hyper(kb, plan, "feature_extraction", {"batch_size": batch_size}, 6)
    res = {"split": [len(tr), len(va), len(te)], "plan_technique": tech, "hyper": hyper, "runs": {},
           "scores": {}, "best_layer": {}, "seconds": {}}
    for name, path in cands.items():
        H, hit = cached_encode(path, None, None, data.texts, data_key=data.fingerprint(), max_length=max_length,
                               all_layers=True)
        assert hit, f"{name}: run the score step first"
        X = H[-1]
        t0 = time.perf_counter()
        runs = [run_head(X[tr], y[tr].tolist(), X[va], y[va].tolist(), X[te], y[te].tolist(), data.classes,
                         seed, hyper) for seed in range(seeds)]
        res["runs"][name] = [{"accuracy": r.accuracy, "macro_f1": r.macro_f1, "seconds": r.seconds} for r in runs]
        res["seconds"].setdefault("heads", {})[name] = time.perf_counter() - t0
        sc = {}
        for layer in ("last", "mean", "best"):
            t0 = time.perf_counter()
            ests = ["logme", "hscore", "knn"] + (["linear_probe"] if layer != "best" else [])
            scores, _, per = score_layers(H[:, tr], y[tr], layer, ests, seed=0, k=5, folds=5)
            sc[layer] = scores
            if per:
                res["best_layer"][name] = per["best"]
            res["seconds"].setdefault(layer, {})[name] = time.perf_counter() - t0
        res["scores"][name] = sc
        log(f"pool {name}: head accuracy {np.mean([r.accuracy for r in runs]):.3f}; "
            f"scores {json.dumps({k: {e: round(v, 3) for e, v in d.items()} for k, d in sc.items()})}")
    f.write_text(json.dumps(res, indent=1))
    return res


def compare_pool(pool: dict) -> dict:
    import numpy as np

    from harness.ranking.transferability import aggregate_ranks, kendall_tau

    names = list(pool["runs"])
    acc = np.array([np.mean([r["accuracy"] for r in pool["runs"][n]]) for n in names])
    out = {"accuracy": dict(zip(names, acc.round(4).tolist())),
           "accuracy_sd": {n: float(np.std([r["accuracy"] for r in pool["runs"][n]], ddof=1)) for n in names},
           "layers": {}}
    for layer in ("last", "mean", "best"):
        ests = [e for e in ("logme", "hscore", "knn", "linear_probe")
                if all(e in pool["scores"][n][layer] for n in names)]
        mat = {e: np.array([pool["scores"][n][layer][e] for n in names]) for e in ests}
        taus = {e: kendall_tau(mat[e], acc) for e in ests}
        mean_rank, w, tau_pair = aggregate_ranks(mat)
        taus["aggregate"] = kendall_tau(-mean_rank, acc)
        out["layers"][layer] = {"tau": taus, "kendall_w": w, "mean_pairwise_tau": tau_pair,
                                "estimators": ests}
    return out


# --- comparison


def compare(scored: dict, peer_res: dict, trained: dict) -> dict:
    import numpy as np

    from harness.ranking.transferability import aggregate_ranks, kendall_tau

    names = list(trained["runs"])
    acc = np.array([np.mean([r["accuracy"] for r in trained["runs"][n]]) for n in names])
    train_seconds = sum(r["seconds"] for n in names for r in trained["runs"][n])
    out = {"accuracy": dict(zip(names, acc.round(4).tolist())),
           "accuracy_sd": {n: float(np.std([r["accuracy"] for r in trained["runs"][n]], ddof=1))
                           if len(trained["runs"][n]) > 1 else None for n in names},
           "train_seconds": train_seconds, "layers": {}}
    for layer, s in scored.items():
        per = {}
        ests = [e for e in ("logme", "hscore", "knn", "linear_probe") if all(e in s["scores"][n] for n in names)]
        mat = {e: np.array([s["scores"][n][e] for n in names]) for e in ests}
        for e in ests:
            per[e] = kendall_tau(mat[e], acc)
        mean_rank, w, tau_pair = aggregate_ranks(mat)
        per["aggregate"] = kendall_tau(-mean_rank, acc)
        out["layers"][layer] = {"tau": per, "kendall_w": w, "mean_pairwise_tau": tau_pair,
                                "seconds": s["seconds"], "speedup": train_seconds / s["seconds"],
                                "scores": s["scores"]}
    for layer, p in peer_res.items():
        if "error" in p:
            out.setdefault("peer", {})[layer] = {"error": p["error"]}
            continue
        taus = {}
        for e, r in p.items():
            if isinstance(r, dict) and "scores" in r:
                taus[e] = {"tau": kendall_tau([r["scores"][n] for n in names], acc), "seconds": r["seconds"],
                           "ranking": sorted(r["scores"], key=lambda n: -r["scores"][n])}
        out.setdefault("peer", {})[layer] = taus
    return out


def markdown(summary: dict, key: str = "compare") -> str:
    c = summary[key]
    lines = ["| candidate | accuracy (mean ± sd over seeds) | params |", "| --- | --- | --- |"]
    params = summary["scored"]["mean"]["params"]
    for n, a in sorted(c["accuracy"].items(), key=lambda kv: -kv[1]):
        sd = c["accuracy_sd"][n]
        lines.append(f"| {n} | {a:.3f}" + (f" ± {sd:.3f}" if sd is not None else "") + f" | {params[n]:,} |")
    lines += ["", "| layers | LogME τ | H-score τ | kNN τ | linear probe τ | aggregate τ | Kendall's W | "
              "scoring s | training s / scoring s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for layer, r in c["layers"].items():
        t = r["tau"]
        cell = lambda k: f"{t[k]:.2f}" if k in t and t[k] == t[k] else "n/a"  # noqa: E731
        lines.append(f"| {layer} | {cell('logme')} | {cell('hscore')} | {cell('knn')} | {cell('linear_probe')} | "
                     f"{cell('aggregate')} | {r['kendall_w']:.2f} | {r['seconds']:.0f} | {r['speedup']:.1f}x |")
    for layer, p in (c.get("peer") or {}).items():
        if "error" in p:
            lines.append(f"\ntransformer-ranker ({layer}): {p['error']}")
            continue
        for e, r in p.items():
            lines.append(f"\ntransformer-ranker {e} ({layer}): τ = {r['tau']:.2f}, {r['seconds']:.0f} s; "
                         f"ranking {' > '.join(r['ranking'])}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--val", type=int, default=300)
    ap.add_argument("--test", type=int, default=700)
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the plan's technique")
    ap.add_argument("--lora-seeds", type=int, default=1)
    ap.add_argument("--lora-epochs", type=int, default=1)
    ap.add_argument("--lora-candidates", default="", help="time LoRA on these candidates only (comma-separated)")
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--inter", type=int, default=400, help="examples of each intermediate task")
    ap.add_argument("--inter-epochs", type=int, default=1)
    ap.add_argument("--inter-lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--head-batch", type=int, default=32, help="batch size of the feature-extraction head")
    ap.add_argument("--data-dir", default=str(TWEETEVAL), help="the TweetEval folder")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "rank"))
    ap.add_argument("--peer-python", default="")
    ap.add_argument("--peer-estimators", default="hscore")
    ap.add_argument("--steps", default="candidates,score,train,peer,lora,compare")
    args = ap.parse_args(argv)
    global DATA
    DATA = Path(args.data_dir)
    if not DATA.exists():
        print(f"TweetEval data not found at {DATA} (--data-dir)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TLEXPERT_CACHE_DIR", str((out / "cache").resolve()))
    steps = set(args.steps.split(","))
    t_all = time.perf_counter()
    pool = read("sentiment_train.csv")
    rows = sample(pool, args.train, seed=0)
    heldout = sample(read("sentiment_val.csv"), args.val + args.test, seed=0)
    splits = (write_csv(out / "data" / "train.csv", rows), write_csv(out / "data" / "val.csv", heldout[:args.val]),
              write_csv(out / "data" / "test.csv", heldout[args.val:]))
    import torch

    torch.set_num_threads(args.threads)
    cands = build_candidates(out, args.inter, args.inter_epochs, args.inter_lr, args.max_length)
    log(f"{len(cands)} candidates ready")
    summary = {"args": vars(args), "candidates": {k: str(Path(v).relative_to(ROOT)) if str(v).startswith(str(ROOT))
                                                  else v for k, v in cands.items()}}
    if "score" in steps:
        summary["scored"] = score(cands, splits[0], out, args.max_length)
    if "peer" in steps:
        summary["peer"] = {lay: peer(cands, splits[0], out, args.peer_python, args.peer_estimators.split(","), lay)
                           for lay in ("layermean",)}
        log("peer done")
    if "train" in steps:
        summary["trained"] = train_all(cands, splits, out, args.seeds, max_length=args.max_length)
    if "pool" in steps:
        summary["pool"] = pool_protocol(cands, splits[0], out, args.seeds, args.max_length, args.head_batch)
        summary["compare_pool"] = compare_pool(summary["pool"])
        print(json.dumps(summary["compare_pool"], indent=1))
        (out / "pool-summary.json").write_text(json.dumps(summary, indent=1, default=str))
    if "lora" in steps:
        only = [c for c in args.lora_candidates.split(",") if c] or list(cands)
        summary["trained_lora"] = train_all({k: v for k, v in cands.items() if k in only}, splits, out,
                                            args.lora_seeds, technique="lora", epochs=args.lora_epochs,
                                            max_length=args.max_length)
    if "compare" in steps and "trained" in summary and "scored" in summary:
        summary["compare"] = compare(summary["scored"], summary.get("peer", {}), summary["trained"])
        lora = summary.get("trained_lora")
        if lora and len(lora["runs"]) == len(cands):
            summary["compare_lora"] = compare(summary["scored"], summary.get("peer", {}), lora)
        elif lora:  # timed on some candidates only: the cost of the full protocol is extrapolated
            per_run = [r["seconds"] for rs in lora["runs"].values() for r in rs]
            full = sum(per_run) / len(per_run) * len(cands) * args.seeds
            summary["lora_timing"] = {
                "timed_runs": {k: [r["seconds"] for r in rs] for k, rs in lora["runs"].items()},
                "epochs": args.lora_epochs, "protocol_seconds_estimate": full,
                "speedup_estimate": full / summary["compare"]["layers"]["mean"]["seconds"]}
        summary["bench_seconds"] = time.perf_counter() - t_all
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        print(f"trained with {summary['trained']['technique']} (the plan's technique for {args.train} examples)")
        print(markdown(summary))
        if "compare_lora" in summary:
            print(f"\ntrained with LoRA ({args.lora_epochs} epoch(s), {args.lora_seeds} seed(s))")
            print(markdown(summary, "compare_lora"))
        if "lora_timing" in summary:
            print("\nLoRA timing: " + json.dumps(summary["lora_timing"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
