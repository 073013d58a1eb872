"""tlexpert: a transfer-learning expert system with an evaluation harness.

One click group; each command parses, calls one function of the rules or the harness, and renders
through ``harness.reporting`` (shared options and error mapping: ``commandline``). Heavy libraries
load only inside the commands that run models: ``consult``, ``models``, ``rules``, ``--help`` start fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.commands import DEMO_SCENARIO, _run, do_rank, load_rank_data
from harness.reporting.commandline import (BaselineCommand, FiniteFloat, Group, InputError, _plain, dump,
                                           format_option, get_kb, handle_errors, parse_count, rank_options,
                                           run_options, split_candidates, warn_implausible)
from harness.reporting.interview import (SCENARIO_FLAGS, ask_to_clarify, build_scenario, fill_from_data,
                                         plan_summary, rank_scenario, read_scenario_file, scenario_options)
from harness.training.registry import REGISTRY, unrunnable_reasons
from knowledge.writing import check_named_file, check_output, check_suffix, write_atomic


# --- the group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--knowledge", "knowledge", multiple=True, metavar="DIR",
              help="Extra knowledge folder (YAML) adding or overriding entries; repeatable. "
                   "Also $TLEXPERT_KNOWLEDGE (os.pathsep-separated).")
@click.version_option("0.1.0", prog_name="tlexpert")
def main(knowledge):
    """Transfer-learning expert system: plans, runs, diagnoses.

    \b
    Start with:  tlexpert consult            (answer the suitability questions)
                 tlexpert demo               (the customer-review case, end to end)
    """


# --- consult


@main.command()
@click.option("--scenario", "scenario_file", type=str, metavar="FILE",
              help="Scenario file (YAML or JSON); flags override its fields.")
@scenario_options
@click.option("--symptom", "symptoms", multiple=True, metavar="ID_OR_TEXT",
              help="An observed symptom: an id (see `tlexpert symptoms`) or a short description. Repeatable.")
@format_option()
@click.option("--explain", is_flag=True,
              help="Also print the rule trace (how each conclusion was reached) and the plan check: "
                   "the invariants of rules.lint the plan breaks, if any.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the plan (JSON, or YAML by extension).")
@click.option("--no-input", is_flag=True, help="Never prompt, even on a terminal.")
@click.option("--data", "data_file", metavar="FILE",
              help="Your labeled data (CSV/JSONL): the plan's candidates are scored on it (as "
                   "`rank-models` does) and the rules weigh the measured order against the catalog's.")
@click.option("--rank-candidates", "rank_candidates", multiple=True, metavar="A,B,...",
              help="With --data: models to score (default: the plan's candidates); folders are listed "
                   "in the measured ranking, catalog names can reorder the plan.")
@click.option("--text-column", default="text", show_default=True, help="With --data: the text column.")
@click.option("--label-column", default="label", show_default=True, help="With --data: the label column.")
@click.pass_context
@handle_errors
def consult(ctx, scenario_file, symptoms, fmt, explain, output, no_input, data_file, rank_candidates,
            text_column, label_column, **flags):
    """Answer the suitability questions and get a plan that explains itself."""
    from rules.engine import get_engine
    from harness.reporting.render import render_plan, render_trace

    if output:
        check_output(output, "-o", inputs=[scenario_file, data_file])
    kb = get_kb(ctx)
    if rank_candidates and not data_file:
        raise InputError("--rank-candidates needs --data FILE: the candidates are scored on that data.")
    data = None
    if data_file:  # heavy modules load only on this path
        data = load_rank_data(data_file, text_column, label_column)
        flags = fill_from_data(flags, scenario_file, data)
    interactive = not no_input and on_terminal() and fmt == "text"
    readings: list = []
    scenario = build_scenario(ctx, kb, scenario_file, flags, symptoms, interactive, readings)
    warn_implausible(scenario)
    plan = get_engine(kb).consult(scenario, readings=readings)
    if interactive and plan.clarify:
        scenario = ask_to_clarify(plan, scenario, readings, kb)
        plan = get_engine(kb).consult(scenario, readings=readings)
    if data is not None:
        names = split_candidates(rank_candidates) or [c["model"] for c in plan.candidates]
        rejected = {r["model"]: r["reasons"] for r in plan.rejected}
        opts = {"layer": "auto", "technique": plan.technique_id,
                "estimators": "logme,hscore,knn,linear_probe", "max_examples": None,
                "seed": 0, "max_length": 128, "device": "auto", "jobs": 1, "scheduler": None, "no_cache": False}
        ranking = do_rank(ctx, kb, data, names, rejected, opts, quiet=fmt != "text" or not sys.stderr.isatty())
        plan = get_engine(kb).consult(scenario, readings=readings, ranking=ranking)
    if output:
        out = Path(output)
        from rules.provenance import stamped

        write_atomic(out, dump(stamped(plan, kb).to_dict(), "yaml" if out.suffix in (".yaml", ".yml") else "json"))
        # the plan went to the file: stdout gets one line (and the trace when asked for)
        if explain:
            from rules.lint import lint
            from harness.reporting.render import render_violations

            click.echo(render_trace(plan))
            click.echo(render_violations(lint(plan, kb)))
        if fmt == "text":
            click.echo(plan_summary(plan, output))
        else:  # stdout stays machine-readable: the summary as one JSON object
            click.echo(json.dumps({"written": str(output), "technique": plan.technique_id,
                                   "model": plan.model.id if plan.model else None,
                                   "diagnoses": [d["pitfall"] for d in plan.diagnoses]}))
        return
    if fmt == "text":
        click.echo(render_plan(plan, kb))
        if explain:
            from rules.lint import lint
            from harness.reporting.render import render_violations

            click.echo(render_trace(plan))
            click.echo(render_violations(lint(plan, kb)))
    else:  # the JSON or YAML form, often redirected to a file: it records what it was made from
        from rules.lint import lint
        from rules.provenance import stamped

        click.echo(dump({**stamped(plan, kb).to_dict(), **({"explain": plan.trace, "violations": lint(plan, kb)} if explain else {})},
                        fmt))


def on_terminal() -> bool:
    return sys.stdin.isatty()


@main.command("plan-schema")
@handle_errors
def plan_schema():
    """Print the JSON Schema of a plan file (the contract `run` executes)."""
    from rules.plan_schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


# --- catalog commands


@main.command()
@click.option("--task", help="Only models for this task.")
@click.option("--family", help="Only this architecture family.")
@click.option("--max-params", help="Only models up to this size, e.g. 30M.")
@click.option("--offline", is_flag=True, help="Only models whose weights load without a network here.")
@format_option(choices=("text", "json", "yaml"))
@click.pass_context
@handle_errors
def models(ctx, task, family, max_params, offline, fmt):
    """The model catalog: size, speed, best uses, offline availability.

    offline: "yes" loads with no network; "--weights" is built here (torchvision/timm) from a
    local weights file given to `run --weights`; "no" needs a local model folder."""
    from knowledge.schema import choice_error

    kb = get_kb(ctx)
    if task and task not in kb.tasks:
        raise choice_error("task", "--task", task, kb.tasks)
    families = sorted(kb.sections["architectures"])
    if family and family not in families:
        raise choice_error("family", "--family", family, families)
    limit = parse_count(max_params, "--max-params")
    rows = [m for m in kb.models.values()
            if (not task or task in m.tasks) and (not family or m.family.value == family)
            and (limit is None or m.params <= limit) and (not offline or m.offline)]
    rows.sort(key=lambda m: (m.family.value, m.params))
    from harness.reporting.catalog import model_records, models_text

    click.echo(dump(model_records(rows), fmt) if fmt != "text" else models_text(kb, rows))


@main.command("rules")
@click.option("--topic", help="Only rules of this topic (profile, architecture, approach, technique, ...).")
@format_option(choices=("text", "json", "yaml"))
@click.pass_context
@handle_errors
def rules_cmd(ctx, topic, fmt):
    """Every rule with its id, what it decides, and its sources."""
    import rules.engine  # noqa: F401  (defines the rules)
    from rules.base import RULES

    kb = get_kb(ctx)
    infos = [r for r in RULES.values() if not topic or r.topic == topic]
    if topic and not infos:
        from knowledge.schema import choice_error

        raise choice_error("topic", "--topic", topic, sorted({r.topic for r in RULES.values()}))

    from harness.reporting.catalog import rule_records, rules_text

    click.echo(dump(rule_records(kb, infos), fmt) if fmt != "text" else rules_text(kb, infos))


@main.command()
@format_option(choices=("text", "json", "yaml"))
@click.pass_context
@handle_errors
def symptoms(ctx, fmt):
    """Symptom ids (for --symptom) with what they indicate."""
    kb = get_kb(ctx)
    from harness.reporting.catalog import symptom_records, symptoms_text

    rows = list(kb.symptoms.values())
    click.echo(dump(symptom_records(rows), fmt) if fmt != "text" else symptoms_text(rows))


# --- diagnose


@main.command(cls=BaselineCommand)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--baseline", "baselines", multiple=True, metavar="PATH...",
              help="Runs of the alternative (e.g. from scratch) to test against: several paths or a "
                   "quoted glob after one flag, or the flag repeated.")
@click.option("--loss", help="Training-loss column (default: loss, train_loss, ...).")
@click.option("--val-loss", help="Validation-loss column (default: eval_loss, val_loss, ...).")
@click.option("--target-metric", help="Target-task metric column (default: eval_accuracy, val_acc, ...).")
@click.option("--source-metric", help="Source-task metric column, for forgetting (default: source_accuracy, ...).")
@click.option("--num-classes", type=click.IntRange(2, 100000), help="Classes of the target task (chance loss).")
@click.option("--majority-rate", type=FiniteFloat(0, 1), help="Accuracy of always predicting the majority class.")
@click.option("--scenario", "scenario_file", metavar="FILE", help="The run's scenario, for concrete fixes.")
@click.option("--fail-on", type=click.Choice(["warning", "error"]),
              help="Exit 1 when a diagnosis of this severity or worse is found (for CI pipelines).")
@format_option()
@click.pass_context
@handle_errors
def diagnose(ctx, paths, baselines, loss, val_loss, target_metric, source_metric, num_classes,
             majority_rate, scenario_file, fail_on, fmt):
    """Say what went wrong in a run from its logs, with evidence and fixes.

    \b
    PATH: a tlexpert run folder (read whole: every technique, the baseline,
    the recorded tests and symptoms; a causal-LM run too), a Hugging Face
    Trainer output folder or trainer_state.json, a Lightning log folder or
    metrics.csv, a Keras CSVLogger file, a CSV/JSON/JSONL of per-step metrics,
    a printed log (a training script's saved output: Keras fit, Trainer dicts,
    PyTorch prints), TensorBoard event files, a quoted glob, or a folder to
    search. Runs are grouped by folder (digits stand for seeds) and
    by recorded configuration; each group is diagnosed on its own.
    """
    from harness.troubleshooting.diagnose import diagnose as run_diagnosis
    from harness.troubleshooting.logs import ColumnMap

    if majority_rate is not None and num_classes and majority_rate < 1 / num_classes - 1e-9:
        raise InputError(f"The '--majority-rate' option must be at least 1/--num-classes = {1 / num_classes:.4g}: "
                         f"the largest of {num_classes} classes holds at least that share. "
                         f"Got {majority_rate:g} instead.")
    kb = get_kb(ctx)
    scenario = read_scenario_file(scenario_file) if scenario_file else None
    report = run_diagnosis(list(paths), kb, baseline=list(baselines),
                           cols=ColumnMap(loss, val_loss, target_metric, source_metric),
                           scenario=scenario, n_classes=num_classes, majority_rate=majority_rate)
    if fmt != "text":
        click.echo(dump(report, fmt))
    else:
        from harness.reporting.console import diagnose_text

        click.echo(diagnose_text(report))
    if fail_on:
        worst = max((2 if d["severity"] == "error" else 1 for d in report["diagnoses"]), default=0)
        if worst >= (2 if fail_on == "error" else 1):
            ctx.exit(1)


# --- batch


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Output table: .csv, .json, .jsonl, .parquet or .md (by extension).")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Local worker processes.")
@click.option("--scheduler", metavar="ADDRESS", help="Run on an existing Dask cluster (tcp://host:port).")
@click.option("--resume", is_flag=True, help="Skip the scenarios an interrupted run of the same -o finished.")
@click.option("--chunk-size", type=click.IntRange(1, 100000), default=250, show_default=True,
              help="Scenarios per task sent to a worker.")
@format_option(choices=("text", "json"))
@click.pass_context
@handle_errors
def batch(ctx, files, output, jobs, scheduler, resume, chunk_size, fmt):
    """Consult many scenario files at once: one table, and a conformance check of `expect:` blocks.

    FILE: a scenario file (.yaml, .yml, .json, .jsonl, .csv), or a folder: the scenario files directly in it.

    Every plan is also linted (rules.lint): its violations go to the `violations` column.

    \b
    Exit status: 0 all scenarios consulted, every check passed and no plan
    contradicts itself; 1 a check failed or a plan broke an invariant; 2 a
    scenario or file was invalid (its row says why).
    """
    from harness.scaleout.batch import OUTPUT_SUFFIXES, consult_files
    from knowledge.loader import extra_dirs
    from rules import conformance

    get_kb(ctx)  # a broken --knowledge folder is reported once, before any worker starts
    out = check_suffix(output, "output file", OUTPUT_SUFFIXES) if output else None
    if output:
        check_output(output, "-o", inputs=files)
    if resume and out is None:
        raise InputError("--resume needs -o: the finished rows are kept beside the output file.")
    dirs = tuple(str(p) for p in extra_dirs(ctx.find_root().params.get("knowledge") or ()))
    rows = consult_files(files, out, conformance.consult_chunk, conformance.COLUMNS, jobs=jobs, scheduler=scheduler,
                         resume=resume, chunk_size=chunk_size, knowledge_dirs=dirs, on_close=ctx.call_on_close,
                         quiet=fmt == "json" or not sys.stderr.isatty())
    summary = conformance.summarize(rows)
    if fmt == "json":
        click.echo(json.dumps({"summary": summary, **({"output": str(out)} if out else {"rows": rows})},
                              indent=2, default=str))
    else:
        from harness.reporting.console import batch_text

        click.echo(batch_text(summary, rows, out))
    if summary["errors"]:
        ctx.exit(2)
    if summary["failed"] or summary["plans_with_violations"]:
        ctx.exit(1)


# --- rank-models


@main.command("rank-models")
@click.option("--data", "data_file", required=True, metavar="FILE",
              help="Labeled target data: CSV or JSONL with text and label columns.")
@click.option("--candidates", "candidate_opts", required=True, multiple=True, metavar="A,B,...",
              help="Catalog names, local Hugging Face folders, or checkpoint folders (a folder with "
                   "checkpoint-N/ or one model sub-folder). Comma-separated; repeatable.")
@click.option("--scenario", "scenario_file", metavar="FILE",
              help="Scenario (or plan) file: candidates its constraints reject are marked and explained.")
@scenario_options
@rank_options
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the table: .json (everything), .csv or .md by extension.")
@click.option("--plot", type=click.Path(dir_okay=False), metavar="FILE",
              help="Plot the aggregate rank against size and latency, Pareto front marked (.png, .svg, .pdf).")
@format_option(choices=("text", "json", "csv"))
@click.pass_context
@handle_errors
def rank_models_cmd(ctx, data_file, candidate_opts, scenario_file, output, plot, fmt, **opts):
    """Rank candidate pre-trained models on your own labeled data, without training them.

    \b
    Each candidate's texts are encoded once (all layers, cached) and scored by LogME,
    H-score, kNN leave-one-out accuracy and a cross-validated linear probe; the
    aggregate is the mean rank, with Kendall's W for how far the estimators agree.
    A killed ranking resumes with the candidates it finished.
    Exit status: 0 ranked; 2 bad input, or no candidate could be scored.
    """
    from rules.engine import get_engine

    kb = get_kb(ctx)
    flags = {name: opts.pop(name) for name, _, _ in SCENARIO_FLAGS}
    out = check_suffix(output, "output file", (".json", ".csv", ".md")) if output else None
    if plot:
        check_suffix(plot, "plot file", (".png", ".svg", ".pdf"))
    for option, path in (("-o", output), ("--plot", plot)):
        if path:  # before any candidate is scored: never replace an input
            check_output(path, option, inputs=[data_file, scenario_file])
    candidates = split_candidates(candidate_opts)
    if not candidates:
        raise InputError("The '--candidates' option must name at least one model. Got an empty list instead.")
    data = load_rank_data(data_file, opts["text_column"], opts["label_column"])
    scenario = rank_scenario(ctx, kb, scenario_file, flags, data)
    engine = get_engine(kb)
    plan = engine.consult(scenario, trace=False)
    rejected = {r["model"]: r["reasons"] for r in plan.rejected}
    for c in plan.candidates:
        if not c["meets_constraints"]:
            rejected.setdefault(c["model"], []).append("misses a constraint of the scenario "
                                                       "(no catalog model meets them all)")
    quiet = fmt != "text" or not sys.stderr.isatty()
    opts["technique"] = plan.technique_id
    result = do_rank(ctx, kb, data, candidates, rejected, opts, quiet)
    if not any(r["status"] == "ok" for r in result["rows"]):
        raise InputError("no candidate could be scored: " + "; ".join(
            f"{r['candidate']}: {r['error']}" for r in result["rows"]))
    verdict = engine.consult(scenario, trace=False, ranking=result).empirical_ranking
    result["against_catalog"] = {k: verdict[k] for k in ("verdict", "why", "notes")} if verdict else None
    from harness.reporting.ranking import plot_ranking, ranking_text, render_ranking

    if plot:
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        plot_ranking(result, plot)
    if out is not None:
        write_atomic(out, ranking_text(result, out.suffix.lower().lstrip(".")))
    if fmt == "text":
        click.echo(render_ranking(result, result["against_catalog"]))
        if out is not None or plot:
            click.echo("Written: " + ", ".join(str(p) for p in (out, plot) if p))
    else:
        click.echo(ranking_text(result, fmt), nl=fmt == "json")


# --- run and demo


def is_plan_file(data) -> bool:
    return isinstance(data, dict) and "schema_version" in data and "scenario" in data


def load_plan_or_scenario(ctx, kb, path: str, reconsult: bool = False):
    """The plan ``path`` holds, as written (a scenario file is consulted first).

    A plan file runs exactly as written. Its scenario is consulted again only when the file cannot vouch
    for itself (made by other knowledge or rules, or edited since: ``made_from``), and then the lines the
    current knowledge would plan otherwise are printed (``reconsult=True`` takes the new plan)."""
    from knowledge.loader import read_yaml
    from rules.contract import Plan, differences
    from rules.engine import get_engine
    from rules.provenance import unchanged

    data = read_yaml(path)
    if not is_plan_file(data):
        return get_engine(kb).consult(build_scenario(ctx, kb, path, {}, (), False))
    if reconsult:
        scenario = build_scenario(ctx, kb, path, {}, (), False)
        return get_engine(kb).consult(scenario)
    plan = Plan.from_dict(_plain(data), path, kb)
    if unchanged(plan, kb):  # the same knowledge and rules made it, and nobody edited it: nothing to report
        return plan
    fresh = get_engine(kb).consult(build_scenario(ctx, kb, path, {}, (), False))
    diff = differences(plan, fresh)
    if diff:
        from harness.reporting.console import drift_text

        click.echo(drift_text(path, diff), err=True)
    return plan


@main.command()
@click.argument("plan_or_scenario", metavar="PLAN_OR_SCENARIO")
@run_options
@click.option("--auto-fix", is_flag=True,
              help="After the run, apply the top fix, run again, keep it only if a test says it helped.")
@click.option("--max-rounds", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Fix attempts for --auto-fix.")
@click.option("--reconsult", is_flag=True,
              help="Consult the plan file's scenario again with the current knowledge and run that plan "
                   "(default: run the file as written).")
@click.pass_context
@handle_errors
def run(ctx, plan_or_scenario, reconsult, **opts):
    """Carry a plan out exactly as written (or a scenario, consulted first), with probes and tests."""
    kb = get_kb(ctx)
    plan = load_plan_or_scenario(ctx, kb, plan_or_scenario, reconsult)
    reasons = unrunnable_reasons(kb, plan, opts.get("techniques"))
    if reasons:
        raise InputError(f"{plan_or_scenario}: " + "; and ".join(reasons) + ".")
    if not opts.get("retention_data"):  # a file named by the plan file, not on the command line
        check_named_file(plan.evaluation.retention_data, "evaluation.retention_data", plan_or_scenario,
                         "--retention-data")
    name = Path(plan_or_scenario).stem
    _run(ctx, plan, name, opts)


@main.command()
@click.option("--seeds", type=click.IntRange(2, 20), default=3, show_default=True)
@click.option("--size", type=click.IntRange(60, 100000), default=1500, show_default=True,
              help="Number of built-in reviews.")
@click.option("--epochs", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Epochs of fine-tuning and LoRA.")
@click.option("--out", type=str, metavar="DIR")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@format_option(choices=("text", "json"))
@click.pass_context
@handle_errors
def demo(ctx, seeds, size, epochs, out, device, fmt):
    """The course's customer-review case end to end on built-in reviews with all-MiniLM-L6-v2."""
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb(ctx)
    plan = get_engine(kb).consult(normalize({**DEMO_SCENARIO, "dataset_size": size}, kb))
    if fmt == "text":
        click.echo(f"Plan: {plan.technique['name']} ({plan.technique['why']['text']}); "
                   f"comparing feature extraction, fine-tuning and LoRA, each with its own recipe, over "
                   f"{seeds} seeds.", err=True)
    # every transfer technique that runs on text, each with its own recipe; --epochs is for the trained backbones
    compared = [t for t, spec in REGISTRY.items() if spec.pretrained and "text" in spec.honours]
    opts = {"fmt": fmt, "techniques": compared, "seeds": seeds,
            "model": "all-MiniLM-L6-v2", "text_column": "text", "label_column": "label",
            "device": device, "out": out, "max_length": 64, "alpha": None, "no_cache": False,
            "epochs": epochs, "learning_rate": None, "batch_size": None,
            "override_scope": [t for t in compared if not REGISTRY[t].head_only]}
    _run(ctx, plan, "demo", opts, builtin_size=size)


if __name__ == "__main__":  # pragma: no cover
    main()
