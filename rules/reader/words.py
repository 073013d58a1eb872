"""The reader's handling of words: stemming and content words, negation and hedges, "it is fixed now",
and cutting a description into the parts that are read one by one."""

from __future__ import annotations

import re
from typing import Optional

from knowledge import get_kb
from knowledge.schema import KnowledgeError


_PLACEHOLDER = re.compile(r"<<(\w+)>>")
# the vocabulary the placeholders of the patterns are filled from (``use_vocabulary``): a key and, per entry
# id of the knowledge base's ``vocabulary`` section, an alternation of its words
_VOCABULARY: dict = {"key": None, "alts": {}, "kb": None}


def word_pattern(word: str) -> str:
    """A vocabulary word as a regular expression: ``*`` is any word ending, a space any run of spaces,
    every other character literal."""
    return r"\s+".join(r"\w*".join(re.escape(p) for p in w.split("*")) for w in word.split())


def use_vocabulary(kb) -> None:
    """Fill the patterns' placeholders (``<<rising>>``) from ``kb``'s vocabulary: the reader calls this with
    the knowledge base that reads the description, so an overlay's words count. Cheap when unchanged."""
    if _VOCABULARY["kb"] is kb:
        return
    entries = kb.sections.get("vocabulary", {})
    alts = {vid: "(?:" + "|".join(word_pattern(w) for w in v.words) + ")" for vid, v in entries.items()}
    _VOCABULARY.update(kb=kb, alts=alts, key=tuple(sorted(alts.items())))


def _expand(pattern: str) -> tuple:
    """(the pattern with its placeholders filled, the vocabulary key it was filled from)."""
    if "<<" not in pattern:
        return pattern, None
    if _VOCABULARY["key"] is None:
        use_vocabulary(get_kb())
    alts = _VOCABULARY["alts"]

    def fill(m):
        try:
            return alts[m.group(1)]
        except KeyError:
            raise KnowledgeError(f"The reader needs the vocabulary entry {m.group(1)!r}, which the knowledge "
                                 f"base does not define (knowledge/data/vocabulary.yaml)") from None

    return _PLACEHOLDER.sub(fill, pattern), _VOCABULARY["key"]


class _lazy:
    """A regular expression compiled on first use: this module holds dozens, and a consultation
    that reads one short description uses only some of them (compiling all costs ~40 ms).

    ``need``: words of which the text must hold one for the pattern to match at all (a necessary
    condition, checked first, so that a rule about rare wording costs nothing on other texts).
    ``<<id>>`` in the pattern is filled from the knowledge base's vocabulary (``use_vocabulary``); the
    pattern is compiled again when the vocabulary changes.
    """

    __slots__ = ("_args", "_re", "_need", "_key")

    def __init__(self, pattern: str, flags: int = 0, need: tuple = ()):
        self._args, self._re, self._need, self._key = (pattern, flags), None, need, None

    def _compiled(self):
        if self._re is None or (self._key is not None and self._key != _VOCABULARY["key"]):
            pattern, self._key = _expand(self._args[0])
            self._re = re.compile(pattern, self._args[1])
        return self._re

    def _may_match(self, text: str) -> bool:
        low = text.lower()
        return not self._need or any(w in low for w in self._need)

    def search(self, text: str):
        return self._compiled().search(text) if self._may_match(text) else None

    def finditer(self, text: str):
        return self._compiled().finditer(text) if self._may_match(text) else iter(())

    def __getattr__(self, name: str):
        return getattr(self._compiled(), name)


STOP = frozenset("""
a an the of to in on for with and or but is are was were be been being it its it's
this that these those my our their your his her them they we i you he she as at by
from after before during into over under than then so very too also just not no
model models when while has have had does do did can could will would should
its own about some any all more most much many lot lots often
""".split())

_SUFFIXES = ("ingly", "ations", "ation", "ments", "ment", "ness", "ities", "ity", "ies",
             "ing", "ed", "es", "ly", "s")

# words users write for the same thing (after lower-casing, before stemming)
_CANON = {
    "val": "validation", "valid": "validation", "dev": "validation", "eval": "validation",
    "acc": "accuracy", "los": "loss", "lr": "learning rate", "pretrained": "pre trained",
    "finetune": "fine tune", "finetuning": "fine tuning", "finetuned": "fine tuned",
    "nans": "nan", "infinity": "inf", "vram": "memory", "ram": "memory", "mem": "memory",
    "emojis": "emoji", "unbalanced": "imbalanced", "mislabelled": "mislabeled",
    "memorises": "memorizes", "memorising": "memorizing", "goes": "go", "going": "go", "went": "go", "gone": "go",
    "increases": "increase", "increasing": "increase", "increased": "increase",
    "forgotten": "forget", "forgot": "forget", "forgets": "forget",
    "decrease": "decreases", "decline": "decreases", "declines": "decreases", "declining": "decreases",
    "declined": "decreases",
}


def stem(word: str) -> str:
    for suf in _SUFFIXES:
        if len(word) > len(suf) + 2 and word.endswith(suf):
            return word[: -len(suf)]
    return word


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("-", " ").replace("_", " ").replace("\u2191", " up ").replace("\u2193", " down ")
    words = re.findall(r"\[unk\]|[a-z0-9]+", text)
    out = []
    for w in words:
        out.extend(_CANON.get(w, w).split())
    return out


def content_words(text: str) -> set[str]:
    return {stem(w) for w in _tokens(text) if w not in STOP and len(w) > 1}


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


# --- negation and hedges

_NEG = _lazy(
    r"\b(?:not|no|never|none|nothing|without|neither|nor|cannot|no\s+longer)\b|n't\b|\b(?:cant|wont|dont|doesnt|"
    r"didnt|isnt|arent|wasnt|werent|hasnt|havent|couldnt|wouldnt|shouldnt)\b", re.I)
_HEDGES = _lazy(
    r"\b(?:i'?m\s+|i\s+am\s+)?not\s+(?:really\s+|quite\s+|100%\s+)?sure\s*(?:if|whether|why|what|how|that)?\b"
    r"|\bi\s+(?:do\s+not|don'?t|dont)\s+(?:really\s+)?(?:know|understand|get)\s*(?:why|what|how|if|whether)?\b"
    r"|\bno\s+idea\s*(?:why|what|how)?\b"
    r"|\b(?:can'?t|cannot|can\s+not)\s+(?:figure\s+out|understand|tell)\s*(?:why|what|how)?\b"
    r"|\b(?:doesn'?t|does\s+not|didn'?t|did\s+not|don'?t|do\s+not|won'?t|will\s+not|isn'?t|is\s+not)\s+"
    r"(?:seem\s+to\s+)?(?:help|helping|work|working|fix|solve)\b(?=\s*(?:$|[,.;!?]|either|at\s+all|though))"
    r"|\bnot\s+only\b|\bno\s+matter\s+(?:what|how)\b|\bif\s+not\b|\bwhy\s+not\b", re.I)
_SEGMENT = _lazy(
    r"(?:\.(?=\s|$)|[;!?\n]+|\s+but\s+|,\s*but\s+|\s+however,?\s+|,?\s+and\s+then\s+|,\s*then\s+|\s+then\s+(?=it|the|i|my|val|loss)"
    r"|,?\s+and\s+also\s+|,\s*also\s+|\s+also,\s+|\s+plus\s+|\s+whereas\s+|\s+although\s+|\s+though\s+|\s+otherwise\s+)",
    re.I)
_SCOPE_END = _lazy(r"(,|\s+and\s+|\s+or\s+|\s+so\s+|\s+because\s+|\s+while\s+|\s+since\s+|\s+whereas\s+)", re.I)
_DENEG = [(_lazy(p, re.I), r) for p, r in (
    (r"\bno\s+longer\b", ""), (r"\banymore\b|\bany\s+more\b", ""), (r"\bcan(?:'?t|not)\b|\bcan\s+not\b", "can"),
    (r"\bwon'?t\b", "will"), (r"\b(\w+)n't\b", r"\1"), (r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should)nt\b", r"\1"),
    (r"\b(?:not|never|no|without|none|neither|nor)\b", ""), (r"\bnothing\b", "something"))]


def is_negated(text: str) -> bool:
    return bool(_NEG.search(text))


def affirm(text: str) -> str:
    """``text`` with its negations taken out ("the loss is not NaN" -> "the loss is NaN")."""
    for pat, rep in _DENEG:
        text = pat.sub(rep, text)
    return re.sub(r"\s+", " ", text).strip()


# Verbs and words of things going *right*: a negation over one of them states a
# problem ("does not learn", "never converges", "not enough memory"); a negation
# over anything else denies one ("no NaN", "not overfitting").
_GOOD = _lazy(
    r"\b(?:learn\w*|decreas\w*|go(?:es|ing)?\s+(?:down|below)|(?:came|come|comes|coming)\s+back|below|drop\w*|improv\w*|converg\w*|remember\w*|recall\w*|"
    r"handl\w*|fit\w*|generali[sz]\w*|work\w*|beat\w*|chang\w*|understand\w*|know\w*|recogni[sz]\w*|"
    r"predict\w*|flag\w*|detect\w*|enough|better|outperform\w*|mov\w*|budg\w*|budge|get\w*|do(?:es)?\s+well|"
    r"good|well|able|capable|fine|sense|same|normal|right|correct|ok|okay|balanced|stable|steady|consistent|"
    r"satisf\w*|match\w*|agree\w*)\b", re.I)

# Phrasings of a healthy run, or of the setup alone: a part that reads closer to one of
# these than to any symptom names nothing ("train loss keeps going down", "retention is
# fine", "I'm fine-tuning BERT on my own data").
HEALTHY = ("training went fine", "everything works as expected", "the training loss goes down normally",
           "accuracy improves every epoch", "retention is fine",
           "results look healthy", "no problems", "thanks for the help", "it converges well",
           "thanks, the performance improved with your suggestions", "now I get the correct result",
           "the loss looks healthy and keeps declining",
           # the setup a description starts from states no problem by itself
           "I am fine-tuning a pre-trained model on my own dataset", "I am training a classifier on my data")

# A sentence says the problem is gone ("After fixing those, the loss looks fine", "changing the
# batch size fixed it"): what came before is its history, not a symptom to diagnose now, unless a
# later sentence states a problem again.
_CHANGE = (r"(?:fix\w*|remov\w*|chang\w*|switch\w*|correct\w*|clean\w*|updat\w*|lower\w*|reduc\w*|add\w*|"
           r"using|used|set|setting|increas\w*|decreas\w*|replac\w*|turn\w*|disabl\w*|enabl\w*)")
_RESOLVED = _lazy(
    r"\b(?:after|since|once|by|with)\s+(?:i\s+|we\s+|you\s+)?" + _CHANGE + r"\b[^.;!?]*\b(?:fine|works?|working|"
    r"correct|normal|stable|solved|resolved|fixed|went\s+away|gone|helped|helps)\b"
    r"|\b(?:problem|issue|bug|error|it|this)\s+(?:is\s+|was\s+|got\s+|has\s+been\s+|seems\s+to\s+be\s+)?"
    r"(?:solved|resolved|fixed|gone)\b"
    r"|\b(?:fixed|solved|resolved)\s+(?:it|this|that|my\s+(?:problem|issue)|the\s+(?:\w+\s+){0,2}?(?:problem|issue|error|bug))\b"
    r"|\b(?:fixed|solved|resolved|got\s+rid\s+of|eliminated|cured)\s+(?:the\s+|my\s+|those\s+|these\s+|all\s+(?:the\s+)?)?"
    r"(?!(?:random\s+)?seeds?\b|lr\b|learning\s+rate|batch|values?\b|sizes?\b|number|length|layers?\b|weights\b)"
    r"(?:\w+\s+){0,2}?(?:nans?|infs?|oom|errors?|spikes?|explosions?|overfitting|underfitting|collapse|divergence|"
    r"forgetting|imbalance|leak\w*|crash\w*)\b"
    r"|\b(?:now|finally)\s+(?:it\s+)?(?:works|trains|converges)\b(?:\s+(?:fine|well|as\s+expected))?"
    r"|\bnow\s+(?:we'?re|we\s+are|i'?m|i\s+am|it'?s|it\s+is|everything\s+is|all\s+is)\s+(?:good|fine|ok|okay|working)\b"
    r"|\b(?:helped|did\s+the\s+trick|worked|solved\s+it)\s*[.!]*\s*$"
    r"|\bmanaged\s+to\s+(?:get|have|make|train)\b[^.;!?]*\b(?:stable|works?|working|converg\w*|smooth\w*|fine)\b"
    r"|^\W*(?:ok\w*|done|update|edit|solved)?[\s,:.!]*(?:i\s+got\s+it[\s,.!]*)?" + _CHANGE
    + r"\b[^.;!?]*\b(?:fixed|solved|helped|helps|speeds?\s+(?:\w+\s+){0,3}up|sped\s+(?:\w+\s+){0,3}up|"
    r"works?\s+(?:now|fine|well)|(?:is|was|looks?|became|becomes)\s+(?:fine|normal|stable|ok))\b", re.I,
    need=("fine", "work", "correct", "normal", "stable", "solv", "resolv", "fix", "away", "gone", "help", "trains",
          "converg", "good", "ok", "trick", "smooth", "speed", "sped", "rid", "eliminat", "cure"))
_STILL = _lazy(r"\b(?:still|but|however|except|only\s+(?:for|on|when))\b", re.I)  # a fix that left a problem
_PLEASANTRY = _lazy(r"^\W*(?:thanks?|thank\s+you|thx|cheers|ty|regards)\b[^.;!?]*$", re.I)


def says_fixed(text: str) -> bool:
    """``text`` says a problem is gone, and leaves none behind ("fixed it, but ..." does not count)."""
    m = _RESOLVED.search(text)
    return bool(m and not is_negated(m.group(0)) and not _STILL.search(text))


def resolved_at(sentences: list[str]) -> Optional[int]:
    """The index of the last sentence that says the problem is gone, or None."""
    return next((i for i in range(len(sentences) - 1, -1, -1) if says_fixed(sentences[i])), None)


HEALTHY_MARGIN = 0.03  # a healthy reading must beat the best symptom by this much (the model is weak on polarity)


def _states_problem(piece: str) -> bool:
    """A negated piece whose negation scopes over something going right ("the loss does not go down")."""
    m = _NEG.search(piece)
    return bool(m and _GOOD.search(piece[m.start():]))


# "no pretraining", "without the pre-trained weights", "no-transfer baseline" name a
# baseline, not a negation
_NO_TRANSFER = _lazy(r"\b(?:no|without)[\s-]+(?:the\s+|any\s+)?(?:pre[\s-]?train\w*|transfer)(?:\s+weights)?\b", re.I)


def split_parts(text: str) -> list[tuple[str, str]]:
    """(part, kind) pieces of a description, hedges removed. kind: "affirmed" (names
    a symptom), "problem" (a negation that states one: "does not learn") or
    "denied" (a negation that rules one out: "no NaN")."""
    text = _NO_TRANSFER.sub("from scratch", _HEDGES.sub(" ", text))
    parts: list[tuple[str, str]] = []
    for seg in _SEGMENT.split(text):
        seg = (seg or "").strip(" ,:-")
        if not seg:
            continue
        if not is_negated(seg):
            parts.append((seg, "affirmed"))
            continue
        pieces = _SCOPE_END.split(seg)
        denied = [pieces[i].strip(" ,") for i in range(0, len(pieces), 2)
                  if is_negated(pieces[i]) and not _states_problem(pieces[i])]
        if not denied:  # every negation states a problem: read the segment whole
            parts.append((seg, "problem"))
            continue
        rest: list[str] = []
        for i in range(0, len(pieces), 2):
            piece = pieces[i].strip(" ,")
            if not piece:
                continue
            if piece in denied:
                parts.append((piece, "denied"))
            else:
                joiner = (pieces[i - 1] if i else "").strip()
                rest.append((f" {joiner} " if rest and joiner not in ("", ",") else (", " if rest else "")) + piece)
        if rest:
            body = "".join(rest).strip(" ,")
            parts.append((body, "problem" if is_negated(body) else "affirmed"))
    return parts
