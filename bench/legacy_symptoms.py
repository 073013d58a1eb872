"""The free-text symptom matcher as it was before meaning-based reading (for comparison only).

Dice coefficient between the stemmed content words of the text and of each
symptom's description, synonyms and id, the best phrase per symptom, floor
0.34; an exact id (or its spaced/hyphenated form) resolves directly. It runs
on the symptoms file of that version (bench/data/legacy_symptoms.yaml), so
the comparison is the old matcher with its own knowledge.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import yaml

STOP = frozenset("""
a an the of to in on for with and or but is are was were be been being it its it's
this that these those my our their your his her them they we i you he she as at by
from after before during into over under than then so very too also just not no
model models when while has have had does do did can could will would should
its own about some any all more most much many lot lots often
""".split())
_SUFFIXES = ("ingly", "ations", "ation", "ments", "ment", "ness", "ities", "ity", "ies",
             "ing", "ed", "es", "ly", "s")
FLOOR = 0.34
SYMPTOMS = {s["id"]: s for s in yaml.safe_load(
    (Path(__file__).resolve().parent / "data" / "legacy_symptoms.yaml").read_text())["symptoms"]}


def _stem(word: str) -> str:
    for suf in _SUFFIXES:
        if len(word) > len(suf) + 2 and word.endswith(suf):
            return word[: -len(suf)]
    return word


def _words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower().replace("-", " "))
    return {_stem(w) for w in words if w not in STOP and len(w) > 1}


def _dice(a: set, b: set) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def legacy_match(text: str) -> Optional[str]:
    """The symptom id the old matcher returned, or None where it refused the text."""
    key = text.strip()
    if key in SYMPTOMS:
        return key
    k2 = key.lower().replace(" ", "_").replace("-", "_")
    if k2 in SYMPTOMS:
        return k2
    q = _words(key)
    scored = sorted(((max(_dice(q, _words(p)) for p in [s["description"], *s.get("synonyms", []),
                                                         sid.replace("_", " ")]), sid)
                     for sid, s in SYMPTOMS.items()), key=lambda t: (-t[0], t[1]))
    return scored[0][1] if scored and scored[0][0] >= FLOOR else None


def legacy_pitfall(text: str) -> Optional[str]:
    sid = legacy_match(text)
    if sid is None:
        return None
    ind = SYMPTOMS[sid]["indicates"]
    return max(ind.items(), key=lambda kv: kv[1])[0]
