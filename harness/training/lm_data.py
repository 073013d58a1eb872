"""Data for adapting a causal language model, as users have it, into token ids with a loss mask.

Formats (JSONL, one object per line, told apart by their keys; or plain text):

- instructions, Alpaca style: ``{"instruction", "input" (optional), "output"}``;
- chat: ``{"messages": [{"role": "user"|"assistant"|"system", "content"}, ...]}``, rendered with the
  tokenizer's chat template (a plain ``role: content`` layout when the tokenizer has none); the last
  assistant message is the response;
- prompt/completion pairs: ``{"prompt", "completion"}``;
- plain text for continued pre-training on a domain: ``{"text"}`` lines, or a ``.txt`` file
  (paragraphs separated by blank lines).

The loss counts the response tokens only (the prompt's labels are -100) unless the plan says
otherwise (``prompt_loss``); plain text has no prompt. Examples longer than ``max_length`` tokens are
truncated (the prompt is cut from its start so that the response survives), or, when the plan packs
(``packing``), concatenated whole and cut into blocks of ``max_length`` tokens. With ``replay_ratio``
the training set is mixed with general examples (rehearsal) drawn from the retention data's items that
the forgetting test does not measure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from knowledge.errors import KnowledgeError

ALPACA = "Below is an instruction that describes a task. Write a response that completes the request.\n\n"
FORMATS = ("instructions (instruction/input/output)", "chat (messages)", "prompt/completion", "plain text (text)")


class LMDataError(KnowledgeError):
    pass


@dataclass
class Example:
    prompt: str                # what the model is given (no loss on it by default)
    response: str              # what it must produce
    kind: str                  # instructions | chat | prompt_completion | text
    messages: Optional[list] = None


def _alpaca(instruction: str, inp: str) -> str:
    text = ALPACA + f"### Instruction:\n{instruction.strip()}\n\n"
    if inp and inp.strip():
        text += f"### Input:\n{inp.strip()}\n\n"
    return text + "### Response:\n"


def _strings(obj: dict, where: str, required: tuple, optional: tuple = ()) -> None:
    """Each field the format reads is text: a number, a mapping or null is refused by name, never turned
    into the text 'None' or '{...}' and trained on."""
    for k in (*required, *optional):
        v = obj.get(k)
        if (k in required or v is not None) and not isinstance(v, str):
            raise LMDataError(f"The '{k}' field of {where} must be text. Got "
                              f"{'null' if v is None else type(v).__name__} instead.")


def example_of(obj, where: str) -> Example:
    """One JSON object as an Example; the format is told by its keys."""
    if not isinstance(obj, dict):
        raise LMDataError(f"{where}: expected a JSON object. Got {type(obj).__name__} instead.")
    if "messages" in obj:
        msgs = obj["messages"]
        if not (isinstance(msgs, list) and msgs and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                         and m.get("role") in ("system", "user", "assistant")
                                                         for m in msgs)):
            raise LMDataError(f"{where}: 'messages' must be a list of {{role: system|user|assistant, content}}")
        if msgs[-1]["role"] != "assistant":
            raise LMDataError(f"{where}: the last message must be the assistant's (the response to learn)")
        return Example("", msgs[-1]["content"], "chat", messages=msgs)
    if "instruction" in obj and "output" in obj:
        _strings(obj, where, ("instruction", "output"), optional=("input",))
        return Example(_alpaca(obj["instruction"], obj.get("input") or ""), obj["output"], "instructions")
    if "prompt" in obj and "completion" in obj:
        _strings(obj, where, ("prompt", "completion"))
        return Example(obj["prompt"], obj["completion"], "prompt_completion")
    if "text" in obj:
        _strings(obj, where, ("text",))
        return Example("", obj["text"], "text")
    raise LMDataError(f"{where}: expected one of {', '.join(FORMATS)}. Got keys "
                      f"{', '.join(map(str, list(obj)[:8])) or 'none'} instead.")


def read_examples(path: str | Path) -> list[Example]:
    """The examples of a JSONL file (any of the formats, one per line) or a plain-text file."""
    from knowledge.reading import read_jsonl, read_text, safe_path

    p = safe_path(path, what="data file")
    if p.suffix.lower() in (".txt", ".md", ".text"):
        text = read_text(p, kind="data", what="data file")
        paras = [x.strip() for x in text.replace("\r\n", "\n").split("\n\n") if x.strip()]
        if not paras:
            raise LMDataError(f"{p}: no text")
        return [Example("", x, "text") for x in paras]
    rows = read_jsonl(p, kind="data", what="data file")
    out = [example_of(r, f"{p}:{i}") for i, r in rows]
    if not out:
        raise LMDataError(f"{p}: no examples")
    return out


def render_chat(tokenizer, messages: list) -> tuple[str, str]:
    """(prompt, response) of a chat: the template applied to all but the last message with the
    generation prompt, and the rest of the templated text."""
    if getattr(tokenizer, "chat_template", None):
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        if full.startswith(prompt):
            return prompt, full[len(prompt):]
    prompt = "".join(f"{m['role']}: {m['content']}\n" for m in messages[:-1]) + "assistant: "
    return prompt, messages[-1]["content"]


def encode(examples: list[Example], tokenizer, max_length: int, mask_prompt: bool = True) -> list[dict]:
    """Each example as ``{"input_ids", "labels", "prompt_len"}`` (lists of ints); labels -100 where the
    loss does not count (the prompt, when ``mask_prompt``)."""
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    out = []
    for ex in examples:
        prompt, response = (render_chat(tokenizer, ex.messages) if ex.kind == "chat" else (ex.prompt, ex.response))
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        r_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        if eos is not None and ex.kind != "text":
            r_ids = r_ids + [eos]
        if len(r_ids) >= max_length:
            p_ids, r_ids = [], r_ids[:max_length]
        elif len(p_ids) + len(r_ids) > max_length:
            p_ids = p_ids[len(p_ids) + len(r_ids) - max_length:]  # keep the response whole
        ids = p_ids + r_ids
        if len(ids) < 2:
            continue
        labels = ([-100] * len(p_ids) if mask_prompt else list(p_ids)) + list(r_ids)
        out.append({"input_ids": ids, "labels": labels, "prompt_len": len(p_ids)})
    if not out:
        raise LMDataError("no example has two or more tokens after tokenisation")
    return out


def pack(items: list[dict], max_length: int, eos: Optional[int]) -> list[dict]:
    """Encoded examples concatenated in order (an end-of-sequence token closing each one that lacks it)
    and cut into blocks of ``max_length`` tokens; a block without a single counted label is dropped."""
    ids: list = []
    labels: list = []
    for it in items:
        ids += it["input_ids"]
        labels += it["labels"]
        if eos is not None and it["input_ids"][-1] != eos:
            ids.append(eos)
            labels.append(eos if it["labels"][-1] != -100 else -100)
    out = []
    for i in range(0, len(ids), max_length):
        block_ids, block_labels = ids[i:i + max_length], labels[i:i + max_length]
        if len(block_ids) >= 2 and any(x != -100 for x in block_labels[1:]):
            out.append({"input_ids": block_ids, "labels": block_labels, "prompt_len": 0})
    return out


def training_items(examples: list[Example], tokenizer, max_length: int, hyper: dict,
                   replay: list[Example] = (), seed: int = 0) -> list[dict]:
    """What one seed trains on, as the recipe says: the prompt masked unless ``prompt_loss``; general
    examples from ``replay`` mixed in, ``replay_ratio`` per training example (drawn with ``seed``,
    without repetition while the pool lasts); packed into ``max_length`` blocks when ``packing``."""
    ratio = float(hyper.get("replay_ratio") or 0)
    n_replay = round(ratio * len(examples))
    if n_replay and not replay:
        raise LMDataError(f"replay_ratio {ratio:g} mixes general examples into training, drawn from the retention "
                          "data: give --retention-data FILE (general text .txt or instructions .jsonl) with more "
                          f"than the {RETENTION_ITEMS} items the forgetting test measures")
    rng = random.Random(seed)
    pool = list(replay)
    picked = (rng.sample(pool, n_replay) if n_replay <= len(pool)
              else pool * (n_replay // len(pool)) + rng.sample(pool, n_replay % len(pool))) if n_replay else []
    mixed = list(examples) + picked
    mask = not hyper.get("prompt_loss")
    if not hyper.get("packing"):
        return encode(mixed, tokenizer, max_length, mask)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    blocks = pack(encode(mixed, tokenizer, 1 << 30, mask), max_length, eos)
    if not blocks:
        raise LMDataError("packing left no block with a token to learn")
    return blocks


RETENTION_ITEMS = 60  # items of a retention file the forgetting test measures; replay draws from the rest


def replay_pool(path: str | Path, n: int = 2000) -> list[Example]:
    """General examples for replay: the items of a retention file after the ones the forgetting test
    measures, so that no measured item is ever trained on."""
    return general_text(path, n=RETENTION_ITEMS + n)[RETENTION_ITEMS:]


def general_text(path: str | Path, n: int = RETENTION_ITEMS, min_words: int = 40) -> list[Example]:
    """Held-out general text for the forgetting test: WikiText-style paragraphs (headings and short
    lines left out) of a plain-text file, or the reference answers of an instruction file."""
    p = Path(path)
    if p.suffix.lower() == ".jsonl":
        return _seed_tasks(p, n)
    from knowledge.reading import read_text

    lines = [x.strip() for x in read_text(p, kind="data", what="retention text").splitlines()]
    paras = [x for x in lines if len(x.split()) >= min_words and not x.startswith("=")]
    return [Example("", x, "text") for x in paras[:n]]


def _seed_tasks(p: Path, n: int) -> list[Example]:
    """Self-Instruct seed tasks (``instruction``, ``instances[].input/output``) or any instruction file."""
    from knowledge.reading import read_jsonl

    out = []
    for i, r in read_jsonl(p, kind="data", what="retention instructions"):
        if isinstance(r, dict) and "instances" in r and isinstance(r["instances"], list) and r["instances"]:
            inst = r["instances"][0]
            if isinstance(inst, dict) and str(inst.get("output") or "").strip():
                out.append(Example(_alpaca(str(r.get("instruction", "")), str(inst.get("input") or "")),
                                   str(inst["output"]), "instructions"))
        else:
            out.append(example_of(r, f"{p}:{i}"))
        if len(out) >= n:
            break
    return out
