"""The technique registry: what each technique executes, on which tasks, and which plan fields it
honours per input modality (changing one of them changes the training; tests/harness/test_registry.py
and test_causal_lm.py check each), and the function that trains it per modality, named as
``"module:function"`` and imported only when a run calls it. Light on purpose: the command line builds
its choices from it without loading any training code.

Adding a technique is an entry here (its implementation per modality, the fields it honours, its kind)
plus the knowledge base's entry (``knowledge/data/techniques.yaml``: when the rules choose it)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from knowledge.schema import KnowledgeError

TRAINING = ("learning_rate", "epochs", "batch_size", "weight_decay", "dropout", "warmup_ratio",
            "max_grad_norm", "early_stopping_patience", "discriminative_lr_decay", "l2_sp")
TEXT_DATA = ("preprocessing", "augmentation", "tokenizer_extra_tokens", "stages")
# a causal LM adapted by harness.training.causal_lm.adapt (modality "causal_lm")
LM_TRAINING = ("learning_rate", "epochs", "batch_size", "weight_decay", "warmup_ratio", "max_grad_norm",
               "early_stopping_patience", "prompt_loss", "packing", "replay_ratio")
EXECUTABLE_TASKS = {"text_classification": "text", "image_classification": "image"}
GENERATIVE_TASKS = ("text_generation",)  # a causal LM (harness.training.lm_run)
# the implementations per modality; each modality's pipeline calls them with one signature:
#   text:      f(session: harness.training.text_run.TextSession, technique, seed) -> result record (dict)
#   image:     f(technique, source_model, (train, val, test), seed, hyper, source_test=None, **shared) -> TrainResult
#   causal_lm: f(base, technique, train, val, hyper, pad_id, seed, device, progress, ...) -> LMResult
HEAD = "harness.training.text_run:train_head"
NETWORK = "harness.training.text_run:train_network"
IMAGE = "harness.training.vision:run_image"
CAUSAL_LM = "harness.training.causal_lm:adapt"


@dataclass(frozen=True)
class TechniqueSpec:
    """A technique the harness can run: the tasks it executes, and per input modality the plan
    fields (``hyperparameters.*``) it honours: changing one of them changes the training."""

    id: str
    tasks: tuple
    honours: dict  # modality -> tuple of Hyperparameters field names
    runs: dict     # modality -> "module:function" that trains it (imported when called)
    head_only: bool = False      # trains a head on frozen, precomputed features; the backbone never changes
    pretrained: bool = True      # starts from pre-trained weights (False: the no-transfer baseline)
    adapters: bool = False       # trains low-rank adapters (LoRA) beside the frozen pre-trained weights
    quantized: bool = False      # the frozen base is quantized (bitsandbytes, CUDA only)

    def honoured(self, modality: str) -> tuple:
        return self.honours.get(modality, ())

    def implementation(self, modality: str) -> Callable:
        """The function that trains this technique on ``modality`` inputs, imported now (torch loads here,
        not when the registry is read)."""
        target = self.runs.get(modality)
        if target is None:
            raise NotExecutable(f"The technique {self.id!r} has no implementation for {modality} inputs here "
                                f"(it runs on {', '.join(self.runs) or 'none'}).")
        module, _, name = target.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise NotExecutable(f"The technique {self.id!r} names {target!r} as its {modality} implementation, "
                                f"which cannot be loaded: {e}") from None

    @property
    def changes_backbone(self) -> bool:
        """Trains starting from pre-trained weights that it changes: forgetting and drift are measured."""
        return self.pretrained and not self.head_only

    @property
    def full_update(self) -> bool:
        """Changes every pre-trained weight: frozen layers, gradual unfreezing and per-layer rates apply."""
        return self.pretrained and not self.head_only and not self.adapters


def technique_spec(technique: str) -> TechniqueSpec:
    """The registry's entry for ``technique``; a technique it does not know is run by nothing here."""
    try:
        return REGISTRY[technique]
    except KeyError:
        raise NotExecutable(f"The technique {technique!r} is not one this harness runs ({', '.join(REGISTRY)}).") \
            from None


REGISTRY = {
    # the linear head is a probe fit to convergence (harness.training.heads): its settings are ``probe``'s; the
    # optimiser fields (learning rate, epochs, batch size, weight decay, dropout, patience) are the MLP
    # head's only, so auto-fix never spends a round changing them for a linear head
    "feature_extraction": TechniqueSpec(
        "feature_extraction", tuple(EXECUTABLE_TASKS),
        {"text": ("head", "probe", *TEXT_DATA), "image": ("head", "probe")},
        {"text": HEAD, "image": IMAGE}, head_only=True),
    "fine_tuning": TechniqueSpec(
        "fine_tuning", tuple(EXECUTABLE_TASKS),
        {"text": (*TRAINING, "frozen_layers", "unfreeze", *TEXT_DATA),
         "image": (*TRAINING, "frozen_layers", "unfreeze", "augmentation"),
         "causal_lm": LM_TRAINING},
        {"text": NETWORK, "image": IMAGE, "causal_lm": CAUSAL_LM}),
    "lora": TechniqueSpec(
        "lora", tuple(EXECUTABLE_TASKS),
        {"text": (*(f for f in TRAINING if f != "l2_sp"), "lora", *TEXT_DATA),
         "image": (*(f for f in TRAINING if f != "l2_sp"), "lora", "augmentation"),
         "causal_lm": (*LM_TRAINING, "lora")},
        {"text": NETWORK, "image": IMAGE, "causal_lm": CAUSAL_LM}, adapters=True),
    "from_scratch": TechniqueSpec(
        "from_scratch", tuple(EXECUTABLE_TASKS),
        {"text": (*(f for f in TRAINING if f not in ("l2_sp", "discriminative_lr_decay")),
                  "preprocessing", "augmentation"),
         "image": (*(f for f in TRAINING if f not in ("l2_sp", "discriminative_lr_decay")), "augmentation")},
        {"text": NETWORK, "image": IMAGE}, pretrained=False),
    # LoRA on a base quantized by bitsandbytes: a causal LM on a CUDA GPU only
    "qlora": TechniqueSpec("qlora", GENERATIVE_TASKS, {"causal_lm": (*LM_TRAINING, "lora", "quantization")},
                           {"causal_lm": CAUSAL_LM}, adapters=True, quantized=True),
}


class NotExecutable(KnowledgeError):
    """A plan asks for a task or technique the harness cannot run."""


def check_executable(plan, techniques: list) -> None:
    """Refuse, with the reason, a plan whose task or techniques the harness cannot run."""
    task = plan.scenario.get("task")
    if task not in EXECUTABLE_TASKS:
        raise NotExecutable(
            f"tlexpert run executes {', '.join(EXECUTABLE_TASKS)} and {', '.join(GENERATIVE_TASKS)} plans; this "
            f"plan's task is {task}. Its consultation stands as advice; carry it out with a trainer for that task.")
    for t in techniques:
        if t not in REGISTRY or task not in REGISTRY[t].tasks:
            raise NotExecutable(f"The technique {t!r} cannot be run by tlexpert run on this machine (it runs "
                                f"{', '.join(REGISTRY)}); the plan's advice stands, carry it out elsewhere.")


def honours(technique: str, modality: str, fields) -> bool:
    """Whether ``technique`` honours every hyperparameter in ``fields`` for ``modality`` inputs."""
    spec = REGISTRY.get(technique)
    return spec is not None and all(f in spec.honoured(modality) for f in fields)


def unrunnable_reasons(kb, plan, techniques) -> list[str]:
    """Why `run` cannot carry ``plan`` out on this install (empty: it can): a task the harness does not
    train, or a technique it does not run for the task (the task first: a plan for another task is
    advice whatever its technique)."""
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
    return reasons
