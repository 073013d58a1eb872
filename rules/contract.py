"""The Plan contract: typed, versioned, validated (``schema_version`` 2).

A plan is what ``tlexpert consult`` writes and what ``tlexpert run`` executes.
Everything the harness needs is a field here, resolved once by the rules from
the knowledge base: the model to load, the technique, the data-size class,
every hyperparameter of that technique (and a recipe for each other core
technique, for comparisons and fixes that switch technique), and the
evaluation protocol (seeds, alpha, probes, retention data).

    plan = Plan.from_dict(data, "plan.json")   # PlanError naming the field path
    data = plan.to_dict()                      # the JSON form (consult --format json)
    rules.plan_schema.json_schema()            # the JSON Schema of the file

The explanation blocks (``why``, candidates, risks, diagnoses, trace) are kept
as the plain JSON the rules wrote: people read them, the harness does not.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from knowledge.schema import KnowledgeError, nearest
from knowledge.validate import number as _num

SCHEMA_VERSION = 2
SIZE_CLASSES = ("small", "medium", "large", "huge")
PROBES = ("domain_shift", "negative_transfer", "forgetting")
APPROACHES = ("transfer", "full_training")


class PlanError(KnowledgeError):
    """A plan file, or a field of it, is not a valid plan."""


# --- field checks: (test, what was expected)


def _one_of(*choices):
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)


def _frozen():
    return ((lambda v: v == "all" or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)),
            "a whole number of layers (0: none) or 'all'")


def _str_list():
    return ((lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)), "a list of strings")


def _opt(check):
    test, expected = check
    return (lambda v: v is None or test(v)), expected + " or null"


def _f(check, default=dataclasses.MISSING, doc=""):
    kw = {"metadata": {"check": check, "doc": doc}}
    if isinstance(default, (list, dict)):
        kw["default_factory"] = lambda d=default: copy.deepcopy(d)
    elif default is not dataclasses.MISSING:
        kw["default"] = default
    return field(**kw)


# --- the typed blocks


@dataclass(frozen=True)
class LoraSettings:
    rank: int = _f(_num(1, 4096, integer=True), doc="rank r of the update matrices")
    alpha: float = _f(_num(0, lo_open=True), doc="scaling numerator (updates are scaled by alpha/r)")
    dropout: float = _f(_num(0, 1, hi_open=True), doc="dropout on the adapter input")
    target_modules: list = _f(_str_list(), doc="module names that get adapters ([] or ['all-linear']: every "
                                                "linear layer of the backbone)")


@dataclass(frozen=True)
class Hyperparameters:
    """Every setting one technique trains with. 0 is a value: no field falls back to a default."""

    # upper bounds: what the command line's own options accept (--epochs, --batch-size), so that a plan
    # file cannot ask for more than a user could type
    learning_rate: float = _f(_num(0, 10, lo_open=True), doc="peak AdamW learning rate")
    epochs: int = _f(_num(1, 1000, integer=True), doc="most epochs (early stopping may end sooner)")
    batch_size: int = _f(_num(1, 4096, integer=True))
    weight_decay: float = _f(_num(0), doc="AdamW decoupled weight decay (not on biases and norms)")
    dropout: float = _f(_num(0, 1, hi_open=True), doc="dropout before the new head")
    warmup_ratio: float = _f(_num(0, 1, hi_open=True), doc="fraction of steps of linear warm-up")
    max_grad_norm: float = _f(_num(0, note="0: no clipping"), doc="gradient-norm clipping")
    early_stopping_patience: int = _f(_num(0, 1000, integer=True, note="0: no early stopping"),
                                      doc="epochs without a better validation macro-F1 before stopping; "
                                          "the best weights are kept")
    discriminative_lr_decay: float = _f(_num(1, note="1: one rate for all layers"),
                                        doc="each layer group below gets the rate of the one above / this")
    l2_sp: float = _f(_num(0, note="0: off"), doc="weight of the squared distance to the pre-trained weights")
    frozen_layers: Union[int, str] = _f(_frozen(), doc="the first k layer groups are frozen ('all': backbone)")
    unfreeze: str = _f(_one_of("none", "gradual"), doc="'gradual': one more group per epoch, top first")
    augmentation: list = _f(_str_list(), [], doc="'standard' and/or 'emoji' (text); 'standard', 'documents', "
                                                 "'medical', 'inspection' or 'overhead' (images: the domain's policy)")
    head: Optional[str] = _f(_opt(_one_of("linear", "mlp")), None, doc="feature extraction's head")
    probe: Optional[dict] = _f(_opt(((lambda v: isinstance(v, dict)), "a mapping")), None,
                               doc="the linear head's fit: L2 grid (c_min, c_max, steps), tolerance, iterations, "
                                   "selection metric")
    lora: Optional[LoraSettings] = _f(None, None, doc="LoRA adapters (LoRA and QLoRA)")
    quantization: Optional[dict] = _f(_opt(((lambda v: isinstance(v, dict)), "a mapping")), None,
                                      doc="QLoRA's frozen-base quantization (bits, quant_type, double_quant, "
                                          "compute_dtype)")
    preprocessing: list = _f(_str_list(), [], doc="text rewriting: 'demojize', 'normalize'")
    tokenizer_extra_tokens: Optional[str] = _f(_opt(_one_of("emoji")), None,
                                               doc="'emoji': add the training data's emoji to the vocabulary")
    stages: list = _f(_str_list(), [], doc="stages before the target task: 'mlm_in_domain', "
                                           "'intermediate_informal'")
    # a causal language model's training data (text generation)
    prompt_loss: bool = _f(((lambda v: isinstance(v, bool)), "true or false"), False,
                           doc="a causal LM: the loss also counts the prompt's tokens (false: the response only)")
    packing: bool = _f(((lambda v: isinstance(v, bool)), "true or false"), False,
                       doc="a causal LM: training examples are concatenated and cut into blocks of the maximum "
                           "length (false: each example alone, truncated to it)")
    replay_ratio: float = _f(_num(0, 4, note="0: no replay"), 0.0,
                             doc="a causal LM: general examples mixed into training, per training example, drawn "
                                 "from the retention data's items that the forgetting test does not measure")

    def as_dict(self) -> dict:
        """The settings as a mapping of field to plain value (LoRA settings as a mapping)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


# settings of the data a run trains on, shared by the techniques it compares (a fix that switches the
# technique keeps them)
DATA_LEVEL = ("preprocessing", "augmentation", "tokenizer_extra_tokens", "stages", "prompt_loss", "packing",
              "replay_ratio")


@dataclass(frozen=True)
class ModelChoice:
    id: str = _f(((lambda v: isinstance(v, str) and bool(v.strip())), "a model id"))
    name: str = _f(((lambda v: isinstance(v, str)), "a string"), "")
    layers: int = _f(_num(0, integer=True), 0, doc="layer groups of the model (0: unknown)")
    available: bool = _f(((lambda v: isinstance(v, bool)), "true or false"), False,
                         doc="whether it loads offline on this machine as it is")
    why: dict = _f(((lambda v: isinstance(v, dict)), "a mapping"), {})


@dataclass(frozen=True)
class Evaluation:
    seeds: int = _f(_num(1, 100, integer=True), doc="seeds per technique")
    alpha: float = _f(_num(0, 1, lo_open=True, hi_open=True), doc="significance level of every test")
    probes: list = _f(((lambda v: isinstance(v, list) and all(p in PROBES for p in v)),
                       "a list of " + ", ".join(PROBES)))
    retention_data: Optional[str] = _f(_opt(((lambda v: isinstance(v, str) and bool(v.strip())), "a path")),
                                       None, doc="a second labeled task for the forgetting probe")
    metrics: list = _f(((lambda v: isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v)),
                        "a list of metric names"), [],
                       doc="what the plan reports for its task")
    stop_on: str = _f(((lambda v: isinstance(v, str)), "a metric name"), "",
                      doc="the validation figure early stopping watches")
    why: str = _f(((lambda v: isinstance(v, str)), "text"), "", doc="why this many seeds")
    protocol: str = _f(((lambda v: isinstance(v, str)), "text"), "",
                       doc="how the data are split to judge the result (a few-shot scenario: cross-validation)")
    validation_share: float = _f(_num(0, 0.5, lo_open=True), 0.2,
                                 doc="share of the labelled examples held out for validation (no --validation file)")
    test_share: float = _f(_num(0, 0.5, lo_open=True), 0.2,
                           doc="share of the labelled examples held out for the test (no --test file)")
    holdout_max: int = _f(_num(0, integer=True, note="0: no cap"), 0,
                          doc="most examples in the validation or the test set (a share of a large set would waste "
                              "labels)")


@dataclass(frozen=True)
class Plan:
    """The whole plan. Typed fields are what the harness executes; the rest explains them."""

    schema_version: int
    scenario: dict
    architecture: dict
    criteria: list
    candidates: list
    rejected: list
    model: Optional[ModelChoice]  # None: the catalog holds no model for the task
    size_class: str
    approach: dict
    technique: dict
    hyperparameters: Hyperparameters
    hyperparameters_why: dict
    recipes: dict  # technique id -> Hyperparameters: the other core techniques' own recipes
    risks: list
    diagnoses: list
    evaluation: Evaluation
    trace: list = field(default_factory=list)
    applied_fixes: list = field(default_factory=list)
    assumptions: list = field(default_factory=list)  # values nobody gave: [{"field", "value", "why"}]
    device: dict = field(default_factory=dict)  # the deployment device class and its latency budget
    memory: dict = field(default_factory=dict)  # the training machine's memory budget
    symptom_readings: list = field(default_factory=list)  # how each described symptom was read
    clarify: list = field(default_factory=list)  # questions that tell close pitfalls apart
    empirical_ranking: Optional[dict] = None  # the candidates scored on the user's data (rank-models)
    training_time: Optional[dict] = None  # the expected training time, from measured throughput
    task_note: str = ""  # what an engineer says first about the task (knowledge/tasks.yaml)
    notes: list = field(default_factory=list)  # what the catalog lacks for this scenario, said once
    # a written plan's provenance (rules.provenance): digests of the knowledge and rules that made it and
    # of its executed fields as written
    made_from: dict = field(default_factory=dict)

    # --- access
    @property
    def technique_id(self) -> str:
        return self.technique["choice"]

    def recipe(self, technique: str) -> Hyperparameters:
        """The hyperparameters ``technique`` runs with: the plan's own for its technique, else its recipe."""
        if technique == self.technique_id:
            return self.hyperparameters
        if technique not in self.recipes:
            raise PlanError(f"The plan has no recipe for technique {technique!r} "
                            f"(it has {', '.join([self.technique_id, *self.recipes])}).")
        return self.recipes[technique]

    # --- changes: a new, validated Plan (a plan is never changed in place)
    def changed(self, changes: dict, kb=None, where: str = "the changed plan") -> "Plan":
        """A new Plan with ``changes`` (dotted path -> value: ``hyperparameters.lora.rank``,
        ``recipes.lora.learning_rate``, ``evaluation.seeds``, ``model.layers``, ``applied_fixes``)
        applied to its JSON form and checked against the contract again."""
        data = self.to_dict()
        for path, value in changes.items():
            *heads, last = path.split(".")
            block = data
            for i, h in enumerate(heads):
                if not isinstance(block.get(h), dict):
                    raise PlanError(f"The plan has no field {'.'.join(heads[:i + 1])!r} to change "
                                    f"(asked to set {path!r}).")
                block = block[h]
            block[last] = _plain(copy.deepcopy(value))
        return Plan.from_dict(data, where, kb)

    def with_technique(self, tech: str, why: dict, kb=None) -> "Plan":
        """A new Plan whose technique is ``tech``, run with its own recipe from this plan (the
        data-level settings carry over; the old technique's recipe is kept among the recipes)."""
        if tech == self.technique_id:
            return self
        data = self.to_dict()
        recipes = data["recipes"]
        if tech not in recipes:
            raise PlanError(f"The plan has no recipe for technique {tech!r} "
                            f"(it has {', '.join([self.technique_id, *self.recipes])}).")
        hyper = recipes.pop(tech)
        hyper.update({k: data["hyperparameters"][k] for k in DATA_LEVEL})
        recipes[self.technique_id] = data["hyperparameters"]
        data["hyperparameters"] = hyper
        data["technique"] = {**data["technique"], "choice": tech, "name": tech, "why": why}
        return Plan.from_dict(data, "the plan with its technique switched", kb)

    # --- conversion
    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "recipes":
                v = {t: _plain(h) for t, h in v.items()}
            out[f.name] = _plain(v)
        if not out["applied_fixes"]:
            out.pop("applied_fixes")
        if out["empirical_ranking"] is None:
            out.pop("empirical_ranking")
        if not out["made_from"]:
            out.pop("made_from")
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "plan", kb=None) -> "Plan":
        """Check ``data`` against the contract; errors name ``where`` and the field path."""
        if not isinstance(data, dict):
            raise PlanError(f"{where}: a plan must be a mapping of fields. Got {type(data).__name__} instead.")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            hint = (" That version's hyperparameters were not fully resolved: write the plan again with "
                    "`tlexpert consult --scenario FILE -o plan.json`, or run its scenario with --reconsult."
                    if version == 1 else "")
            raise PlanError(f"The 'schema_version' field of {where} must be {SCHEMA_VERSION}. "
                            f"Got {version!r} instead.{hint}")
        plan = _build(cls, data, where, "")
        if plan.size_class not in SIZE_CLASSES:
            raise _bad(where, "size_class", "one of " + ", ".join(SIZE_CLASSES), plan.size_class)
        for key in ("choice",):
            for block in ("technique", "approach"):
                if key not in getattr(plan, block):
                    raise _bad(where, f"{block}.{key}", "present", None)
        if plan.approach["choice"] not in APPROACHES:
            raise _bad(where, "approach.choice", "one of " + ", ".join(APPROACHES), plan.approach["choice"])
        if kb is not None:
            techs = [t for t, e in kb.techniques.items() if e.kind == "core"]
            if plan.technique_id not in techs:
                raise _bad(where, "technique.choice", "one of " + ", ".join(techs), plan.technique_id)
            for t in plan.recipes:
                if t not in techs:
                    raise _bad(where, f"recipes.{t}", "a recipe of a core technique (" + ", ".join(techs) + ")",
                               t)
        entry = kb.techniques.get(plan.technique_id) if kb is not None else None
        if entry is not None and entry.adapters and plan.hyperparameters.lora is None:
            raise _bad(where, "hyperparameters.lora", "the LoRA settings (rank, alpha, dropout, "
                                                      "target_modules) for technique lora", None)
        return plan


def _plain(v):
    if dataclasses.is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _bad(where: str, path: str, expected: str, got: Any) -> PlanError:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return PlanError(f"The '{path}' field of {where} must be {expected}. Got {shown} instead.")


_HINTS: dict = {}


def _hints(cls):
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


_SPECS: dict = {}


def _spec(cls) -> tuple:
    """Per field of the dataclass ``cls``, what checking a value needs, worked out once per class: (name,
    required, the nested dataclass if any, whether it may be None, the field's check, its base type)."""
    spec = _SPECS.get(cls)
    if spec is None:
        hints = _hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            args = typing.get_args(hint)
            inner = next((a for a in args if dataclasses.is_dataclass(a)), None) if args else None
            nested = inner or (hint if dataclasses.is_dataclass(hint) else None)
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            rows.append((f.name, required, nested, inner is not None, f.metadata.get("check"),
                         typing.get_origin(hint) or hint, hint))
        spec = _SPECS[cls] = tuple(rows)
    return spec


def _build(cls, data: Any, where: str, prefix: str):
    if not isinstance(data, dict):
        raise _bad(where, prefix.rstrip(".") or cls.__name__, f"a mapping of {cls.__name__} fields", data)
    spec = _spec(cls)
    names = [row[0] for row in spec]
    unknown = [k for k in data if k not in names]
    if unknown:
        close = nearest(str(unknown[0]), names)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PlanError(f"The '{prefix}{unknown[0]}' field of {where} is not a {cls.__name__} field "
                        f"(known: {', '.join(names)}).{hint}")
    kwargs = {}
    for row in spec:
        name = row[0]
        path = prefix + name
        if name not in data:
            if row[1]:
                raise PlanError(f"The '{path}' field of {where} is required. Got nothing instead.")
            continue
        kwargs[name] = _value(data[name], row, where, path)
    return cls(**kwargs)


def _value(v: Any, row: tuple, where: str, path: str):
    _, _, nested, optional, check, base, hint = row
    if nested is not None:
        if v is None and optional:
            return None
        return _build(nested, v, where, path + ".")
    if path == "recipes":
        if not isinstance(v, dict):
            raise _bad(where, path, "a mapping of technique id to hyperparameters", v)
        return {t: _build(Hyperparameters, h, where, f"{path}.{t}.") for t, h in v.items()}
    if check is not None:
        test, expected = check
        if not test(v):
            raise _bad(where, path, expected, v)
        if hint in (int,) and isinstance(v, float):
            return int(v)
        if hint is float and isinstance(v, int):
            return float(v)
        return _copy(v)
    if base in (dict, list, int, str) and not isinstance(v, base if base is not int else (int,)):
        raise _bad(where, path, {dict: "a mapping", list: "a list", int: "an integer", str: "a string"}[base], v)
    return _copy(v)


_SCALARS = (str, int, float, bool, type(None))


def _copy(v: Any) -> Any:
    """A copy of a JSON-like value that shares nothing mutable with it (``copy.deepcopy``'s result for
    plain dicts, lists and scalars, several times faster; anything else goes to ``deepcopy``)."""
    t = type(v)
    if t in _SCALARS:
        return v
    if t is dict:
        return {k: _copy(x) for k, x in v.items()}
    if t is list:
        return [_copy(x) for x in v]
    return copy.deepcopy(v)


# --- differences between two plans (what run reports when the knowledge now says otherwise)

EXECUTED = ("model", "size_class", "technique.choice", "hyperparameters", "recipes", "evaluation")


def _flat(v: Any, prefix: str, out: dict) -> dict:
    if isinstance(v, dict):
        for k, x in v.items():
            _flat(x, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = v
    return out


def executed_fields(plan: Plan) -> dict:
    """The fields the harness executes, flattened to ``path -> value`` (``why`` texts left out)."""
    d = plan.to_dict()
    out: dict = {}
    for key in EXECUTED:
        if "." in key:
            top, sub = key.split(".")
            out[key] = d[top][sub]
        else:
            _flat(d[key], key, out)
    return {k: v for k, v in out.items() if not k.startswith("model.why")}


def differences(a: Plan, b: Plan) -> list[dict]:
    """``[{"field", "file", "now"}]``: executed fields where plan ``a`` and plan ``b`` differ."""
    fa, fb = executed_fields(a), executed_fields(b)
    return [{"field": k, "file": fa.get(k), "now": fb.get(k)} for k in sorted(set(fa) | set(fb))
            if fa.get(k) != fb.get(k)]


__all__ = ["SCHEMA_VERSION", "DATA_LEVEL", "Evaluation", "Hyperparameters", "LoraSettings", "ModelChoice",
           "Plan", "PlanError", "differences", "executed_fields"]
