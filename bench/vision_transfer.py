"""A torchvision architecture with local weights, carried through `tlexpert run` end to end.

    make vision
    .venv-vision/bin/python bench/vision_transfer.py [--arch resnet18] [--seeds 5] [--image-size 32]

1. Source: torchvision's ResNet-18 (random init) trained here on digits 0-4, saved as
   safetensors in bench/out/: the "local weights" a user would bring.
2. Target: `tlexpert run` on digits 5-9 with `--model torchvision:<arch> --weights <file>`:
   feature extraction, fine-tuning and LoRA over N seeds, against the no-transfer baselines
   (pixels + logistic regression, the same architecture from scratch), with the forgetting
   probe (linear probe on digits 0-4 before/after) and representation drift (CKA).
3. Control: the same run from the random-init weights (what the source training is worth).
4. Cost of feature extraction over N seeds vs one feature pass over the same images.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from _common import ROOT  # noqa: E402  (puts the project on sys.path)

OUT = ROOT / "bench" / "out"


def pretrain(arch: str, size: int, epochs: int, path, random_path) -> dict:
    import torch
    import torchvision
    from safetensors.torch import save_file

    from harness.training.backbones import resolve_backbone, transfer_net
    from harness.training.vision import _fit, digits, predict_images, split, train_recipe

    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(random_path))
    spec = resolve_backbone(f"torchvision:{arch}", str(random_path))
    net = transfer_net(spec, 5, 1, image_size=size)
    src = digits(source=True)
    tr, te = split(src, 0.3, seed=0)
    t = time.perf_counter()
    _fit(net, tr, None, 0, train_recipe(learning_rate=1e-3, epochs=epochs), augment=True)
    seconds = time.perf_counter() - t
    acc = float((predict_images(net, te) == te.y).mean())
    # back to torchvision's own layout (the body's weights; the source head is not needed downstream)
    state = {k.removeprefix("body."): v for k, v in net.state_dict().items() if k.startswith("body.")}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return {"source_accuracy": acc, "seconds": seconds, "train": len(tr), "test": len(te)}


def cli_run(weights, arch: str, size: int, seeds: int, out) -> tuple[dict, float]:
    scenario = OUT / "digits-scenario.yaml"
    scenario.write_text("task: image_classification\ndataset_size: 700\nnum_classes: 5\ncompute: cpu\n"
                        "deployment: server\ntask_similarity: related\ndomain_similarity: high\n")
    cmd = [str(ROOT / ".venv-vision" / "bin" / "tlexpert"), "run", str(scenario),
           "--model", f"torchvision:{arch}", "--weights", str(weights), "--image-size", str(size),
           "--technique", "feature_extraction", "--technique", "fine_tuning", "--technique", "lora",
           "--seeds", str(seeds), "--out", str(out), "--format", "json"]
    if not os.path.exists(cmd[0]):
        cmd[0:1] = [sys.executable, str(ROOT / "cli.py")]
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: no seeds resumed from an earlier one
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"tlexpert run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads((out / "run.json").read_text()), seconds


def fe_cost(weights, arch: str, size: int, seeds: int, repeats: int = 3) -> dict:
    from harness.training.backbones import resolve_backbone, transfer_net
    from harness.training.run import as_plan, plan_hypers
    from harness.training.techniques import run_head
    from harness.training.vision import digits, image_features, split
    from knowledge import get_kb
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    data = digits(source=False)
    train, test = split(data, 0.25, seed=0)
    train, val = split(train, 0.2, seed=0)
    net = transfer_net(resolve_backbone(f"torchvision:{arch}", str(weights)), 5, 1, image_size=size)
    plan = get_engine(kb).consult(normalize({"task": "image_classification", "dataset_size": 700,
                                             "compute": "cpu"}, kb))
    hyper = plan_hypers(as_plan(plan, kb), ["feature_extraction"], 5, [])["feature_extraction"]
    image_features(net, train)  # warm-up
    a, b = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        [image_features(net, d) for d in (train, val, test)]
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        X = [image_features(net, d) for d in (train, val, test)]
        for s in range(seeds):
            run_head(X[0], train.y, X[1], val.y, X[2], test.y, train.classes, s, hyper)
        b.append(time.perf_counter() - t)
    return {"pass_s": statistics.median(a), "fe_seeds_s": statistics.median(b),
            "ratio": statistics.median(b) / statistics.median(a), "images": len(train) + len(val) + len(test)}


def show(name: str, rec: dict, seconds: float) -> None:
    print(f"\n{name}: `tlexpert run` took {seconds:.1f} s")
    print(f"  {'technique':<22}{'accuracy':>9}  {'95% CI':<16}{'s/seed':>7}")
    for t, s in rec["summary"].items():
        lo, hi = s["accuracy_ci"]
        print(f"  {t:<22}{s['accuracy_mean']:>9.3f}  [{lo:.3f}, {hi:.3f}]  {s['seconds_mean']:>7.1f}")
    m = rec["measurements"]
    print(f"  retention (linear probe on digits 0-4) before: {m['retention_before']:.3f}; after, per technique:")
    for t in ("fine_tuning", "lora"):
        after = [r["extra"]["retention_after"] for r in rec["results"][t]]
        print(f"    {t}: mean {statistics.mean(after):.3f}")
    cka = m["cka_to_pretrained"]
    print(f"  CKA to the pre-trained features (fine-tuning, LoRA): mean {statistics.mean(cka):.3f}")
    for n, tr in rec["tests"].items():
        print(f"  test {n}: effect {tr['effect']:+.4f}, p = {tr['p_value']:.4g}, "
              f"{'significant' if tr['significant'] else 'not significant'} ({tr['method']})")
    print(f"  symptoms: {', '.join(s['id'] for s in rec['symptoms']) or 'none'}; "
          f"diagnoses: {', '.join(d['name'] for d in rec['diagnoses']) or 'none'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--source-epochs", type=int, default=15)
    ap.add_argument("--fe-sizes", type=int, nargs="+", default=[32, 224],
                    help="Input sizes at which to time feature extraction vs one feature pass.")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    weights = OUT / f"{args.arch}-digits04-{args.image_size}px.safetensors"
    random_weights = OUT / f"{args.arch}-random.safetensors"
    src = pretrain(args.arch, args.image_size, args.source_epochs, weights, random_weights)
    print(f"source: torchvision {args.arch} trained here on digits 0-4 ({src['train']} images, "
          f"{args.source_epochs} epochs, {args.image_size}px) in {src['seconds']:.1f} s; "
          f"source test accuracy {src['source_accuracy']:.3f}; weights {weights.name}")
    rec, sec = cli_run(weights, args.arch, args.image_size, args.seeds, OUT / "vision-run")
    show("from the digits 0-4 weights", rec, sec)
    rec0, sec0 = cli_run(random_weights, args.arch, args.image_size, args.seeds, OUT / "vision-run-random")
    show("control: from random-init weights", rec0, sec0)
    from harness.evaluation.stats import compare_paired

    print("\nwhat the digits 0-4 weights are worth, per technique (paired by seed, two-sided):")
    for t in ("feature_extraction", "fine_tuning", "lora"):
        a = [r["accuracy"] for r in rec0["results"][t]]
        b = [r["accuracy"] for r in rec["results"][t]]
        res = compare_paired(a, b)
        print(f"  {t}: {statistics.mean(b):.3f} vs {statistics.mean(a):.3f} from random init, "
              f"effect {res.effect:+.4f}, 95% CI [{res.ci_low:+.4f}, {res.ci_high:+.4f}], p = {res.p_value:.3g}")
    for size in args.fe_sizes:
        cost = fe_cost(weights, args.arch, size, args.seeds)
        print(f"\nfeature extraction at {size}px, {args.seeds} seeds vs one feature pass over {cost['images']} images: "
              f"{cost['fe_seeds_s']:.2f} s vs {cost['pass_s']:.2f} s = {cost['ratio']:.2f}x (medians of 3)")


if __name__ == "__main__":
    main()
