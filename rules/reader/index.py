"""The knowledge side of the reader: every symptom's phrasings (description, synonyms, aliases) indexed
by their content words, and embedded for the semantic matcher, built once per knowledge base."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Optional

from rules.reader.words import HEALTHY, STOP, _tokens, content_words, is_negated, stem


@dataclass
class _Phrase:
    symptom: str
    text: str
    words: frozenset
    tokens: tuple
    negative: bool
    alias: bool


@dataclass
class _Index:
    phrases: list[_Phrase]
    names: dict[str, list[str]]  # normalized name -> symptom ids
    pitfall_of: dict[str, str]
    cues: list = field(default_factory=list)  # (distinction id, vague phrasing)
    evidence: dict = field(default_factory=dict)  # symptom id -> lower-cased evidence words
    embeddings: object = None
    semantic_error: Optional[str] = None


_INDEX: dict[int, _Index] = {}


def norm_name(text: str) -> str:
    return " ".join(_tokens(text.strip().strip("?!.:;"))) if text else ""


def _index(kb) -> _Index:
    idx = _INDEX.get(id(kb))
    if idx is None:
        idx = _INDEX[id(kb)] = _cached_index(kb)
    return idx


def _cached_index(kb) -> _Index:
    """The index, through a pickle beside the knowledge base's own, keyed by the knowledge files and
    this module (building it tokenises some 500 phrases: ~10 ms of a consultation's 0.5 s)."""
    import hashlib
    import os

    from knowledge.cache import pickle_cached

    source, key = getattr(kb, "source_key", None), None
    if source:
        st = os.stat(__file__)
        key = hashlib.sha256(f"{source}|{st.st_mtime_ns}|{st.st_size}".encode()).hexdigest()[:24]
    return pickle_cached("symptom-index", key, lambda: _build_index(kb), _Index)


def _build_index(kb) -> _Index:
    phrases: list[_Phrase] = []
    names: dict[str, list[str]] = {}
    pitfall_of = {}
    for sid, s in kb.symptoms.items():
        pitfall_of[sid] = max(s.indicates.items(), key=lambda kv: kv[1])[0]
        for n in (sid, *s.aliases):
            names.setdefault(norm_name(n), [sid])
        for text, alias in ((s.description, False), *((x, False) for x in s.synonyms), *((x, True) for x in s.aliases)):
            phrases.append(_Phrase(sid, text, frozenset(content_words(text)), tuple(_tokens(text)),
                                   is_negated(text), alias))
    for pid, p in kb.pitfalls.items():
        to = list(p.reported_as) or list(p.symptoms[:1])
        if not to:
            continue
        for n in (pid, p.name, *p.aliases):
            names.setdefault(norm_name(n), to)
        for a in p.aliases:
            for sid in to:
                phrases.append(_Phrase(sid, a, frozenset(content_words(a)), tuple(_tokens(a)), False, True))
    cues = [(did, c) for did, d in kb.sections.get("distinctions", {}).items() for c in d.cues]
    evidence = {sid: tuple(w.lower() for w in s.evidence_words) for sid, s in kb.symptoms.items() if s.evidence_words}
    return _Index(phrases, names, pitfall_of, cues, evidence=evidence)


def _semantic(kb, idx: _Index):
    """(encoder, phrase embeddings) or None, remembering why not."""
    if idx.embeddings is not None:
        return idx.embeddings
    if idx.semantic_error:
        return None
    from rules.reader import semantic

    try:
        enc = semantic.get_encoder()
        emb = semantic.phrase_embeddings(enc, [p.text for p in idx.phrases] + list(HEALTHY)
                                         + [c for _, c in idx.cues])
    except semantic.SemanticUnavailable as exc:
        idx.semantic_error = str(exc)
        return None
    idx.embeddings = (enc, emb)
    return idx.embeddings


# --- matching a part against the index by its words


def _contains(tokens: list[str], phrase: tuple) -> bool:
    n = len(phrase)
    return n > 0 and any(tuple(tokens[i:i + n]) == phrase for i in range(len(tokens) - n + 1))


def _near(stems: list[str], ph) -> bool:
    """An alias of two or more content words whose words all occur, in order, within two extra
    words of each other ("loss starts exploding" for "loss exploding")."""
    want = [stem(w) for w in ph.tokens if w not in STOP and len(w) > 1]
    if len(want) < 2 or len(want) != len(ph.tokens):
        return False
    for i, w in enumerate(stems):
        if w != want[0]:
            continue
        j = 1
        for k in range(i + 1, min(len(stems), i + len(want) + 2)):
            if j < len(want) and stems[k] == want[j]:
                j += 1
        if j == len(want):
            return True
    return False


def _lexical_hits(part: str, idx: _Index, negative: bool) -> list[tuple[float, _Phrase]]:
    """Phrases (of the given polarity) that ``part`` clearly states: all their content words, or the alias itself."""
    toks = _tokens(part)
    words = {stem(w) for w in toks if w not in STOP and len(w) > 1}
    hits = []
    stems = [stem(w) for w in toks]
    content = [stem(w) for w in toks if w not in STOP and len(w) > 1]
    for ph in idx.phrases:
        if ph.negative != negative:
            continue
        if ph.alias:
            if _contains(toks, ph.tokens) or _near(stems, ph):
                hits.append((1.0 + 0.01 * len(ph.tokens), ph))
        elif len(ph.words) >= 2 and ph.words <= words and (len(ph.words) >= 4 or _close(content, ph.words)):
            hits.append((1.0 + 0.01 * len(ph.words), ph))
    return sorted(hits, key=lambda h: -h[0])


def _close(stems: list[str], wanted: frozenset, slack: int = 1) -> bool:
    """The words of a short phrasing (two or three content words) stated together: all of them within
    a window of their number plus ``slack`` content words (``stems``: the part's content words), in any order. Scattered over a sentence they say
    something else ("the gap between training and validation slowly widens" is not "training is slow")."""
    span = len(wanted) + slack
    pos = [i for i, w in enumerate(stems) if w in wanted]
    for a in range(len(pos)):
        seen = set()
        for b in range(a, len(pos)):
            if pos[b] - pos[a] >= span:
                break
            seen.add(stems[pos[b]])
            if len(seen) == len(wanted):
                return True
    return False


def _best_per_symptom(scores, phrases, mask) -> dict[str, float]:
    best: dict[str, float] = {}
    for i, ph in enumerate(phrases):
        if mask[i] and scores[i] > best.get(ph.symptom, -1.0):
            best[ph.symptom] = float(scores[i])
    return best


def _fix_typos(text: str, idx: _Index) -> str:
    """Long words one or two letters off a one-word name ("overfilling", "underfiting") read as that name."""
    long_names = [n for n in idx.names if " " not in n and len(n) >= 9]

    def fix(m: re.Match) -> str:
        w = m.group(0)
        if w.lower() in idx.names:
            return w
        close = difflib.get_close_matches(w.lower(), long_names, n=1, cutoff=0.8)
        return close[0] if close else w
    return re.sub(r"[A-Za-z]{9,}", fix, text)
