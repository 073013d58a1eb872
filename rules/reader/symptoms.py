"""Read a free-text description of what went wrong: which symptoms it names, and which it rules out.

``read_symptoms(text, kb)`` returns a :class:`Reading`. In order:

1. **Names.** A symptom id, a pitfall id, a pitfall's name or one of the
   ``aliases`` of either ("overfit", "NaN loss", "exploding gradients",
   "CUDA out of memory") resolves directly. A pitfall resolves to its
   ``reported_as`` symptom(s), its defining sign (overfitting ->
   ``train_val_gap``).
2. **Parts.** Otherwise the text is cut into parts at sentence ends and at
   "but", "then", "also"..., so that "loss spikes, then it predicts one
   class" names two symptoms. Hedges ("not sure if", "I don't know why")
   are dropped, and "no pretraining" / "no-transfer baseline" name a
   baseline, not a negation. A negation ("not", "no", "never", "no longer",
   "n't", "without") over something going right ("does not learn", "never
   converges", "not enough memory") *states* a problem: the part is read
   whole, against all phrasings, the negated ones ("does not learn")
   included. A negation over anything else *denies* one: its affirmed form
   ("the loss is not NaN" -> "the loss is NaN") is read, and the symptom
   found is *ruled out*, not reported.
3. **Words first.** A part that contains all content words of a phrasing
   (or an alias) is a clear case, read without any model (fast path).
4. **Meaning.** Other parts are embedded with all-MiniLM-L6-v2
   (``rules.reader.semantic``, numpy only) and compared by cosine similarity with
   every symptom's description and synonyms; the best symptom counts when
   its similarity reaches ``symptom_semantic_min_score``, unless a healthy
   phrasing ("the training loss goes down normally") reads clearly closer.
   The reading is *ambiguous* when the best two symptoms indicate different
   pitfalls within ``symptom_ambiguity_margin``, or when the part reads
   closest to one of a distinction's vague ``cues`` ("it got worse after
   fine-tuning"), and the knowledge base has a distinction for the pair:
   both count, and the consultation asks its question (``distinctions.yaml``).
5. Without numpy/tokenizers/the packaged model (the minimal consultation
   install), step 4 falls back to word overlap (Dice over stemmed content
   words, ``symptom_match_min_score``) and the reading says what the
   semantic matcher needs.

A description that names nothing raises :class:`SymptomMatchError` with an
honest message, not a list of unrelated ids.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Optional

from knowledge.schema import KnowledgeError
from rules.reader.index import _Index, _best_per_symptom, _fix_typos, _index, _lexical_hits, _semantic, norm_name
from rules.reader.numbers import (stated_settings, _FORGET_DENIED, _FORGETS, _drop_yes_no_questions, _is_log_line,
                                  _scratch_vs_transfer, glossed, going_well, pattern_symptoms, script_of,
                                  whole_text_symptoms)
from rules.reader.words import (_PLEASANTRY, _SCOPE_END, HEALTHY, HEALTHY_MARGIN, _dice, _tokens, affirm, content_words,
                                use_vocabulary,
                                is_negated, resolved_at, says_fixed, split_parts)


# --- readings


@dataclass
class Match:
    symptom: str
    pitfall: str
    score: float
    method: str  # name | words | meaning | word-overlap
    part: str


@dataclass
class Reading:
    text: str
    matches: list[Match] = field(default_factory=list)
    ruled_out: list[Match] = field(default_factory=list)
    ambiguous: list[dict] = field(default_factory=list)  # {"part", "symptoms", "pitfalls", "scores", "distinction"}
    note: str = ""
    judgement: Optional[dict] = None  # calibrated probabilities (rules.reader.learned.Judgement.as_dict)
    stated: dict = field(default_factory=dict)  # settings the text says are in place (stated_settings)
    read_as: str = ""  # the English the text was read as, through the glossary (another language), if any

    @property
    def symptoms(self) -> list[str]:
        return list(dict.fromkeys(m.symptom for m in self.matches))

    @property
    def pitfalls(self) -> list[str]:
        return list(dict.fromkeys(m.pitfall for m in self.matches))

    def as_dict(self) -> dict:
        out = {"text": self.text, "symptoms": self.symptoms,
               "matches": [m.__dict__ for m in self.matches],
               "ruled_out": [m.__dict__ for m in self.ruled_out]}
        if self.ambiguous:
            out["ambiguous"] = self.ambiguous
        if self.note:
            out["note"] = self.note
        if self.read_as:
            out["read_as"] = self.read_as
        if self.judgement:
            out["judgement"] = self.judgement
        if self.stated:
            out["stated"] = self.stated
        return out

    def probability(self, pitfall: str) -> Optional[float]:
        """The calibrated probability that the description names ``pitfall`` first, if judged."""
        if not self.judgement:
            return None
        return next((c["probability"] for c in self.judgement["candidates"] if c["pitfall"] == pitfall), None)


class SymptomMatchError(KnowledgeError):
    pass


def _distinction(kb, a: str, b: str) -> Optional[str]:
    for did, d in kb.sections.get("distinctions", {}).items():
        if {p.value for p in d.pitfalls} == {a, b}:
            return did
    return None


def read_symptoms(text: str, kb, semantic: bool = True) -> Reading:
    """What ``text`` says went wrong: matched symptoms, ruled-out ones, ambiguities."""
    use_vocabulary(kb)  # the extractors' words are this knowledge base's (an overlay may add some)
    read_as = glossed(text, kb)
    if read_as is not None:  # another language: read as its glossary terms say, in English
        reading = read_symptoms(read_as, kb, semantic)
        reading.text, reading.read_as = text, read_as
        return reading
    idx = _index(kb)
    reading = Reading(text=text, stated=stated_settings(text))
    key = text.strip()
    if key in kb.symptoms:
        reading.matches.append(Match(key, idx.pitfall_of[key], 1.0, "name", key))
        return reading
    name = norm_name(key)
    if not name:
        return reading
    to = idx.names.get(name)
    if to is None and len(name.split()) <= 3:
        close = difflib.get_close_matches(name, list(idx.names), n=1, cutoff=0.88)
        to = idx.names[close[0]] if close else None
    if to:
        for sid in to:
            reading.matches.append(Match(sid, idx.pitfall_of[sid], 1.0, "name", key))
        return reading
    own = next((ph for ph in idx.phrases if not ph.negative and norm_name(ph.text) == name), None)
    if own is not None:  # one of the knowledge base's own phrasings, word for word
        reading.matches.append(Match(own.symptom, idx.pitfall_of[own.symptom], 1.0, "words", key))
        return reading

    key = _fix_typos(key, idx)
    asked, rest = _drop_yes_no_questions(key)
    if asked and not rest.strip():  # beside what was observed, a question still says what the user suspects
        reading.note = (f"{_QUESTION_NOTE} ({asked[0]!r}); a diagnosis needs what "
                        f"was observed")
        return reading
    for sid in whole_text_symptoms(key):  # what a sentence states across the parts it is split into
        if sid in idx.pitfall_of:
            _add(reading, Match(sid, idx.pitfall_of[sid], 1.0, "numbers", key))
    sentences = [x for x in re.split(r"(?<=[.!?])\s+|\n+", key) if x.strip()]
    at = resolved_at(sentences)
    if at is not None:
        after = " ".join(x for x in sentences[at + 1:] if not _PLEASANTRY.match(x))
        if not after.strip() or not read_symptoms(after, kb, semantic).matches:
            reading.matches = []
            reading.note = _FIXED_NOTE
            return reading
    pending: list[tuple[str, str]] = []
    for part, kind in split_parts(key):
        if kind != "denied" and says_fixed(part):
            # "the NaNs went away", "lowering the lr fixed the nan": what it names is ruled out
            _rule_out_first(reading, _lexical_hits(part, idx, negative=False), idx, part)
            continue
        if kind == "denied":
            if _rule_out_first(reading, _lexical_hits(affirm(part), idx, negative=False), idx, part):
                continue
        else:
            stated = [sid for sid in pattern_symptoms(part) if sid in idx.pitfall_of]
            for sid in stated:
                _add(reading, Match(sid, idx.pitfall_of[sid], 1.0, "numbers", part))
            hits = _lexical_hits(part, idx, negative=(kind == "problem"))
            if kind == "problem":  # what the part affirms beside its negation ("a gradient explosion, ... no longer decreases")
                pieces = _SCOPE_END.split(part)[::2]
                negated = [is_negated(x) for x in pieces]
                plain = " ".join(x for x, n in zip(pieces, negated) if not n)
                extra = _lexical_hits(plain, idx, negative=False) if plain.strip() else []
                first_neg = negated.index(True) if True in negated else 0
                # text order: the affirmed symptom first when it comes before the negation
                first = any(_lexical_hits(x, idx, negative=False) for x in pieces[:first_neg])
                hits = extra + hits if first else hits + extra
            if stated and not hits:
                continue
            if hits:
                seen = set()
                for _, ph in hits:
                    pit = idx.pitfall_of[ph.symptom]
                    if pit not in seen:
                        seen.add(pit)
                        _add(reading, Match(ph.symptom, pit, 1.0, "words", part))
                continue
        if _is_log_line(part):
            reading.note = reading.note or ("a metrics line is read by its numbers only; for a whole log, run "
                                            "`tlexpert diagnose` on the file")
        elif content_words(part) and not (kind == "affirmed" and going_well(part)):
            pending.append((part, kind))
    if pending:
        sem = _semantic(kb, idx) if semantic else None
        if sem is None:
            if semantic and idx.semantic_error:
                reading.note = f"read by words only: {idx.semantic_error}"
            _read_by_overlap(reading, pending, idx, kb)
        else:
            _read_by_meaning(reading, pending, idx, kb, *sem)
    forgetting = idx.pitfall_of.get("source_accuracy_drop")
    if (forgetting and _FORGETS.search(key) and not _FORGET_DENIED.search(key)
            and not any(m.pitfall == forgetting and m.method != "meaning" for m in reading.matches)):
        # the words say it outright: a reading by meaning of the same pitfall gives way to it
        reading.matches = [m for m in reading.matches if m.pitfall != forgetting]
        _add(reading, Match("source_accuracy_drop", forgetting, 1.0, "words", key))
    if "below_baseline" in idx.pitfall_of and _scratch_vs_transfer(key) < 0:  # the numbers say transfer won
        reading.matches = [m for m in reading.matches if not (m.symptom == "below_baseline" and m.method == "meaning")]
        reading.ruled_out.append(Match("below_baseline", idx.pitfall_of["below_baseline"], 1.0, "numbers", key))
    reading.ruled_out = [m for m in reading.ruled_out if m.symptom not in reading.symptoms]
    _rank(reading, kb)
    return reading


def _rank(reading: Reading, kb) -> None:
    """Strongest evidence first: names, numbers and words (certain) before readings by meaning,
    and a match before an earlier one it beats by more than ``symptom_ambiguity_margin`` (else
    text order stands); a reading by meaning far below the strongest match is dropped (the
    context around a symptom, "I am fine-tuning BERT on my own data", reads weakly as anything)."""
    if len(reading.matches) < 2:
        return
    drop = kb.threshold("symptom_context_margin")
    top = max(m.score for m in reading.matches)
    if any(m.method != "meaning" for m in reading.matches):  # a certain reading: a vague part far below it asks nothing
        reading.ambiguous = [a for a in reading.ambiguous if max(a["scores"], default=0.0) >= top - drop]
    ambiguous = {s for a in reading.ambiguous for s in a["symptoms"]}
    margin = kb.threshold("symptom_ambiguity_margin")
    ranked: list[Match] = []
    for m in reading.matches:  # text order, unless a later match is clearly stronger
        if m.method == "meaning" and m.symptom not in ambiguous and m.score < top - drop:
            continue
        at = next((i for i, r in enumerate(ranked) if m.score > r.score + margin), len(ranked))
        ranked.insert(at, m)
    reading.matches = ranked


def _add(reading: Reading, m: Match) -> None:
    if all(x.symptom != m.symptom for x in reading.matches):
        reading.matches.append(m)


def _has_evidence(part: str, idx: _Index, sid: str) -> bool:
    """Whether ``part`` has one of the words a reading by meaning needs to name ``sid`` (any, if none are set)."""
    need = idx.evidence.get(sid)
    if not need:
        return True
    toks = _tokens(part)
    return any(t.startswith(w) for t in toks for w in need)


def _rule_out_first(reading: Reading, hits, idx: _Index, part: str) -> bool:
    """Rule out the symptom of the strongest hit; whether there was one."""
    if hits:
        sid = hits[0][1].symptom
        reading.ruled_out.append(Match(sid, idx.pitfall_of[sid], 1.0, "words", part))
    return bool(hits)


def _read_by_overlap(reading: Reading, pending, idx: _Index, kb) -> None:
    floor = kb.threshold("symptom_match_min_score")
    for part, kind in pending:
        q = content_words(affirm(part) if kind == "denied" else part)
        best = max(((_dice(q, ph.words), ph) for ph in idx.phrases
                    if (kind == "problem" or not ph.negative) and _has_evidence(part, idx, ph.symptom)),
                   key=lambda t: t[0], default=(0.0, None))
        if best[1] is not None and best[0] >= floor:
            m = Match(best[1].symptom, idx.pitfall_of[best[1].symptom], round(best[0], 3), "word-overlap", part)
            (reading.ruled_out.append(m) if kind == "denied" else _add(reading, m))


def _read_by_meaning(reading: Reading, pending, idx: _Index, kb, enc, emb) -> None:
    import numpy as np

    floor = kb.threshold("symptom_semantic_min_score")
    margin = kb.threshold("symptom_ambiguity_margin")
    n_ph = len(idx.phrases)
    sem = np.array([not ph.alias for ph in idx.phrases])
    neg = np.array([ph.negative for ph in idx.phrases])
    texts = [affirm(part) if kind == "denied" else part for part, kind in pending]
    vecs = enc.encode(texts)
    n_h = len(HEALTHY)
    for (part, kind), v in zip(pending, vecs):
        scores = emb @ v
        unsupported = np.array([not _has_evidence(part, idx, ph.symptom) for ph in idx.phrases])
        healthy = float(scores[n_ph:n_ph + n_h].max())
        cue_scores = scores[n_ph + n_h:]
        mask = sem & (np.ones_like(neg) if kind == "problem" else ~neg) & ~unsupported
        best = _best_per_symptom(scores[:n_ph], idx.phrases, mask)
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        top = ranked[0][1] if ranked else 0.0
        if kind == "affirmed" and len(cue_scores):
            c = int(cue_scores.argmax())
            if cue_scores[c] >= floor and cue_scores[c] > top and cue_scores[c] > healthy:
                did = idx.cues[c][0]
                d = kb.sections["distinctions"][did]
                cands = [a.symptoms[0] for a in d.answers[:2]]
                cands.sort(key=lambda sid: -best.get(sid, 0.0))
                sc = [round(best.get(sid, 0.0), 3) for sid in cands]
                for sid, x in zip(cands, sc):
                    _add(reading, Match(sid, idx.pitfall_of[sid], x, "meaning", part))
                reading.ambiguous.append({"part": part, "symptoms": cands, "pitfalls": [idx.pitfall_of[x] for x in cands],
                                          "scores": sc, "distinction": did})
                continue
        if not ranked or top < floor or (kind != "denied" and healthy > top + HEALTHY_MARGIN):
            continue
        sid, score = ranked[0]
        pit = idx.pitfall_of[sid]
        if kind == "denied":
            reading.ruled_out.append(Match(sid, pit, round(score, 3), "meaning", part))
            continue
        _add(reading, Match(sid, pit, round(score, 3), "meaning", part))
        other = next(((s, sc) for s, sc in ranked[1:] if idx.pitfall_of[s] != pit), None)
        if other and other[1] >= floor and score - other[1] < margin:
            did = _distinction(kb, pit, idx.pitfall_of[other[0]])
            if did:
                _add(reading, Match(other[0], idx.pitfall_of[other[0]], round(other[1], 3), "meaning", part))
                reading.ambiguous.append({"part": part, "symptoms": [sid, other[0]],
                                          "pitfalls": [pit, idx.pitfall_of[other[0]]],
                                          "scores": [round(score, 3), round(other[1], 3)], "distinction": did})


_FIXED_NOTE = "the description says the problem was fixed: nothing left to diagnose"
_QUESTION_NOTE = "it only asks whether something is the case"


def unmatched_message(reading: Reading, where: str) -> str:
    if reading.note == _FIXED_NOTE:
        return (f"The symptom {reading.text!r} of {where} says the problem was fixed: nothing is left to "
                f"diagnose. Describe what is still wrong, or leave {where} out.")
    msg = f"The symptom {reading.text!r} of {where} names no symptom this knowledge base knows"
    if reading.ruled_out:
        msg += " (it rules out " + ", ".join(dict.fromkeys(m.symptom for m in reading.ruled_out)) + ")"
    msg += ". Say what you observed (loss, accuracy, memory, speed, labels...) or use an id of `tlexpert symptoms`."
    if reading.note:
        msg += f" Note: {reading.note}."
    return msg


def not_sure_message(reading: Reading, where: str, judgement) -> str:
    cands = [(p, q) for p, q in judgement.candidates if q >= 0.05][:3]
    shown = ", ".join(f"{p.replace('_', ' ')} ({q:.0%})" if p != "none" else f"no known problem ({q:.0%})"
                      for p, q in cands)
    return (f"Not sure what {where} {reading.text!r} describes: it could be {shown}; no reading reaches the "
            f"{judgement_floor(judgement):.0%} this reader needs to be right often enough. Say what you measured "
            f"and on which split ('training loss 0.2, validation loss rising from 0.5 to 0.9'), or use an id "
            f"of `tlexpert symptoms`.")


def judgement_floor(judgement) -> float:
    from rules.reader.learned import get_model

    m = get_model()
    return m.abstain_below if m else 0.0


def calibrate(reading: Reading, kb) -> Optional[object]:
    """Judge ``reading`` with the calibrated classifier (``rules.reader.learned``): record the
    probabilities on it, and let the classifier settle what the patterns read by meaning or missed
    (its first pitfall first; a pitfall the patterns missed added by its reported symptom). Returns the
    Judgement, or None when there is no model or encoder (the reading stands as read)."""
    if reading.note == _FIXED_NOTE or (reading.ruled_out and not reading.matches):
        return None  # the text says the problem was fixed, or denies one: nothing for a classifier to add
    if not reading.matches and (reading.note.startswith(_QUESTION_NOTE) or script_of(reading.text)):
        return None  # only a question, or a script the English encoder cannot read: refused as such
    from rules.reader.learned import judge

    j = judge(reading)
    if j is None:
        return None
    reading.judgement = j.as_dict()
    if j.by.startswith("path:") or j.abstain:
        return j
    top, p = j.top
    if top == "none":
        if all(m.method == "meaning" for m in reading.matches):
            reading.matches = []  # read by meaning only, and the classifier reads no problem in it
        return j
    idx = _index(kb)
    have = [m for m in reading.matches if m.pitfall == top]
    if have:
        reading.matches = have + [m for m in reading.matches if m.pitfall != top]
    else:
        pit = kb.pitfalls.get(top)
        to = (list(pit.reported_as) or list(pit.symptoms[:1])) if pit is not None else []
        sid = next((x for x in to if x in idx.pitfall_of), None)
        if sid is not None:
            reading.matches.insert(0, Match(sid, top, round(p, 3), "classifier", reading.text))
    return j


def match_symptoms(text: str, kb, where: str = "--symptom", reading_sink: Optional[list] = None) -> list[str]:
    """The ids of the symptoms ``text`` names ([] when it only rules some out). A description the
    patterns read by meaning and the calibrated reader is not sure about is refused with the
    candidates and what would settle it; one they read not at all, and the classifier is not sure of
    either, names nothing."""
    reading = read_symptoms(text, kb)
    j = calibrate(reading, kb)
    if reading_sink is not None:
        reading_sink.append(reading)
    if j is not None and j.abstain and reading.matches and all(m.method == "meaning" for m in reading.matches):
        raise SymptomMatchError(not_sure_message(reading, where, j))
    if not reading.matches and not reading.ruled_out:
        script = script_of(text)
        if script:
            raise SymptomMatchError(
                f"The symptom {text!r} of {where} is written in a {script if len(script) <= 3 else script.title()} script; descriptions are read in "
                f"English (the patterns and the sentence encoder, all-MiniLM-L6-v2, are English), and in Chinese "
                f"through the knowledge base's glossary of the field's terms, which found too little here. Describe "
                f"it in English, or use an id of `tlexpert symptoms`.")
        raise SymptomMatchError(unmatched_message(reading, where))
    return reading.symptoms


def match_symptom(text: str, kb, where: str = "--symptom") -> str:
    """The id of the main symptom ``text`` names."""
    ids = match_symptoms(text, kb, where)
    if not ids:
        raise SymptomMatchError(unmatched_message(read_symptoms(text, kb), where))
    return ids[0]


# --- the matcher before meaning-based reading (kept to measure against; bench/symptom_matcher.py)


