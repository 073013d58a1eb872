"""The plan's expected training time, from throughput measured and recorded in knowledge/throughput.yaml.

Split as ``tlexpert run`` splits one labeled file: 20% test, then 20% of the rest
for validation (so 64% of ``dataset_size`` trains). A technique that trains runs
up to ``epochs`` epochs per seed at its measured training rate (validation pass
included); feature extraction embeds every example once and fits its probe per
seed (seconds). A model other than the one measured is scaled by its parameter
count (a transformer's compute per token grows with its parameters). Early
stopping makes the epoch count a ceiling: the estimate is an upper bound.
"""

from __future__ import annotations

from typing import Optional


def _split(kb, scenario: dict, n: float) -> tuple:
    """(training, validation, test) examples as the plan's protocol holds them out and the run splits them."""
    from knowledge.estimates import holdout_counts
    from rules.evaluation import holdout

    return holdout_counts(n, *holdout(kb, kb.tasks[scenario["task"]], n))


def _rate(kb, compute: str, technique: str, task: Optional[str] = None):
    """The measured throughput for this compute and technique: the task's own entries where it has
    any (a causal LM costs per example what a classifier costs per hundred), else the general ones."""
    entries = list(kb.sections["throughput"].values())
    own = task is not None and any(getattr(t, "task", None) == task for t in entries)
    for t in entries:
        if t.compute.value == compute and t.technique == technique and getattr(t, "task", None) == (task if own else None):
            return t
    return None


def _fmt(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def training_time(kb, scenario: dict, technique: str, hyper: dict, model: Optional[str], seeds: int) -> dict:
    """``{"seconds_max", "seconds_per_seed", "epochs_max", "seeds", "model", "compute", "text", "why"}``;
    ``seconds_max`` is None (and ``text`` says why) when the knowledge base holds no measured
    throughput for this compute, technique or model."""
    compute = scenario.get("compute") or "cpu"
    n = scenario.get("dataset_size")
    known = sorted({t.compute.value for t in kb.sections["throughput"].values()})
    base = {"seconds_max": None, "seconds_per_seed": None, "epochs_max": None, "seeds": seeds,
            "model": model, "compute": compute}

    def none(reason: str, knowledge=()) -> dict:
        return {**base, "text": reason,
                "why": {"rule": "plan.training_time", "knowledge": list(knowledge), "text": reason}}

    if not n:
        return none("no estimate: the scenario gives no dataset_size")
    task = scenario.get("task")
    own = _rate(kb, compute, technique, task)
    if own is not None and getattr(own, "task", None) == task and task is not None:
        return _task_time(kb, base, own, scenario, hyper, model, seeds, n)
    emb = _rate(kb, compute, "embedding")
    train = _rate(kb, compute, technique) if kb.techniques[technique].trains_backbone else emb
    if emb is None or train is None:
        if compute not in known:
            return none(f"no estimate for {compute}: throughput is measured for {', '.join(known) or 'no compute'} "
                        f"only (estimates are CPU-only)")
        return none(f"no estimate: no measured throughput for {technique} on {compute}")
    if model not in kb.models:
        return none(f"no estimate: model {model!r} is not in the catalog (its size is unknown)")
    scale = kb.models[model].params / kb.models[train.model].params
    n_train, n_val, n_test = _split(kb, scenario, n)
    ids = [f"throughput:{emb.id}"] + ([f"throughput:{train.id}"] if train is not emb else [])
    if train is emb:  # feature extraction: one embedding pass over everything; the probes take seconds
        epochs = 0
        once = n / emb.examples_per_second * scale
        per_seed = 0.0
        total = once
        how = (f"one embedding pass over {n:,} examples at {emb.examples_per_second:.0f}/s"
               f"{f' scaled x{scale:.1f} for {model}' if abs(scale - 1) > 0.05 else ''}")
    else:
        epochs = int(hyper.get("epochs") or 1)
        per_epoch = n_train / train.examples_per_second * scale
        per_seed = epochs * per_epoch + n_test / emb.examples_per_second * scale
        once = n / emb.examples_per_second * scale  # the probes' embedding pass
        total = seeds * per_seed + once
        how = (f"{seeds} seeds x up to {epochs} epochs of {n_train:,.0f} training examples at "
               f"{train.examples_per_second:.0f}/s (validation pass included)"
               f"{f', scaled x{scale:.1f} for {model} ({kb.models[model].params / 1e6:.0f}M parameters)' if abs(scale - 1) > 0.05 else ''}")
    text = (f"at most about {_fmt(total)} on {compute} ({how}; measured on {train.model}, {train.measured}); "
            + ("early stopping usually ends sooner" if epochs else "the probe fits take seconds"))
    return {**base, "seconds_max": round(total), "seconds_per_seed": round(per_seed), "epochs_max": epochs,
            "text": text, "why": {"rule": "plan.training_time", "knowledge": ids + [f"models:{model}"],
                                  "text": "expected time from the throughput measured and recorded in the "
                                          "knowledge base, for this data size, compute and model"}}


def _task_time(kb, base: dict, rate, scenario: dict, hyper: dict, model: Optional[str], seeds: int, n: int) -> dict:
    """A task measured on its own (a causal LM): epochs x training examples at the measured rate per
    seed (its validation passes included), no embedding pass."""
    if model not in kb.models:
        reason = f"no estimate: model {model!r} is not in the catalog (its size is unknown)"
        return {**base, "text": reason, "why": {"rule": "plan.training_time", "knowledge": [], "text": reason}}
    scale = kb.models[model].params / kb.models[rate.model].params
    n_train = _split(kb, scenario, n)[0]
    epochs = int(hyper.get("epochs") or 1)
    per_seed = epochs * n_train / rate.examples_per_second * scale
    total = seeds * per_seed
    how = (f"{seeds} seeds x up to {epochs} epochs of {n_train:,.0f} training examples at "
           f"{rate.examples_per_second:g}/s for {scenario.get('task')} (validation pass included)"
           f"{f', scaled x{scale:.1f} for {model} ({kb.models[model].params / 1e6:.0f}M parameters)' if abs(scale - 1) > 0.05 else ''}")
    text = (f"at most about {_fmt(total)} on {base['compute']} ({how}; measured on {rate.model}, {rate.measured}); "
            f"early stopping usually ends sooner")
    return {**base, "seconds_max": round(total), "seconds_per_seed": round(per_seed), "epochs_max": epochs,
            "text": text, "why": {"rule": "plan.training_time", "knowledge": [f"throughput:{rate.id}", f"models:{model}"],
                                  "text": "expected time from the throughput measured and recorded in the "
                                          "knowledge base, for this task, data size, compute and model"}}
