"""tlexpert: a transfer-learning expert system with an evaluation harness.

One click group; each command parses, calls the engine or harness, renders.
Heavy libraries (torch, transformers, peft, pandas) are imported only inside
the commands that run models, so ``consult``, ``models``, ``rules`` and
``--help`` start fast.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import click

from knowledge.schema import KnowledgeError

FORMATS = ("text", "json", "yaml")


class InputError(click.ClickException):
    """Bad input: one line, exit status 2."""

    exit_code = 2


def handle_errors(fn):
    """Map domain errors to ``Error: ...`` with exit status 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KnowledgeError as exc:
            raise InputError(str(exc)) from None

    return wrapper


def get_kb(ctx: click.Context):
    from knowledge.loader import extra_dirs, get_kb as load

    root = ctx.find_root()
    dirs = root.params.get("knowledge") or ()
    try:
        return load(extra_dirs(dirs))
    except KnowledgeError as exc:
        raise InputError(str(exc)) from None


# --- output helpers


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str)
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename: never half-written."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def format_option(default="text", choices=FORMATS):
    return click.option("--format", "fmt", type=click.Choice(choices), default=default,
                        show_default=True, help="Output format.")


# --- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


SCENARIO_FLAGS = [
    ("task", str, "Target task, e.g. text_classification (see `tlexpert models`)."),
    ("dataset_size", str, "Labeled target examples."),
    ("num_classes", str, "Number of target classes."),
    ("task_similarity", str, "Do source and target tasks match? same | related | different."),
    ("domain_similarity", str, "Are source and target data similar? high | medium | low."),
    ("compute", str, "cpu | consumer_gpu | datacenter_gpu | tpu."),
    ("gpu_memory_gb", str, "Accelerator memory in GiB."),
    ("deployment", str, "mobile | edge | server | batch."),
    ("latency_ms", str, "Latency budget per prediction in ms (0: none)."),
    ("source_domain", str, "Source domain tags, comma-separated (e.g. 'wikipedia,news')."),
    ("target_domain", str, "Target domain tags, comma-separated (e.g. 'reviews,informal')."),
]


def scenario_options(fn):
    for name, typ, help_ in reversed(SCENARIO_FLAGS):
        fn = click.option(f"--{name.replace('_', '-')}", name, type=typ, default=None, help=help_)(fn)
    return fn


def read_scenario_file(path: str):
    from knowledge.loader import read_yaml

    data = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("scenario"), dict):
        data = data["scenario"]  # a plan file: consult its scenario again
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path}: a scenario file must hold one mapping of scenario fields. "
                             f"Got {type(data).__name__} instead.")
    return data


def prompt_missing(raw: dict, kb) -> None:
    """Ask the suitability questions for missing fields, one by one (terminal only)."""
    from rules.scenario import DEFAULTS, ENUMS

    for q in kb.sections["questions"].values():
        if raw.get(q.field) not in (None, ""):
            continue
        if q.field == "task":
            choices = sorted(kb.tasks)
        else:
            choices = list(q.choices) or ENUMS.get(q.field, [])
        click.echo(click.style(q.text, bold=True) + (f"  ({q.help})" if q.help else ""), err=True)
        kwargs: dict = {"err": True}
        if choices:
            kwargs["type"] = click.Choice(choices)
            kwargs["default"] = DEFAULTS.get(q.field)
        elif q.field == "latency_ms":
            kwargs["default"] = "0"
        raw[q.field] = click.prompt(f"  {q.field}", **kwargs)


def build_scenario(ctx, kb, scenario_file, flags: dict, symptoms: tuple, interactive: bool) -> dict:
    from knowledge.loader import LineDict
    from rules.scenario import normalize
    from rules.symptoms import match_symptom

    raw = read_scenario_file(scenario_file) if scenario_file else LineDict()
    if not isinstance(raw, LineDict):
        raw = LineDict(raw)
    if not hasattr(raw, "lines"):
        raw.origin, raw.line, raw.lines = "the command line", 0, {}
    for key, value in flags.items():
        if value is not None:
            raw[key] = value
            raw.lines[key] = None
    flag_keys = {k for k, v in flags.items() if v is not None}
    if symptoms:
        raw["symptoms"] = [*(raw.get("symptoms") or []), *symptoms]
    if interactive:
        prompt_missing(raw, kb)

    def where(key):
        if key in flag_keys:
            return f"--{key.replace('_', '-')}"
        return None

    return normalize(raw, kb, origin=scenario_file or "the command line",
                     symptom_matcher=lambda text, w: match_symptom(text, kb, "--symptom" if text in symptoms else w),
                     field_where=where)


@main.command()
@click.option("--scenario", "scenario_file", type=str, metavar="FILE",
              help="Scenario file (YAML or JSON); flags override its fields.")
@scenario_options
@click.option("--symptom", "symptoms", multiple=True, metavar="ID_OR_TEXT",
              help="An observed symptom: an id (see `tlexpert symptoms`) or a short description. Repeatable.")
@format_option()
@click.option("--explain", is_flag=True, help="Also print the rule trace (how each conclusion was reached).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the plan (JSON, or YAML by extension).")
@click.option("--no-input", is_flag=True, help="Never prompt, even on a terminal.")
@click.pass_context
@handle_errors
def consult(ctx, scenario_file, symptoms, fmt, explain, output, no_input, **flags):
    """Answer the suitability questions and get a plan that explains itself."""
    from rules.engine import get_engine
    from rules.render import render_plan, render_trace

    kb = get_kb(ctx)
    interactive = not no_input and sys.stdin.isatty() and fmt == "text"
    scenario = build_scenario(ctx, kb, scenario_file, flags, symptoms, interactive)
    plan = get_engine(kb).consult(scenario)
    if output:
        out = Path(output)
        write_atomic(out, dump(plan, "yaml" if out.suffix in (".yaml", ".yml") else "json"))
    if fmt == "text":
        click.echo(render_plan(plan, kb))
        if explain:
            click.echo(render_trace(plan))
        if output:
            click.echo(f"\nPlan written to {output}")
    else:
        if explain:
            plan = {**plan, "explain": plan["trace"]}
        click.echo(dump(plan, fmt))


# --- catalog commands


def parse_count(text: Optional[str], name: str) -> Optional[int]:
    if text is None:
        return None
    t = text.strip().upper()
    mult = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if mult != 1 else t) * mult
    except ValueError:
        raise InputError(f"The '{name}' option must be a count such as 30M or 1.5B. Got {text!r} instead.") from None
    if value <= 0:
        raise InputError(f"The '{name}' option must be a positive count. Got {text!r} instead.")
    return int(value)


@main.command()
@click.option("--task", help="Only models for this task.")
@click.option("--family", help="Only this architecture family.")
@click.option("--max-params", help="Only models up to this size, e.g. 30M.")
@click.option("--offline", is_flag=True, help="Only models whose weights load without a network here.")
@format_option(choices=("text", "json", "yaml"))
@click.pass_context
@handle_errors
def models(ctx, task, family, max_params, offline, fmt):
    """The model catalog: size, speed, best uses, offline availability."""
    from knowledge.schema import choice_error
    from rules.selection import fmt_params

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
    if fmt != "text":
        click.echo(dump([{"id": m.id, "name": m.name, "family": m.family.value, "tasks": m.tasks,
                          "params": m.params, "speed": m.speed.value, "best_use": m.best_use,
                          "open_weights": m.open_weights, "offline": m.offline,
                          "sources": m.sources} for m in rows], fmt))
        return
    if not rows:
        click.echo("No model matches these filters.")
        return
    from rules.render import table

    click.echo(table(
        ["model", "family", "params", "speed", "offline", "tasks", "best use"],
        [[m.id, m.family.value, fmt_params(m.params), m.speed.value,
          "yes" if m.offline else ("API only" if not m.open_weights else "no"),
          ",".join(m.tasks), m.best_use] for m in rows]))


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

    def sources(info):
        out = []
        for b in info.basis:
            section, _, key = b.partition(":")
            if section == "sources":
                out.append(kb.sources[key].title)
            else:
                out.append(b)
        return out

    if fmt != "text":
        click.echo(dump([{"id": r.id, "topic": r.topic, "doc": r.doc, "salience": r.salience,
                          "basis": list(r.basis), "sources": sources(r)} for r in infos], fmt))
        return
    for r in infos:
        click.echo(click.style(r.id, bold=True) + f"  {r.doc}")
        if r.basis:
            click.echo("    rests on: " + "; ".join(sources(r)))


@main.command()
@format_option(choices=("text", "json", "yaml"))
@click.pass_context
@handle_errors
def symptoms(ctx, fmt):
    """Symptom ids (for --symptom) with what they indicate."""
    kb = get_kb(ctx)
    rows = list(kb.symptoms.values())
    if fmt != "text":
        click.echo(dump([{"id": s.id, "description": s.description, "indicates": s.indicates,
                          "measured_by": s.measured_by} for s in rows], fmt))
        return
    for s in rows:
        ind = ", ".join(f"{p} ({w:g})" for p, w in s.indicates.items())
        click.echo(click.style(s.id, bold=True) + f"  {s.description}  → {ind}")


if __name__ == "__main__":  # pragma: no cover
    main()
