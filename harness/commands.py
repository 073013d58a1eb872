"""What the commands that run models do between parsing and rendering: ``run`` and ``demo`` carry a
plan out (``_run``), ``rank-models`` and ``consult --data`` score candidates (``do_rank``).
torch and the rest load only inside these functions."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from harness.reporting.commandline import InputError, get_kb


DEMO_SCENARIO = {
    "name": "customer reviews (course case study)",
    "task": "text_classification", "dataset_size": 1500, "num_classes": 3,
    "task_similarity": "related", "domain_similarity": "low", "compute": "cpu",
    "deployment": "server", "source_domain": ["wikipedia", "news"],
    "target_domain": ["customer reviews", "informal", "emoji"],
}


def load_rank_data(path: str, text_column: str, label_column: str, flag: str = "--data"):
    """The labeled texts to rank on; a single class is one Error: line."""
    from harness.training.data import load_text
    from harness.ranking.rank import class_warnings

    data = load_text(path, text_column, label_column)
    class_warnings(data.labels, 1)  # raises for a single class
    return data


def do_rank(ctx, kb, data, candidates: list[str], rejected: dict, opts: dict, quiet: bool) -> dict:
    from harness.training.models import pick_device
    from harness.ranking.rank import rank_models

    estimators = [e.strip() for e in opts["estimators"].split(",") if e.strip()]
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(candidates), desc="candidates", unit="model", file=sys.stderr, leave=False)
    try:
        return rank_models(
            candidates, data, kb, layer=opts["layer"], technique=opts.get("technique"), estimators=estimators,
            max_examples=opts.get("max_examples") or int(kb.threshold("rank_max_examples")),
            seed=opts["seed"], max_length=opts["max_length"], device=pick_device(opts["device"]),
            jobs=opts["jobs"], scheduler=opts.get("scheduler"), use_cache=not opts["no_cache"],
            rejected=rejected, min_per_class=int(kb.threshold("rank_min_examples_per_class")),
            on_row=(lambda r: bar.update(1)) if bar is not None else None, budget_s=opts.get("budget"))
    except OSError as exc:
        if opts.get("scheduler"):
            raise InputError(f"--scheduler {opts['scheduler']}: cannot reach the Dask scheduler ({exc})") from None
        raise
    finally:
        if bar is not None:
            bar.close()


def _run(ctx, plan, name: str, opts: dict, builtin_size: int = 1500) -> dict:
    import time as _time

    from harness.training.run import RunConfig, execute

    kb = get_kb(ctx)
    fmt = opts["fmt"]
    quiet = fmt == "json" or not sys.stderr.isatty()
    out = opts.get("out") or f"runs/{_time.strftime('%Y%m%d-%H%M%S')}-{name}"
    from knowledge.writing import check_output_dir

    check_output_dir(out, "--out", force=opts.get("force", False))
    cfg = RunConfig(
        techniques=list(opts.get("techniques") or [plan.technique_id]),
        seeds=opts.get("seeds"), model=opts["model"], train=opts.get("train"),
        validation=opts.get("validation"), test=opts.get("test"),
        text_column=opts["text_column"], label_column=opts["label_column"],
        retention_data=opts.get("retention_data"), device=opts["device"], out=out,
        max_length=opts.get("max_length") or run_max_length(kb, plan), alpha=opts.get("alpha"),
        use_cache=not opts["no_cache"],
        builtin_size=builtin_size,
        intermediate_data=opts.get("intermediate_data"), unlabeled_data=opts.get("unlabeled_data"),
        weights=opts.get("weights"), image_size=opts.get("image_size"),
        overrides={"epochs": opts.get("epochs"), "learning_rate": opts.get("learning_rate"),
                   "batch_size": opts.get("batch_size"), "head": opts.get("head"),
                   "replay_ratio": opts.get("replay_ratio"), "packing": opts.get("packing"),
                   "prompt_loss": opts.get("prompt_loss")},
        override_scope=opts.get("override_scope"),
    )

    lm_only = [f"--{k.replace('_', '-')}" for k in ("replay_ratio", "packing", "prompt_loss") if opts.get(k) is not None]
    if lm_only and not is_causal_lm_plan(kb, plan):
        raise click.UsageError(f"{', '.join(lm_only)}: for a plan that adapts a causal language model "
                               f"(task text_generation); this plan's task is {plan.scenario.get('task')}")

    from harness.reporting.progress import Progress

    progress = Progress(enabled=not quiet)
    made = not os.path.exists(out)
    try:
        if is_causal_lm_plan(kb, plan):
            from harness.training.lm_run import execute_lm

            if not opts.get("auto_fix"):
                from harness.reporting.console import lm_run_text

                record = execute_lm(plan, cfg, kb, progress)
                click.echo(lm_run_text(record, out, fmt))
                return record
        if opts.get("auto_fix"):
            from harness.troubleshooting.autofix import auto_fix

            result = auto_fix(plan, cfg, kb, opts.get("max_rounds") or 3, progress)
            from harness.reporting.console import autofix_text

            click.echo(autofix_text(result, out, fmt))
            return result
        record = execute(plan, cfg, kb, progress)
    except MemoryError:
        raise InputError(_oom_hint(plan, opts)) from None
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise InputError(_oom_hint(plan, opts)) from None
        raise
    finally:
        if made:  # a run that stopped before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                os.rmdir(out)
    from harness.reporting.console import run_text

    click.echo(run_text(record, out, fmt))
    return record


def is_causal_lm_plan(kb, plan) -> bool:
    from harness.training.lm_run import is_causal_lm

    return is_causal_lm(kb, plan)


def _oom_hint(plan, opts: dict) -> str:
    size = opts.get("batch_size") or plan.hyperparameters.batch_size
    return f"out of memory: try --batch-size {max(1, size // 2)}"


def run_max_length(kb, plan) -> int:
    """Tokens per text input for a run: what the plan's memory estimate assumed (an older plan file without
    it: the knowledge base's default)."""
    return int((plan.memory or {}).get("sequence_tokens") or kb.threshold("sequence_tokens"))
