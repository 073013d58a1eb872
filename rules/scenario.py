"""The Scenario contract: check and normalize a scenario from a file, flags or prompts.

``normalize(raw, kb, origin)`` returns a dict with every field present (``None``
where unknown) or raises ``ScenarioError`` with one message shape naming the
file (and line), the field and what was expected.
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

from knowledge.reading import got, show
from knowledge.schema import (
    Compute,
    Deployment,
    DomainSimilarity,
    KnowledgeError,
    RetainSource,
    TaskSimilarity,
    choice_error,
    error,
    where_of,
)


class ScenarioError(KnowledgeError):
    """A scenario field is missing or invalid."""


class NotCovered(ScenarioError):
    """The scenario names a task this knowledge base does not cover (with expert advice)."""


FIELDS = (
    "task", "modality", "dataset_size", "num_classes", "task_similarity",
    "domain_similarity", "compute", "gpu_memory_gb", "deployment", "latency_ms",
    "retain_source", "device_class", "language", "source_domain", "target_domain", "symptoms",
    "sequence_length", "image_size",
)
# "assumed": the fields normalize filled with a default (the plan names them)
EXTRA_FIELDS = ("id", "name", "notes", "expect", "assumed", "read_as")
REQUIRED = ("task", "dataset_size")
DEFAULTS = {
    "task_similarity": TaskSimilarity.RELATED.value,
    "domain_similarity": DomainSimilarity.MEDIUM.value,
    "compute": Compute.CONSUMER_GPU.value,
    "deployment": Deployment.SERVER.value,
    "retain_source": RetainSource.UNKNOWN.value,
}
ENUMS = {
    "task_similarity": [e.value for e in TaskSimilarity],
    "domain_similarity": [e.value for e in DomainSimilarity],
    "compute": [e.value for e in Compute],
    "deployment": [e.value for e in Deployment],
    "retain_source": [e.value for e in RetainSource],
}
# spellings people use for the yes/no/unknown answer of retain_source
_YES_NO = {"y": "yes", "true": "yes", "keep": "yes", "n": "no", "false": "no",
           "?": "unknown", "dont_know": "unknown", "don't_know": "unknown", "not_sure": "unknown",
           "dunno": "unknown", "idk": "unknown", "maybe": "unknown"}


def spelled(value: Any) -> str:
    """One spelling for enum answers: 'Image Classification', 'image-classification' and
    'image_classification' are the same (the command line, files and prompts share it)."""
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower())


def _err(msg: Exception) -> ScenarioError:
    return ScenarioError(str(msg))


def _number(value: Any, name: str, where: str, *, integer: bool, minimum: float,
            inclusive: bool = True, allow_zero_as_none: bool = False) -> Optional[float]:
    if minimum >= 2:
        expected = f"an integer of at least {minimum:g}"
    elif minimum > 0 or not inclusive:
        expected = "a positive integer" if integer else "a positive number"
    else:
        expected = ("a whole number" if integer else "a number") + f" of at least {minimum:g}"
        if allow_zero_as_none:
            expected += " (0: none)"
    orig = value
    if isinstance(value, str):
        text = value.strip().replace("_", "").replace(",", "")
        try:
            value = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            raise _err(error(name, where, expected, orig)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise _err(error(name, where, expected, orig))
    if allow_zero_as_none and value == 0:
        return None
    if integer:
        if isinstance(value, float):
            if not value.is_integer():
                raise _err(error(name, where, expected, orig))
            value = int(value)
    if value < minimum or (not inclusive and value == minimum):
        raise _err(error(name, where, expected, orig))
    return value


def _tags(value: Any, name: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        parts = re.split(r"[;,]", value)
    elif isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        parts = [str(v) for v in value]
    else:
        raise _err(error(name, where, "a tag or a list of tags", value))
    return [p.strip() for p in parts if p.strip()]


def normalize(raw: Any, kb, origin: str = "scenario", symptom_matcher=None,
              field_where=None) -> dict:
    """Check ``raw`` (a mapping) against the Scenario contract; fill defaults.

    ``symptom_matcher(text, where) -> id or [ids]`` resolves free-text symptoms (see
    ``rules.reader.symptoms.match_symptoms``; a description may name several, or only rule
    some out); without it only known ids are accepted.
    ``field_where(key)`` may name where a field came from (e.g. ``--task``).
    """
    if not isinstance(raw, dict):
        raise ScenarioError(f"{origin}: a scenario must be a mapping of fields "
                            f"({', '.join(FIELDS)}). Got {type(raw).__name__} instead.")
    base_where = where_of(raw, None, origin)

    def w(key):
        return (field_where and field_where(key)) or where_of(raw, key, base_where)

    for key in raw:
        if key not in FIELDS and key not in EXTRA_FIELDS:
            raise ScenarioError(
                f"The '{show(str(key))}' field of {w(key)} is not a scenario field. "
                + (f"Did you mean {_near(key)}? " if _near(key) else "")
                + f"Known fields: {', '.join(FIELDS)}."
            )
    for key in REQUIRED:
        if raw.get(key) in (None, ""):
            raise ScenarioError(f"The '{key}' field of {base_where} is required. Got nothing instead.")

    out: dict[str, Any] = {k: None for k in FIELDS}
    assumed: list[str] = []
    entry = kb.find_task(raw["task"]) if isinstance(raw["task"], str) else None
    if entry is None:
        raise _err(choice_error("task", w("task"), raw["task"], kb.tasks))
    if not entry.covered:
        covered = list(kb.tasks)
        raise NotCovered(
            f"The 'task' field of {w('task')} names {raw['task']!r} ({entry.description.lower()}), which this "
            f"knowledge base does not cover; it covers {', '.join(covered)}. What an expert would say first: "
            f"{entry.advice}")
    task = entry.id
    out["task"] = task
    # "read_as": the names normalize mapped onto another id (the plan says so: summarization is planned as
    # text generation)
    read_as = [r for r in raw.get("read_as") or () if isinstance(r, dict)] if isinstance(raw.get("read_as"), list) else []
    from knowledge.schema import normalize_word

    if normalize_word(str(raw["task"])) != task and not any(r.get("field") == "task" for r in read_as):
        read_as.append({"field": "task", "given": str(raw["task"]), "as": task,
                        "why": f"{raw['task']!r} is one of the names of the task {task!r} in the knowledge base"})
    if read_as:
        out["read_as"] = read_as
    modality = kb.tasks[task].modality.value
    if raw.get("modality") not in (None, ""):
        if raw["modality"] != modality:
            raise ScenarioError(
                f"The 'modality' field of {w('modality')} must be {modality!r} for task {task!r} "
                f"(or left out). Got {got(raw['modality'])} instead."
            )
    out["modality"] = modality
    out["dataset_size"] = _number(raw["dataset_size"], "dataset_size", w("dataset_size"),
                                  integer=True, minimum=1)
    if raw.get("num_classes") not in (None, ""):
        out["num_classes"] = _number(raw["num_classes"], "num_classes", w("num_classes"),
                                     integer=True, minimum=2)
        if out["num_classes"] > out["dataset_size"]:
            raise ScenarioError(
                f"The 'num_classes' field of {w('num_classes')} must be at most dataset_size "
                f"({out['dataset_size']}): every class needs at least one labeled example. "
                f"Got {out['num_classes']} instead.")
    for key, choices in ENUMS.items():
        value = raw.get(key)
        if value in (None, ""):
            out[key] = DEFAULTS[key]
            assumed.append(key)
            continue
        if isinstance(value, bool) and key == "retain_source":  # YAML reads yes/no as booleans
            value = "yes" if value else "no"
        value = spelled(value)
        if key == "retain_source":
            value = _YES_NO.get(value, value)
        if value not in choices:
            raise _err(choice_error(key, w(key), raw[key], choices))
        out[key] = value
    if raw.get("gpu_memory_gb") not in (None, ""):
        out["gpu_memory_gb"] = _number(raw["gpu_memory_gb"], "gpu_memory_gb", w("gpu_memory_gb"),
                                       integer=False, minimum=0, inclusive=False)
    if raw.get("latency_ms") not in (None, ""):
        out["latency_ms"] = _number(raw["latency_ms"], "latency_ms", w("latency_ms"),
                                    integer=False, minimum=0, allow_zero_as_none=True)
    # tokens per text input (a search query ~10, a document ~512): latency and training memory use it
    out["sequence_length"] = (int(_number(raw["sequence_length"], "sequence_length", w("sequence_length"),
                                          integer=True, minimum=1))
                              if raw.get("sequence_length") not in (None, "") else None)
    # pixels per side of an image input (a 1024 px defect photo, a 96 px thumbnail): latency and memory use it
    out["image_size"] = (int(_number(raw["image_size"], "image_size", w("image_size"), integer=True, minimum=8))
                         if raw.get("image_size") not in (None, "") else None)
    if raw.get("device_class") not in (None, ""):
        out["device_class"] = _device(raw["device_class"], kb, w("device_class"))
        implied = kb.devices[out["device_class"]].deployment
        if "deployment" in assumed and implied is not None:
            out["deployment"] = implied.value  # a Raspberry Pi is an edge device: still marked as assumed
    out["language"] = _language(raw.get("language"), modality, kb, w("language"))
    out["source_domain"] = _tags(raw.get("source_domain"), "source_domain", w("source_domain"))
    out["target_domain"] = _tags(raw.get("target_domain"), "target_domain", w("target_domain"))

    symptoms = raw.get("symptoms") or []
    if isinstance(symptoms, str):
        symptoms = [symptoms]
    if not isinstance(symptoms, list):
        raise _err(error("symptoms", w("symptoms"), "a list of symptom ids or descriptions", symptoms))
    resolved = []
    for i, s in enumerate(symptoms):
        if not isinstance(s, str) or not s.strip():
            raise _err(error(f"symptoms[{i}]", w("symptoms"), "a symptom id or a description", s))
        if s in kb.symptoms:
            sids = [s]
        elif symptom_matcher is not None:
            matched = symptom_matcher(s, w("symptoms"))
            sids = [matched] if isinstance(matched, str) else list(matched)
        else:
            raise _err(choice_error(f"symptoms[{i}]", w("symptoms"), s, kb.symptoms))
        for sid in sids:
            if sid not in resolved:
                resolved.append(sid)
    out["symptoms"] = resolved
    for key in ("id", "name"):
        if raw.get(key) is not None:
            out[key] = str(raw[key])
    # a plan's scenario read again keeps naming the defaults it was given
    given = raw.get("assumed")
    if isinstance(given, list):
        implied = kb.devices[out["device_class"]].deployment if out.get("device_class") else None
        assumed += [k for k in given if k in DEFAULTS and k not in assumed and
                    (out[k] == DEFAULTS[k] or (k == "deployment" and implied is not None and out[k] == implied.value))]
    out["assumed"] = [k for k in FIELDS if k in assumed]
    return out


def check_field(key: str, value: Any, kb, where: str, task: Optional[str] = None) -> Any:
    """One field checked and normalized exactly as ``normalize`` does (for prompts):
    the value, or ``ScenarioError`` naming ``where``."""
    raw = {"task": task or next(iter(kb.tasks)), "dataset_size": 10 ** 9, key: value}  # room for num_classes
    return normalize(raw, kb, origin=where, field_where=lambda k: where)[key]


# beyond these, a value is far outside anything seen in practice: say so, but go on
PLAUSIBLE_MAX = {"dataset_size": 10 ** 11, "num_classes": 10 ** 6, "gpu_memory_gb": 4096, "latency_ms": 86_400_000,
                 "sequence_length": 10 ** 7, "image_size": 20_000}


def scenario_warnings(scenario: dict) -> list[str]:
    """Values that are valid but inconsistent or implausible, each with the reason (not errors)."""
    out = []
    if scenario.get("compute") == Compute.CPU.value and scenario.get("gpu_memory_gb"):
        out.append(f"gpu_memory_gb is {scenario['gpu_memory_gb']:g} but compute is cpu: the GPU memory is "
                   f"ignored (set --compute consumer_gpu or datacenter_gpu if the GPU is there)")
    for key, limit in PLAUSIBLE_MAX.items():
        value = scenario.get(key)
        if isinstance(value, (int, float)) and value > limit:
            out.append(f"{key} is {value:,g}, more than {limit:,g}: far beyond any real setting; "
                       f"check the unit or a missing decimal point")
    n, k = scenario.get("dataset_size"), scenario.get("num_classes")
    if isinstance(n, int) and isinstance(k, int) and k * 5 > n >= k:
        out.append(f"{n} examples for {k} classes is fewer than 5 per class: too few to train or "
                   f"test a classifier reliably")
    return out


DEVICE_ALIASES = {
    "mcu": "microcontroller", "arduino": "microcontroller", "stm32": "microcontroller",
    "raspberry_pi": "raspberry_pi_cpu", "raspberry_pi_4": "raspberry_pi_cpu", "rpi": "raspberry_pi_cpu",
    "rpi4": "raspberry_pi_cpu", "pi": "raspberry_pi_cpu", "pi4": "raspberry_pi_cpu",
    "phone": "phone_npu", "smartphone": "phone_npu", "npu": "phone_npu", "edge_tpu": "phone_npu",
    "laptop": "laptop_cpu", "cpu": "laptop_cpu", "desktop_cpu": "laptop_cpu",
    "jetson": "jetson_gpu", "jetson_orin": "jetson_gpu", "jetson_nano": "jetson_gpu", "edge_gpu": "jetson_gpu",
    "gpu": "consumer_gpu", "rtx": "consumer_gpu", "a100": "datacenter_gpu", "h100": "datacenter_gpu",
}


def _device(value: Any, kb, where: str) -> str:
    from knowledge.schema import normalize_word

    word = normalize_word(value)
    word = DEVICE_ALIASES.get(word, word)
    if word not in kb.devices:
        raise _err(choice_error("device_class", where, value, kb.devices))
    return word


def _language(value: Any, modality: str, kb, where: str) -> Optional[str]:
    """english (assumed for text when not given), multilingual, code, or one language."""
    from knowledge.schema import normalize_word

    if value in (None, ""):
        return None
    known = kb.threshold("known_languages")
    word = normalize_word(value)
    word = {"en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
            "pt": "portuguese", "nl": "dutch", "zh": "chinese", "ja": "japanese", "ko": "korean",
            "ru": "russian", "ar": "arabic", "hi": "hindi", "programming_code": "code",
            "source_code": "code", "several": "multilingual", "many": "multilingual"}.get(word, word)
    if word not in known:
        raise _err(choice_error("language", where, value, known))
    return word  # kept for image tasks too: only models that read text are checked against it


def _near(key: str) -> str:
    from knowledge.schema import nearest

    close = nearest(key, FIELDS)
    return " or ".join(repr(c) for c in close)


def question_applies(question, answers: dict, kb) -> bool:
    """Whether a suitability question can change the plan, given the answers so far
    (its ``when`` conditions; a condition on a field not answered yet holds)."""
    for fld, cond in question.when.items():
        value = answers.get(fld)
        if value in (None, ""):
            continue
        if isinstance(cond, dict):
            limit = kb.threshold(cond["above"])
            try:
                if not float(value) > limit:
                    return False
            except (TypeError, ValueError):
                continue
        elif spelled(value) not in [spelled(c) for c in cond]:
            return False
    return True
