"""The consultation's questions: the scenario from a file, flags and answers on the terminal (only
the questions whose answer can still change the plan), and the questions that tell two close
pitfalls apart."""

from __future__ import annotations

from typing import Optional

import click

from knowledge.schema import KnowledgeError


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


def plan_summary(plan, output: str) -> str:
    """One line for a plan written to a file: what it decided, and where it is."""
    model = plan.model.id if plan.model else "-"
    n_diag = len(plan.diagnoses)
    tt = (plan.training_time or {}).get("seconds_max")
    return (f"Plan written to {output}: {plan.technique_id.replace('_', ' ')} of {model} for "
            f"{str(plan.scenario.get('task', '-')).replace('_', ' ')}"
            + (f", {n_diag} diagnos{'is' if n_diag == 1 else 'es'}" if n_diag else "")
            + (f", training at most ~{tt / 60:.0f} min" if tt else "")
            + " (the whole plan: tlexpert consult without -o, or read the file)")


def ask_to_clarify(plan, scenario: dict, readings: list, kb) -> dict:
    """Ask each question of ``plan.clarify`` on the terminal; the answer's symptoms replace
    the candidates (readings are updated in place). Returns the revised scenario."""
    from rules.reader.symptoms import Match

    symptoms = list(scenario["symptoms"])
    for c in plan.clarify:
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
