"""Match a free-text description of what went wrong to a symptom id.

Scores are the Dice coefficient between the content words of the text and of
each symptom's description and synonyms (after light stemming), the best
phrase per symptom; the floor is the ``symptom_match_min_score`` threshold.
"""

from __future__ import annotations

import re

from knowledge.schema import KnowledgeError

STOP = frozenset("""
a an the of to in on for with and or but is are was were be been being it its it's
this that these those my our their your his her them they we i you he she as at by
from after before during into over under than then so very too also just not no
model models when while has have had does do did can could will would should
its own about some any all more most much many lot lots often
""".split())

_SUFFIXES = ("ingly", "ations", "ation", "ments", "ment", "ness", "ities", "ity", "ies",
             "ing", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    for suf in _SUFFIXES:
        if len(word) > len(suf) + 2 and word.endswith(suf):
            return word[: -len(suf)]
    return word


def content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower().replace("-", " "))
    return {stem(w) for w in words if w not in STOP and len(w) > 1}


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def score_symptoms(text: str, kb) -> list[tuple[float, str]]:
    """(score, id) for every symptom, best first."""
    query = content_words(text)
    out = []
    for sid, s in kb.symptoms.items():
        phrases = [s.description, *s.synonyms, sid.replace("_", " ")]
        best = max(_dice(query, content_words(p)) for p in phrases)
        out.append((round(best, 3), sid))
    return sorted(out, key=lambda t: (-t[0], t[1]))


class SymptomMatchError(KnowledgeError):
    pass


def match_symptom(text: str, kb, where: str = "--symptom") -> str:
    """The id of the symptom ``text`` names (an id, or a description)."""
    key = text.strip()
    if key in kb.symptoms:
        return key
    if key.lower().replace(" ", "_").replace("-", "_") in kb.symptoms:
        return key.lower().replace(" ", "_").replace("-", "_")
    scored = score_symptoms(key, kb)
    floor = kb.threshold("symptom_match_min_score")
    if scored and scored[0][0] >= floor:
        return scored[0][1]
    near = ", ".join(sid for _, sid in scored[:3])
    raise SymptomMatchError(
        f"The symptom {text!r} of {where} matches no known symptom. "
        f"Nearest ids: {near} (see `tlexpert symptoms`)."
    )
