"""tlexpert: a transfer-learning expert system with an evaluation harness.

One click group; each command parses, calls the engine or harness, renders.
Heavy libraries (torch, transformers, peft, pandas) are imported only inside
the commands that run models, so ``consult``, ``models``, ``rules`` and
``--help`` start fast.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Optional

import click

from harness.training.registry import REGISTRY
from knowledge.schema import KnowledgeError

FORMATS = ("text", "json", "yaml")


class InputError(click.ClickException):
    """Bad input: one line, exit status 2."""

    exit_code = 2


def handle_errors(fn):
    """Map domain errors to ``Error: ...`` with exit status 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not _stdout_open():
            raise InputError("standard output is closed: what this command prints would go nowhere; redirect "
                             "it to a file (> out.txt) or to /dev/null instead of closing it")
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a full disk or a failed device shows here, not after the exit status is set
            return result
        except KnowledgeError as exc:  # user text in the message is escaped, a huge one cut
            raise InputError(show(str(exc), 4000)) from None
        except MemoryError:
            raise InputError("out of memory: the input is larger than this machine can hold; give a smaller "
                             "file (or fewer rows), or run on a machine with more memory") from None
        except RecursionError:  # the class of inputs nested past any sensible depth, wherever they are read
            raise InputError("the input is nested too deeply to read (folders, JSON or YAML); give a flatter "
                             "file or name the files directly") from None
        except BrokenPipeError:  # stdout closed early (`tlexpert ... | head`): say so once, no traceback
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more reaches the pipe
            raise InputError("standard output was closed before the output was written") from None
        except UnicodeEncodeError as exc:
            raise InputError(f"the output cannot be written in this terminal's encoding "
                             f"({sys.stdout.encoding}): {exc.reason}; set PYTHONIOENCODING=utf-8") from None
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            with contextlib.suppress(OSError):  # nothing more is tried on a failed standard output
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            where = show(str(exc.filename)) if exc.filename else "standard output"
            raise InputError(f"writing {where} failed: {exc.strerror or exc}") from None

    return wrapper


# a write that failed for want of space or a working device: one Error line, never a traceback
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EBADF, errno.EROFS, errno.EFBIG}


def _stdout_open() -> bool:
    """False when the process was started with its standard output closed (``>&-``)."""
    if sys.stdout is None:
        return False
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return True  # not a file descriptor (captured output): open as far as anyone can tell
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def get_kb(ctx: click.Context):
    from knowledge.loader import extra_dirs, get_kb as load

    root = ctx.find_root()
    dirs = root.params.get("knowledge") or ()
    try:
        return load(extra_dirs(dirs))
    except KnowledgeError as exc:
        raise InputError(show(str(exc), 4000)) from None


# --- output helpers


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str)
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


from knowledge.reading import show  # noqa: E402
from knowledge.writing import check_named_file, check_output, write_atomic  # noqa: E402  (one writer, one output check)


def warn_implausible(scenario: dict) -> None:
    """Valid but inconsistent or implausible scenario values: one ``Warning:`` line each, on stderr."""
    from rules.scenario import scenario_warnings

    for w in scenario_warnings(scenario):
        click.echo(f"Warning: {show(w, 300)}", err=True)


class FiniteFloat(click.FloatRange):
    """A FloatRange that refuses nan and inf (click's range checks let nan through)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


def format_option(default="text", choices=FORMATS):
    return click.option("--format", "fmt", type=click.Choice(choices), default=default,
                        show_default=True, help="Output format.")


# --- the group


class Group(click.Group):
    """The command group, whose own output (--help, --version, usage errors) fails as cleanly as a
    command's: a full disk or a dead device on stdout or stderr is exit status 2, never a traceback."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            with contextlib.suppress(OSError):
                sys.stderr.write(f"Error: writing the output failed: {exc.strerror or exc}\n")
                sys.stderr.flush()
            os._exit(2)  # nothing more can be written: leave without the interpreter's own flush at exit


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


SCENARIO_FLAGS = [
    ("task", str, "Target task, e.g. text_classification (see `tlexpert models`)."),
    ("dataset_size", str, "Labeled target examples."),
    ("num_classes", str, "Number of target classes."),
    ("task_similarity", str, "Do source and target tasks match? same | related | different."),
    ("domain_similarity", str, "Are source and target data similar? high | medium | low."),
    ("compute", str, "cpu | consumer_gpu | datacenter_gpu | tpu."),
    ("gpu_memory_gb", str, "Accelerator memory in GiB."),
    ("deployment", str, "mobile | edge | server | batch."),
    ("latency_ms", str, "Latency budget per prediction in ms (0: none); per generated token for generation."),
    ("sequence_length", str, "Tokens per text input (e.g. 10 for search queries, 512 for documents); default "
                             "128, 512 for generation. Latency and training memory use it."),
    ("image_size", str, "Pixels per side of an image input (e.g. 1024 for small defects); default: each "
                        "model's usual input. Latency and training memory use it."),
    ("retain_source", str, "Must the adapted model keep its original abilities? yes | no | unknown."),
    ("device_class", str, "Deployment device: microcontroller | raspberry_pi_cpu | phone_cpu | phone_npu | "
                          "laptop_cpu | jetson_gpu | consumer_gpu | datacenter_gpu | tpu."),
    ("language", str, "Language of the text: english | multilingual | code | one language (e.g. german)."),
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
    """Ask the suitability questions for missing fields, one by one (terminal only).

    Only the questions whose answer can still change the plan are asked (their
    ``when``). Each answer is checked at once by the scenario's own validator, so
    the prompt takes exactly the spellings the flags take, and asked again when
    invalid. Enter keeps the default, which the plan then lists as assumed. On
    Ctrl-C or end of input the answers given so far are printed as flags."""
    from rules.scenario import DEFAULTS, ENUMS, check_field, question_applies

    answered: dict = {}

    def as_flags() -> str:
        return " ".join(f"--{k.replace('_', '-')} {_shell_word(v)}" for k, v in answered.items())

    try:
        for q in kb.sections["questions"].values():
            if raw.get(q.field) not in (None, "") or not question_applies(q, raw, kb):
                continue
            choices = sorted(kb.tasks) if q.field == "task" else (list(q.choices) or ENUMS.get(q.field, []))
            default = DEFAULTS.get(q.field)
            if q.field == "latency_ms":
                default = "0"
            click.echo(click.style(q.text, bold=True) + (f"  ({q.help})" if q.help else ""), err=True)
            label = f"  {q.field}" + (f" ({', '.join(choices)})" if choices else "")

            def check(text, q=q):
                text = str(text).strip()
                if text == "" and default is not None:
                    return ""
                try:
                    value = check_field(q.field, text, kb, "your answer", task=raw.get("task"))
                except KnowledgeError as exc:
                    raise click.UsageError(str(exc)) from None
                return text if value is None else value

            value = click.prompt(label, default="" if default is not None else None,
                                 show_default=False, value_proc=check, err=True,
                                 **({"prompt_suffix": f" [{default}]: "} if default is not None else {}))
            if value != "":
                raw[q.field] = answered[q.field] = value
    except click.Abort:
        if answered:
            click.echo(f"\nAnswers so far (give them as flags to start from here): {as_flags()}", err=True)
        raise
    if answered:
        click.echo(f"(the same without questions: tlexpert consult {as_flags()})", err=True)


def _shell_word(value) -> str:
    import shlex

    return shlex.quote(str(value))


def build_scenario(ctx, kb, scenario_file, flags: dict, symptoms: tuple, interactive: bool,
                   readings: Optional[list] = None) -> dict:
    """The normalized scenario; how each free-text symptom was read is appended to ``readings``."""
    from knowledge.loader import LineDict
    from rules.scenario import normalize

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
        given = raw.get("symptoms") or []
        raw["symptoms"] = [*([given] if isinstance(given, str) else given), *symptoms]
    if interactive:
        prompt_missing(raw, kb)

    def where(key):
        if key in flag_keys:
            return f"--{key.replace('_', '-')}"
        return None

    def matcher(text, w):  # the symptom reader loads only when there is a description to read
        from rules.reader.symptoms import match_symptoms

        return match_symptoms(text, kb, "--symptom" if text in symptoms else w, readings)

    return normalize(raw, kb, origin=scenario_file or "the command line", symptom_matcher=matcher,
                     field_where=where)


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
    if interactive and plan["clarify"]:
        scenario = ask_to_clarify(plan, scenario, readings, kb)
        plan = get_engine(kb).consult(scenario, readings=readings)
    if data is not None:
        names = split_candidates(rank_candidates) or [c["model"] for c in plan["candidates"]]
        rejected = {r["model"]: r["reasons"] for r in plan["rejected"]}
        opts = {"layer": "auto", "technique": plan["technique"]["choice"],
                "estimators": "logme,hscore,knn,linear_probe", "max_examples": None,
                "seed": 0, "max_length": 128, "device": "auto", "jobs": 1, "scheduler": None, "no_cache": False}
        ranking = do_rank(ctx, kb, data, names, rejected, opts, quiet=fmt != "text" or not sys.stderr.isatty())
        plan = get_engine(kb).consult(scenario, readings=readings, ranking=ranking)
    if output:
        out = Path(output)
        write_atomic(out, dump(plan, "yaml" if out.suffix in (".yaml", ".yml") else "json"))
        # the plan went to the file: stdout gets one line (and the trace when asked for)
        if explain:
            from rules.lint import lint
            from harness.reporting.render import render_violations

            click.echo(render_trace(plan))
            click.echo(render_violations(lint(plan, kb)))
        if fmt == "text":
            click.echo(plan_summary(plan, output))
        else:  # stdout stays machine-readable: the summary as one JSON object
            click.echo(json.dumps({"written": str(output), "technique": (plan.get("technique") or {}).get("choice"),
                                   "model": (plan.get("model") or {}).get("id"),
                                   "diagnoses": [d["pitfall"] for d in plan.get("diagnoses") or []]}))
        return
    if fmt == "text":
        click.echo(render_plan(plan, kb))
        if explain:
            from rules.lint import lint
            from harness.reporting.render import render_violations

            click.echo(render_trace(plan))
            click.echo(render_violations(lint(plan, kb)))
    else:
        if explain:
            from rules.lint import lint

            plan = {**plan, "explain": plan["trace"], "violations": lint(plan, kb)}
        click.echo(dump(plan, fmt))


def plan_summary(plan: dict, output: str) -> str:
    """One line for a plan written to a file: what it decided, and where it is."""
    tech = (plan.get("technique") or {}).get("choice") or "-"
    model = (plan.get("model") or {}).get("id") or "-"
    n_diag = len(plan.get("diagnoses") or [])
    tt = (plan.get("training_time") or {}).get("seconds_max")
    return (f"Plan written to {output}: {tech.replace('_', ' ')} of {model} for "
            f"{str(plan.get('scenario', {}).get('task', '-')).replace('_', ' ')}"
            + (f", {n_diag} diagnos{'is' if n_diag == 1 else 'es'}" if n_diag else "")
            + (f", training at most ~{tt / 60:.0f} min" if tt else "")
            + " (the whole plan: tlexpert consult without -o, or read the file)")


def on_terminal() -> bool:
    return sys.stdin.isatty()


def ask_to_clarify(plan: dict, scenario: dict, readings: list, kb) -> dict:
    """Ask each question of ``plan["clarify"]`` on the terminal; the answer's symptoms replace
    the candidates (readings are updated in place). Returns the revised scenario."""
    from rules.reader.symptoms import Match

    symptoms = list(scenario["symptoms"])
    for c in plan["clarify"]:
        names = " or ".join(x["pitfall"].replace("_", " ") for x in c["candidates"])
        click.echo(click.style(f"{c['text']!r} fits {names}. {c['question']}", bold=True), err=True)
        for k, a in enumerate(c["answers"], 1):
            click.echo(f"  {k}. {a['answer']}", err=True)
        k = click.prompt("  answer", type=click.IntRange(1, len(c["answers"])), err=True)
        chosen = c["answers"][k - 1]["symptoms"]
        dropped = {x["symptom"] for x in c["candidates"]} - set(chosen)
        symptoms = [s for s in symptoms if s not in dropped] + [s for s in chosen if s not in symptoms]
        for r in readings:
            if r.text != c["text"]:
                continue
            r.ambiguous = [a for a in r.ambiguous if a["distinction"] != c["distinction"]]
            r.matches = [m for m in r.matches if m.symptom not in dropped]
            for sid in chosen:
                if all(m.symptom != sid for m in r.matches):
                    pit = max(kb.symptoms[sid].indicates.items(), key=lambda kv: kv[1])[0]
                    r.matches.append(Match(sid, pit, 1.0, "answer", c["answers"][k - 1]["answer"]))
    return {**scenario, "symptoms": symptoms}

@main.command("plan-schema")
@handle_errors
def plan_schema():
    """Print the JSON Schema of a plan file (the contract `run` executes)."""
    from rules.contract import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


# --- catalog commands


def parse_count(text: Optional[str], name: str) -> Optional[int]:
    if text is None:
        return None
    t = text.strip().upper()
    mult = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if mult != 1 else t) * mult
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise InputError(f"The '{name}' option must be a count such as 30M or 1.5B. Got {text!r} instead.")
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
    """The model catalog: size, speed, best uses, offline availability.

    offline: "yes" loads with no network; "--weights" is built here (torchvision/timm) from a
    local weights file given to `run --weights`; "no" needs a local model folder."""
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
                          "params": m.params, "gflops": m.gflops, "per": m.per, "speed": m.speed.value,
                          "licence": m.licence, "languages": m.languages, "context_length": m.context_length or None,
                          "quality": {t: {"metric": q.metric, "value": q.value, "source": q.source, "date": q.date,
                                          "reported": q.reported} for t, q in m.quality.items()},
                          "cite": m.cite, "reported": m.reported, "best_use": m.best_use,
                          "open_weights": m.open_weights, "offline": m.offline, "builder": m.builder or None,
                          "sources": m.sources} for m in rows], fmt))
        return
    if not rows:
        click.echo("No model matches these filters.")
        return
    from harness.reporting.render import table

    def size(m):
        return fmt_params(m.params) + ("*" if "params" in m.reported else "")

    click.echo(table(
        ["model", "family", "params", "GFLOPs", "speed", "licence", "languages", "offline", "tasks", "sources"],
        [[m.id, m.family.value, size(m), f"{m.gflops:g}/{ {'token': 'tok', 'clip': 'clip'}.get(m.per, 'img')}", m.speed.value,
          (m.licence or "-").split(" (")[0], ",".join(m.languages) or "-",
          "yes" if m.offline else ("API only" if not m.open_weights else
                                   ("--weights" if m.builder else "no")),
          ",".join(m.tasks), ",".join(m.sources)] for m in rows], max_width=48))
    ref = kb.threshold("speed_reference_device")
    click.echo(f"\nspeed: estimated latency per input on a {kb.devices[ref].name} (GFLOPs per image, or per "
               f"token for text). * a reported estimate, not an official figure. Sources: `tlexpert models "
               f"--format yaml` (every number cites one).")


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
                          "aliases": list(s.aliases), "measured_by": s.measured_by} for s in rows], fmt))
        return
    for s in rows:
        ind = ", ".join(f"{p} ({w:g})" for p, w in s.indicates.items())
        click.echo(click.style(s.id, bold=True) + f"  {s.description}  → {ind}")


# --- diagnose


class BaselineCommand(click.Command):
    """``--baseline A B C`` takes every value up to the next option (a shell glob expands to
    several), as well as ``--baseline A --baseline B``."""

    def parse_args(self, ctx, args):
        out, i = [], 0
        while i < len(args):
            a = args[i]
            if a == "--":
                out += args[i:]
                break
            if a == "--baseline":
                j = i + 1
                vals = []
                while j < len(args) and not (args[j].startswith("-") and len(args[j]) > 1):
                    vals.append(args[j])
                    j += 1
                if not vals:
                    out.append(a)  # click reports the missing value
                for v in vals:
                    out += ["--baseline", v]
                i = j
                continue
            out.append(a)
            i += 1
        return super().parse_args(ctx, out)


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
    from harness.scaleout.batch import (OUTPUT_SUFFIXES, Journal, output_lock, read_scenarios, run_batch,
                                        scenario_files, write_table)
    from rules import conformance

    get_kb(ctx)  # a broken --knowledge folder is reported once, before any worker starts
    out = Path(output) if output else None
    if output:
        check_output(output, "-o", inputs=files)
    if out is not None and out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"The output file {output} must end in {', '.join(OUTPUT_SUFFIXES)}. "
                         f"Got {out.suffix or 'no extension'!r} instead.")
    if resume and out is None:
        raise InputError("--resume needs -o: the finished rows are kept beside the output file.")
    if scheduler is not None:
        from harness.scaleout.batch import check_scheduler

        check_scheduler(scheduler)
    files = scenario_files(files)  # a folder stands for the scenario files in it
    items, file_errors = [], []
    for f in files:
        try:
            items.extend(read_scenarios(f))
        except KnowledgeError as exc:  # the whole file is unreadable: one error row for it
            items.append((f, 0, exc))
            file_errors.append(str(exc))
    from knowledge.loader import _disk_key, extra_dirs

    dirs = tuple(str(p) for p in extra_dirs(ctx.find_root().params.get("knowledge") or ()))
    lock = output_lock(out)
    if lock is not None:
        ctx.call_on_close(lock.close)  # released however the command ends
    journal = Journal(out, conformance.COLUMNS)
    knowledge = _disk_key(list(dirs)) or ""
    journal.keys = {(f, r): Journal.content_key(s, knowledge) for f, r, s in items}
    done = journal.done() if resume else {}
    if not resume:
        journal.close(remove=True)
    valid = journal.still_valid(done, items)
    done = {k: v for k, v in done.items() if k in valid}
    todo = [it for it in items if (it[0], it[1]) not in done]
    quiet = fmt == "json" or not sys.stderr.isatty()
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="scenarios", unit="sc",
                   file=sys.stderr, leave=False)
    try:
        new_rows = run_batch(todo, conformance.consult_chunk, jobs=jobs, scheduler=scheduler, chunk_size=chunk_size,
                             knowledge_dirs=dirs, journal=journal if out else None, bar=bar)
    except OSError as exc:
        raise InputError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from None
    finally:
        if bar is not None:
            bar.close()
    fresh = {(r["file"], r["row"]): r for r in new_rows}
    rows = [fresh.get((f, r)) or {k: v for k, v in done[(f, r)].items() if k != "_key"} for f, r, _ in items]
    summary = conformance.summarize(rows)
    if out is not None:
        write_table(rows, out, conformance.COLUMNS)
        journal.close(remove=True)
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


def split_candidates(values: tuple) -> list[str]:
    """--candidates A,B --candidates C -> [A, B, C] (order kept, duplicates dropped)."""
    out = [c.strip() for v in values for c in v.split(",")]
    return list(dict.fromkeys(c for c in out if c))


def load_rank_data(path: str, text_column: str, label_column: str, flag: str = "--data"):
    """The labeled texts to rank on; a single class is one Error: line."""
    from harness.training.data import load_text
    from harness.ranking.rank import class_warnings

    data = load_text(path, text_column, label_column)
    class_warnings(data.labels, 1)  # raises for a single class
    return data


def fill_from_data(flags: dict, scenario_file: Optional[str], data) -> dict:
    """dataset_size and num_classes from the data where neither a flag nor the scenario file gives them."""
    given = read_scenario_file(scenario_file) if scenario_file else {}
    flags = dict(flags)
    for key, value in (("dataset_size", len(data)), ("num_classes", len(data.classes))):
        if flags.get(key) is None and given.get(key) in (None, ""):
            flags[key] = str(value)
    if flags.get("task") is None and given.get("task") in (None, ""):
        flags["task"] = "text_classification"
    return flags


def rank_scenario(ctx, kb, scenario_file, flags: dict, data) -> dict:
    """The scenario for a ranking: the file and flags, with size and classes from the data."""
    return build_scenario(ctx, kb, scenario_file, fill_from_data(flags, scenario_file, data), (), False)


class Duration(click.ParamType):
    """A wall time: seconds, or a number with s, m or h (90, 90s, 10m, 1.5h)."""

    name = "duration"
    UNITS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    MAX_SECONDS = 30 * 86400

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        m = re.fullmatch(r"\s*(\d{1,12}(?:\.\d{1,12})?)\s*(s|sec|m|min|h)?\s*", str(value).lower())
        seconds = float(m.group(1)) * self.UNITS[m.group(2) or ""] if m else 0.0
        if not 0 < seconds <= self.MAX_SECONDS:
            self.fail(f"expected a positive wall time such as 90s, 10m or 1.5h (at most 30 days). Got "
                      f"{show(str(value), 40)} instead.", param, ctx)
        return seconds


def rank_options(fn):
    opts = [
        click.option("--text-column", default="text", show_default=True),
        click.option("--label-column", default="label", show_default=True),
        click.option("--layer", type=click.Choice(["auto", "last", "mean", "best"]), default="auto", show_default=True,
                     help="Features scored: the last layer, the mean of all layers, or each estimator's "
                          "best layer. auto: the last layer when the plan's technique is feature extraction "
                          "(measured to order candidates as training them does), else the mean of layers "
                          "(see BENCHMARKS.md)."),
        click.option("--estimators", default="logme,hscore,knn,linear_probe", show_default=True,
                     help="Comma-separated estimators: logme, hscore, knn, linear_probe."),
        click.option("--max-examples", type=click.IntRange(4, 1000000),
                     help="Score at most this many examples (stratified sample; default from the "
                          "knowledge base's rank_max_examples)."),
        click.option("--max-length", type=click.IntRange(8, 4096), default=128, show_default=True),
        click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                     help="Seed of the sample and of the probe's folds."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
                     help="Candidates scored in parallel on local processes."),
        click.option("--budget", type=Duration(), metavar="TIME",
                     help="Wall-time budget for scoring (90s, 10m, 1.5h): fewer examples where the "
                          "knowledge base's measured scoring rate calls for it, and candidates that would "
                          "overrun it are skipped, each saying why."),
        click.option("--scheduler", metavar="ADDRESS", help="Score on an existing Dask cluster (tcp://host:port)."),
        click.option("--no-cache", is_flag=True,
                     help="Recompute embeddings and scores instead of reusing finished ones."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


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
    out = Path(output) if output else None
    if out is not None and out.suffix.lower() not in (".json", ".csv", ".md"):
        raise InputError(f"The output file {output} must end in .json, .csv or .md. "
                         f"Got {out.suffix or 'no extension'!r} instead.")
    for option, path in (("-o", output), ("--plot", plot)):
        if path:  # before any candidate is scored: never replace an input
            check_output(path, option, inputs=[data_file, scenario_file])
    if plot and Path(plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"The plot file {plot} must end in .png, .svg or .pdf. "
                         f"Got {Path(plot).suffix or 'no extension'!r} instead.")
    candidates = split_candidates(candidate_opts)
    if not candidates:
        raise InputError("The '--candidates' option must name at least one model. Got an empty list instead.")
    data = load_rank_data(data_file, opts["text_column"], opts["label_column"])
    scenario = rank_scenario(ctx, kb, scenario_file, flags, data)
    engine = get_engine(kb)
    plan = engine.consult(scenario, trace=False)
    rejected = {r["model"]: r["reasons"] for r in plan["rejected"]}
    for c in plan["candidates"]:
        if not c["meets_constraints"]:
            rejected.setdefault(c["model"], []).append("misses a constraint of the scenario "
                                                       "(no catalog model meets them all)")
    quiet = fmt != "text" or not sys.stderr.isatty()
    opts["technique"] = plan["technique"]["choice"]
    result = do_rank(ctx, kb, data, candidates, rejected, opts, quiet)
    if not any(r["status"] == "ok" for r in result["rows"]):
        raise InputError("no candidate could be scored: " + "; ".join(
            f"{r['candidate']}: {r['error']}" for r in result["rows"]))
    verdict = engine.consult(scenario, trace=False, ranking=result).get("empirical_ranking")
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


DEMO_SCENARIO = {
    "name": "customer reviews (course case study)",
    "task": "text_classification", "dataset_size": 1500, "num_classes": 3,
    "task_similarity": "related", "domain_similarity": "low", "compute": "cpu",
    "deployment": "server", "source_domain": ["wikipedia", "news"],
    "target_domain": ["customer reviews", "informal", "emoji"],
}


def is_plan_file(data) -> bool:
    return isinstance(data, dict) and "schema_version" in data and "scenario" in data


def load_plan_or_scenario(ctx, kb, path: str, reconsult: bool = False):
    """The plan ``path`` holds, as written (a scenario file is consulted first).

    A plan file runs exactly as written; when consulting its scenario with the current knowledge
    gives a different plan, the differing lines are printed (``reconsult=True`` takes the new one)."""
    from knowledge.loader import read_yaml
    from rules.contract import Plan, differences
    from rules.engine import get_engine

    data = read_yaml(path)
    if not is_plan_file(data):
        return Plan.from_dict(get_engine(kb).consult(build_scenario(ctx, kb, path, {}, (), False)), path, kb)
    if reconsult:
        scenario = build_scenario(ctx, kb, path, {}, (), False)
        return Plan.from_dict(get_engine(kb).consult(scenario), path, kb)
    plan = Plan.from_dict(_plain(data), path, kb)
    scenario = build_scenario(ctx, kb, path, {}, (), False)
    fresh = Plan.from_dict(get_engine(kb).consult(scenario), path, kb)
    diff = differences(plan, fresh)
    if diff:
        click.echo(f"{path}: the current knowledge base gives this scenario a different plan; running the "
                   f"file as written (--reconsult runs the new one). Differences (file → now):", err=True)
        for d in diff[:12]:
            click.echo(f"  {d['field']}: {d['file']!r} → {d['now']!r}", err=True)
        if len(diff) > 12:
            click.echo(f"  ... and {len(diff) - 12} more", err=True)
    return plan


def _plain(v):
    """A YAML/JSON tree as plain dicts and lists (the loader's line-tracking types dropped)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def run_options(fn):
    opts = [
        click.option("--train", type=str, metavar="PATH",
                     help="Training data: CSV or JSONL text; an image folder or .npz arrays for image tasks."),
        click.option("--validation", type=str, metavar="FILE", help="Validation data (else split from --train)."),
        click.option("--test", type=str, metavar="FILE", help="Test data (else split from --train)."),
        click.option("--text-column", default="text", show_default=True),
        click.option("--label-column", default="label", show_default=True),
        click.option("--model", metavar="NAME_OR_PATH",
                     help="Text: a catalog name or a local Hugging Face folder (default all-MiniLM-L6-v2). "
                          "Images: the built-in small CNN (default), torchvision:<arch>, timm:<arch>, a catalog "
                          "name such as resnet-18, a local timm folder, or a weights file for the small CNN."),
        click.option("--weights", type=str, metavar="FILE",
                     help="Local weights for a torchvision/timm backbone: safetensors, or a state dict "
                          "(read with torch.load(weights_only=True)). With no --model, the plan's model."),
        click.option("--image-size", type=click.IntRange(8, 1024), metavar="PIXELS",
                     help="Input size for a backbone (default: its weights' own, e.g. 224)."),
        click.option("--technique", "techniques", multiple=True,
                     type=click.Choice(list(REGISTRY)),
                     help="Technique(s) to run (default: the plan's), each with its own recipe from the plan. "
                          "Repeatable."),
        click.option("--seeds", type=click.IntRange(1, 100), help="Override the plan's evaluation.seeds."),
        click.option("--out", type=str, metavar="DIR", help="Run directory (default runs/<timestamp>-<name>)."),
        click.option("--force", is_flag=True, help="Write into an --out folder that already holds a run's results."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--retention-data", type=str, metavar="FILE",
                     help="A second labeled task for the forgetting probe (linear probe before/after): "
                          "CSV/JSONL text, or for images a folder or .npz (overrides the plan's "
                          "evaluation.retention_data). For a causal-LM plan: general text (.txt) or "
                          "instructions (.jsonl), several comma-separated."),
        click.option("--intermediate-data", type=str, metavar="FILE",
                     help="Labeled informal text for an intermediate fine-tuning stage (when the plan asks)."),
        click.option("--unlabeled-data", type=str, metavar="FILE",
                     help="Extra in-domain text for a masked-LM stage (when the plan asks)."),
        click.option("--head", type=click.Choice(["linear", "mlp"]),
                     help="Feature-extraction head: linear, or an MLP with one hidden layer of 256."),
        click.option("--epochs", type=click.IntRange(1, 1000), help="Override the plan's epochs."),
        click.option("--learning-rate", type=FiniteFloat(0, 10, min_open=True), help="Override the learning rate."),
        click.option("--batch-size", type=click.IntRange(1, 4096), help="Override the batch size."),
        click.option("--max-length", type=click.IntRange(8, 4096), default=128, show_default=True),
        click.option("--replay-ratio", type=FiniteFloat(0, 4), metavar="R",
                     help="A causal-LM plan: mix R general examples per training example into training "
                          "(rehearsal), drawn from the --retention-data items the forgetting test does not "
                          "measure. Overrides the plan's replay_ratio."),
        click.option("--packing/--no-packing", default=None,
                     help="A causal-LM plan: concatenate training examples into blocks of --max-length tokens "
                          "instead of truncating each one (overrides the plan's packing)."),
        click.option("--prompt-loss/--no-prompt-loss", default=None,
                     help="A causal-LM plan: count the prompt's tokens in the loss too (overrides the plan's "
                          "prompt_loss; default: the response only)."),
        click.option("--alpha", type=FiniteFloat(0, 1, min_open=True, max_open=True),
                     help="Override the plan's evaluation.alpha (significance level of every test)."),
        click.option("--no-cache", is_flag=True, help="Recompute embeddings instead of using the cache."),
        format_option(choices=("text", "json")),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


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
        max_length=opts["max_length"], alpha=opts.get("alpha"), use_cache=not opts["no_cache"],
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
    refuse_unrunnable(kb, plan, opts.get("techniques"), plan_or_scenario)
    if not opts.get("retention_data"):  # a file named by the plan file, not on the command line
        check_named_file(plan.evaluation.retention_data, "evaluation.retention_data", plan_or_scenario,
                         "--retention-data")
    name = Path(plan_or_scenario).stem
    _run(ctx, plan, name, opts)


def refuse_unrunnable(kb, plan, techniques, where: str) -> None:
    """`run` carries out classification plans with techniques this install can run; say so otherwise
    (the task first: a plan for another task is advice whatever its technique)."""
    reasons = []
    task = plan.scenario.get("task")
    entry = kb.tasks.get(task)
    if entry is not None and not entry.harness:
        runnable = ", ".join(t for t, e in kb.tasks.items() if e.harness)
        reasons.append(f"`tlexpert run` carries out plans for {runnable} only; this plan's task is "
                       f"{task}. Use the plan as advice, or train with your own trainer")
    for tech in dict.fromkeys([*(techniques or []), plan.technique_id]):
        t = kb.techniques.get(tech) if tech else None
        spec = REGISTRY.get(tech)
        if spec is not None and task in spec.tasks:
            continue  # the registry runs it for this task (what the machine lacks, if anything, is said at run time)
        if t is not None and not t.harness:
            tasks = f" (here: for {', '.join(spec.tasks)} plans, on a CUDA GPU with bitsandbytes)" if spec else ""
            reasons.append(f"the technique {t.name} is not carried out for this plan's task{tasks}. Train it with "
                           f"peft + bitsandbytes (the plan's 'lora' and 'quantization' lines are the "
                           f"configuration), or run a plan for a GPU with more memory (LoRA)")
    if reasons:
        raise InputError(f"{where}: " + "; and ".join(reasons) + ".")



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
    from rules.contract import Plan

    plan = Plan.from_dict(get_engine(kb).consult(normalize({**DEMO_SCENARIO, "dataset_size": size}, kb)),
                          "the demo's plan", kb)
    if fmt == "text":
        click.echo(f"Plan: {plan.technique['name']} ({plan.technique['why']['text']}); "
                   f"comparing feature extraction, fine-tuning and LoRA, each with its own recipe, over "
                   f"{seeds} seeds.", err=True)
    from harness.training.registry import REGISTRY

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
