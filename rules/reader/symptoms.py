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
import math
import re
from dataclasses import dataclass, field
from typing import Optional

from knowledge.schema import KnowledgeError

class _lazy:
    """A regular expression compiled on first use: this module holds dozens, and a consultation
    that reads one short description uses only some of them (compiling all costs ~40 ms).

    ``need``: words of which the text must hold one for the pattern to match at all (a necessary
    condition, checked first, so that a rule about rare wording costs nothing on other texts).
    """

    __slots__ = ("_args", "_re", "_need")

    def __init__(self, pattern: str, flags: int = 0, need: tuple = ()):
        self._args, self._re, self._need = (pattern, flags), None, need

    def _compiled(self):
        if self._re is None:
            self._re = re.compile(*self._args)
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


# --- numbers that carry the meaning ("loss went from 0.7 to 1e6", "fraud is 0.17% of transactions")

_NUM = r"([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)"
_ABOUT = r"(?:~\s*|\u2248\s*|about\s+|around\s+|approx(?:imately|\.)?\s+|roughly\s+)?"
_LOSS_MOVE = _lazy(r"\bloss\b[^0-9~]{0,40}?\bfrom\s+" + _ABOUT + _NUM + r"\s*(?:to|->|\u2192)\s*" + _ABOUT + _NUM
                        + r"|\bloss\b[^0-9~]{0,20}?" + _ABOUT + _NUM + r"\s*(?:->|\u2192|=>)\s*" + _ABOUT + _NUM, re.I, need=("loss",))
_STUCK = r"(?:stays?|stayed|staying|stuck|remains?|remained|plateau\w*|sits?|hovers?|hovering|is\s+always|always|constant|flat|"\
         r"(?:is\s+|was\s+)?still)"
# a loss that sits at ln(k) for some class count k: the loss of a uniform guess
_LOSS_STUCK = _lazy(r"\bloss\b(?:[^.;]|\.(?=\d)){0,60}?\b" + _STUCK + r"\b\s*(?:at|around|near|on)?\s*" + _ABOUT + _NUM, re.I, need=("loss",))
# an accuracy that sits at 1/k: chance for k balanced classes, or an unchanging guess
_ACC_STUCK = _lazy(r"\bacc\w*\b[^.;]{0,60}?\b" + _STUCK + r"\b\s*(?:at|around|near|on|=)?\s*" + _ABOUT + _NUM
                        + r"\s*(%?)|\b" + _STUCK + r"\s+" + _ABOUT + _NUM + r"\s*(%)", re.I, need=("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"))
_SHARE = _lazy(_NUM + r"\s*%\s*(?:of\s+(?:the\s+|all\s+|our\s+|my\s+)?(\w+)|(?:are|is)\s+(?:class\s+)?\w+)", re.I, need=("%",))
_SHARE_OF = r"data|dataset|samples|examples|labels|rows|records|images|transactions|tweets|reviews|instances"
_SLOW_DECREASE = 0.2  # a loss that fell by less than a fifth over the run has barely moved
_EXPLODED = 10.0  # a loss that ended ten times above where it began diverged
_IMBALANCED = (5.0, 80.0)  # one class at most 5% or at least 80% of the data: imbalanced


_TRAIN = r"(?:train\w*|tr|training)"
_VAL = r"(?:val\w*|dev|eval\w*|test)"
_DOWN = r"(?:down|decreas\w*|fall\w*|fell|drop\w*|go(?:es)?\s+down|improv\w*|lower\w*)"
_UP = r"(?:up|increas\w*|ris\w*|rose|climb\w*|grow\w*|go(?:es)?\s+up|higher|worse\w*)"
_PATTERNS = [
    # the two curves moving apart: training loss down while validation loss goes up
    (_lazy(rf"\b{_TRAIN}\s+loss\b[^.;]{{0,25}}?\b{_DOWN}\b.{{0,40}}?\b{_VAL}\s+loss\b[^.;]{{0,25}}?\b{_UP}\b"
                rf"|\b{_VAL}\s+loss\b[^.;]{{0,25}}?\b{_UP}\b.{{0,40}}?\b{_TRAIN}\s+loss\b[^.;]{{0,25}}?\b{_DOWN}\b", re.I, need=("loss",)),
     "val_loss_rising"),
    # the validation loss alone going up: the curve of overfitting ("the eval loss keeps increasing")
    (_lazy(rf"\b{_VAL}\s+loss\b[^.;,]{{0,20}}?\b(?:keeps?\s+|starts?\s+|begins?\s+(?:to\s+)?|is\s+|was\s+)?"
                rf"(?:increas\w*|ris\w*|rose|climb\w*|grow\w*|go(?:es|ing)?\s+up|went\s+up)\b", re.I, need=("loss",)), "val_loss_rising"),
    # the accelerator waits: "GPU utilization is from 0% to 90%, most of the time 0%", "gpu util is low"
    (_lazy(r"\b(?:gpu|cuda|device)[\s-]*(?:util\w*|usage|load)\b[^.;]{0,40}?\b(?:low|0\s*%|[1-3]?[0-9]\s*%|drops?|"
                r"not\s+stable|fluctuat\w*|idle|spiky)"
                r"|\b(?:gpu|cuda|device)\b[^.;]{0,25}?\b(?:is|sits|stays|seems)\s+(?:nearly\s+|mostly\s+|almost\s+)?idle\b",
           re.I, need=("gpu", "cuda", "device")), "gpu_underused"),
    # "very slow, stopped after 1 hour" (not "very slow convergence": that is the loss, not the clock)
    (_lazy(r"\b(?:very|super|extremely|too|so|really|painfully|incredibly|unbearably)\s+slow\b"
                r"(?!\s+(?:converg\w*|decreas\w*|learn\w*|progress\w*|improv\w*))", re.I, need=("slow",)), "slow_steps"),
    # both curves bad together: no gap, both high/low/bad
    (_lazy(rf"\bboth\s+(?:are\s+|stay\s+|remain\s+)?(?:bad|poor|high|low|terrible|awful|stuck|flat)\b"
                rf"|\b(?:bad|poor|high|low|stuck|flat)\s+(?:on|for)\s+both\b", re.I, need=("both",)), "high_train_loss"),
    # a metric that never moves
    (_lazy(r"\b(?:acc\w*|f1|metric|score|predict\w*|outputs?)\b[^.;]{0,40}?\b(?:always\s+(?:the\s+)?same|"
                r"(?:is|are|stays?|remains?)\s+(?:exactly\s+)?(?:the\s+)?same(?!\s+as)|identical|constant|(?:is|are|does|do)\s*n[o']?t\s+change|"
                r"never\s+changes?|not\s+chang\w*)\b", re.I, need=("same", "identical", "constant", "chang")), "metric_constant"),
    # the rare classes named as the ones that fail ("the small classes' recall is 0", "biased towards the majority class")
    (_lazy(r"\b(?:small(?:er)?|minority|rare|minor|under[\s-]?represented|infrequent)\s+class(?:es|'s|es'|')?\b"
                r"|\bbias\w*\s+(?:towards?|to)\s+(?:the\s+)?(?:majority|dominant|most\s+frequent|bigger|larger)\s+class", re.I, need=("class",)),
     "minority_class_missed"),
]


def pattern_symptoms(part: str) -> list[str]:
    """Symptoms stated by the shape of ``part`` rather than its words: "tr loss \u2193 val loss \u2191",
    "no gap, both bad", "the acc is always the same", and what its numbers say (``numeric_symptoms``)."""
    text = part.replace("\u2191", " up ").replace("\u2193", " down ")
    return list(dict.fromkeys([sid for pat, sid in _PATTERNS if pat.search(text)] + numeric_symptoms(part)))


_SPLIT_WORDS = r"(?:train\w*|val\w*|dev|eval\w*|test\w*|held[\s-]?out|unseen)"
_WELL = r"(?:works?|working|good|great|fine|well|high|excellent|perfect|nice)"
_BADLY = (r"(?:bad|badly|poor\w*|tanks?|drops?|dropped|fails?|failed|terrible|awful|worse|low|garbage|struggles?|"
          r"falls?\s+apart|(?:does|do|did|is|are)\s*(?:n[o']?t|not)\s+(?:work\w*|good|well|great)(?:\s+at\s+all)?)")
# good on one kind of data, bad on another: the data changed (unless the two are training and validation data)
_GOOD_THEN_BAD = _lazy(rf"\b{_WELL}\w*\b[^.;]{{0,40}}?\b(?:on|for|with)\s+([^.;]{{1,80}}?),?\s+but\s+"
                            rf"[^.;]{{0,40}}?\b{_BADLY}\b[^.;]{{0,20}}?\b(?:on|for|with)\s+([^.;]{{1,40}})", re.I, need=("but",))
_SENSED = r"\b(?:cameras?|sensors?|photos?|images?|pictures?|scans?|scanners?|lighting)\b"
# one output for everything ("outputs 'positive' for every review", "no matter the image, the result is
# always the police class")
_ONE_OUTPUT = _lazy(r"\b(?:outputs?|predicts?|predicting|predicted|returns?|classifies|labels?|gives?|says?)\b"
                         r"[^.;]{0,40}?\b(?:for|on|to)\s+(?:every|each|all)(?:\s+(?:single|the|of\s+the))?\s+"
                         r"(?!(?:epochs?|steps?|iterations?|batch\w*|times?|runs?|seeds?)\b)\w+"
                         r"|\b(?:results?|predictions?|outputs?|answers?|it)\b[^.;]{0,25}?\balways\b[^.;]{0,30}?\bclass\b"
                         r"|\b(?:matter|whatever)\b[^.;]{0,40}?\balways\b[^.;]{0,40}?\b(?:class|label|same)\b"
                         # the passive: "every single test image gets labelled as 'cat'"
                         r"|\b(?:every|each|all)(?:\s+(?:single|of\s+the|the))?\s+(?:\w+\s+){0,3}?(?:is|are|gets?|got|was|were)\s+"
                         r"(?:labell?ed|classified|predicted|tagged|marked|recogni[sz]ed)\s+as\b",
                    re.I, need=("every", "each", "all", "always"))


def whole_text_symptoms(text: str) -> list[str]:
    """What a whole sentence states where its parts alone do not: "the loss jumps from .09 to .69
    and then stays at .69" (the part "stays at .69" has lost its subject); "works great on lab
    photos but tanks on customer pictures" (split at "but", neither half names a shift)."""
    out = [sid for sid in numeric_symptoms(text) if sid == "loss_at_chance"]
    m = _GOOD_THEN_BAD.search(text)
    if m:
        good, bad = m.groups()
        if re.search(r"\btrain", good, re.I) and re.search(rf"\b{_SPLIT_WORDS}", bad, re.I):
            out.append("train_val_gap")  # good on the training data, bad on held-out data
        elif re.search(_SENSED, good + " " + bad, re.I):
            out.append("input_conditions_differ")
        else:
            out.append("distribution_gap")
    if _ONE_OUTPUT.search(text):
        out.append("majority_class_collapse")
    if _high_accuracy_low_other(text):
        out.append("minority_class_missed")
    if (_BELOW_SCRATCH.search(text) or (_SCRATCH.search(text) and _COMPARED.search(text) and not _FORGOT.search(text))
            or _scratch_vs_transfer(text) > 0):
        out.append("below_baseline")
    m = _WORSE_ON_NEW.search(text) or _OTHER_DOMAIN.search(text) or _WHEN_USED.search(text)
    if m and not _FORGOT.search(text) and "distribution_gap" not in out and "input_conditions_differ" not in out:
        out.append("input_conditions_differ" if re.search(_SENSED, m.group(0), re.I) else "distribution_gap")
    out += [sid for sid in _log_line_symptoms(text) if sid not in out]
    return out


# "works on stock photos, but when I take a photo of my friend ...", "trained with daytime pictures, but when I
# use that model at night ...": the model met data unlike what it was trained or checked on
_WHEN_USED = _lazy(r"\b(?:train\w*|works?|worked|good|great|fine|accura\w*|correct)\b[^?]{0,200}?\b(?:but|however),?\s+when\s+"
                        r"(?:i|we|you|they|users?)\s+(?:am\s+|are\s+)?(?:use|using|apply|applying|test|testing|run|running|"
                        r"try|trying|take|taking|deploy\w*|feed\w*|put\w*)\b(?![^.;?]{0,40}?\b(?:lr|learning\s+rate|batch|"
                        r"fp16|bf16|precision|optimi[sz]er|gpus?|cpus?|epochs?|layers?|dropout|scheduler)\b)"
                        r"[^.;?]{0,60}?\b(?:on|in|for|with|at|to|photo\w*|pictures?|images?|data|model|it)\b", re.I, need=("when",))
# "forgets the old languages", "the original knowledge is forgotten" (not "I forgot to mention")
_FORGETS = _lazy(r"\bforg[eo]t(?:s|ten|ting)?\b(?!\s+(?:to|about|that|the\s+link|it\b))"
                      r"|\blos(?:es|t|ing|e)\s+(?:the|its|their|his|her|all)\s+(?:\w+\s+)?abilit\w*"
                      r"|\b(?:no\s+longer|not|n't|cannot|can'?t)\s+(?:\w+\s+){0,2}(?:recogni[sz]\w*|detect\w*|classif\w*|predict\w*)\s+"
                      r"(?:the\s+|any\s+(?:of\s+)?(?:the\s+)?)?(?:coco'?s?|imagenet'?s?|original|old|previous|pre-?trained|existing|base)\b"
                      # after adapting: the figure on what it was trained on first went down
                      r"|\bafter\b[^.;]{0,60}?\b(?:fine[\s-]?tun\w*|train\w*|adapt\w*)\b[^.]{0,120}?\b(?:original|old|previous|source|general)\s+"
                      r"(?:\w+\s+){0,2}?(?:accuracy|performance|scores?|results?|tasks?|test\w*|data\w*|photos|images|classes|benchmarks?)\b"
                      r"[^.;]{0,40}?\b(?:drop\w*|fell|falls?|decreas\w*|degrad\w*|worse|went\s+down|plummet\w*)",
                      re.I, need=("forg", "abilit", "recogn", "detect", "classif", "predict", "original", "old", "previous", "source", "general"))
_FORGET_DENIED = _lazy(r"\b(?:not|no|never|without|n't|nt)\s+(?:\w+\s+){0,2}forg[eo]t|"
                            r"\bforg[eo]t\w*\s+(?:nothing|less)\b|\bforgetting\s+(?:is|was)\s+(?:not|no|fine|low)\b",
                            re.I)
# worse on data the model did not see the like of: "worse on the new hospital's scans", "trained on news ... when
# I use it for the finance domain it fails"
_WORSE_ON_NEW = _lazy(r"\b(?:worse|bad|badly|poor\w*|drops?|dropped|fails?|failed|tanks?|low)\b[^.;]{0,30}?\b(?:on|for|with|in)\s+"
                           r"(?:the\s+|our\s+|my\s+|a\s+)?(?:new|other|another|different|real[\s-]world|production|"
                           r"customer|external|outside)\s+(?!tasks?\b|class\w*\b|labels?\b|languages?\b)[\w']+(?:\s+[\w']+)?", re.I, need=("new", "other", "different", "real", "production", "customer", "external", "outside"))
_OTHER_DOMAIN = _lazy(r"\btrained\s+on\b[^?]{0,160}?\b(?:use|using|apply|applying|test|testing|run|running|deploy\w*)\b"
                           r"[^.;?]{0,30}?\b(?:on|for|to|in)\b(?![^.;?]{0,30}?\b(?:test|val\w*|dev|held[\s-]?out|"
                           r"train\w*)\b)[^.;?]{0,30}?\b(?:domain|images?|data|photos?|scans?|texts?|documents?|emails?|"
                           r"videos?|audio|recordings?)\b(?=[^?]*\b(?:fail\w*|poor\w*|worse|bad\w*|"
                           r"wrong|miss\w*|(?:does|do|did)\s*n[o']?t\s+work))", re.I, need=("trained",))


# the model without transfer, and a comparison with it: "from scratch I get 89%", "without pretraining
# ... it may lead to a worse performance", "not so good comparing to rnn based models"
_SCRATCH = _lazy(r"\bfrom\s+scratch\b|\brandom(?:ly)?[\s-]+init\w*|\bwithout\s+(?:the\s+|any\s+)?pre[\s-]?train\w*"
                      r"|\b(?:basic|simple|custom|small|shallow|own|vanilla|plain)\s+(?:cnn|rnn|lstm|network|net|model|classifier)\b"
                      r"|\bno\s+pre[\s-]?train\w*|\bwithout\s+loading\b", re.I, need=("scratch", "random", "pre", "loading", "basic", "simple", "custom", "small", "shallow", "own", "vanilla", "plain"))
_COMPARED = _lazy(r"\b(?:worse|low|lower|less|better|higher|not\s+satisf\w*|unsatisf\w*|only\s+\d|outperform\w*|beats?|beaten|not\s+(?:as|so)\s+good|"
                       r"drop\w*|hurts?|harm\w*)\b", re.I)
_FORGOT = _lazy(r"\bforg[eo]t\w*|\boriginal\s+(?:task|knowledge|abilit\w*)|\bold\s+(?:task|classes|data)", re.I, need=("forg", "original", "old"))
_SIMPLE = (r"(?:rnn|lstm|gru|cnn|tf[\s-]?idf|svm|logistic\s+regression|baseline|naive\s+bayes|xgboost|"
           r"bag[\s-]of[\s-]words|classical|simpler|smaller)")
_BELOW_SCRATCH = _lazy(
    r"\b(?:worse|lower|less|not\s+(?:as|so)\s+good|(?:can\s*n[o']?t|cannot|not)\s+(?:even\s+)?(?:be\s+)?(?:as\s+good|beat|match))"
    r"\b[^.;]{0,30}?\b(?:than|as|compar\w+\s+(?:to|with)|to)\b[^.;]{0,25}?\b" + _SIMPLE + r"\w*"
    r"|\b(?:further|continued|domain[\s-]adaptive|intermediate|additional)\s+pre[\s-]?train\w*\b(?:(?!forg[eo]t|original)[^?])"
    r"{0,120}?\b(?:worse|lower|hurts?|drops?|dropped)\b", re.I, need=("rnn", "lstm", "gru", "cnn", "tf", "svm", "logistic", "baseline", "naive", "xgboost", "bag", "classical", "simpler", "smaller", "pre"))


_SCORE_AFTER = r"[^0-9;]{0,60}?(?<![\w.])" + _NUM + r"\s*%"
_SCRATCH_SCORE = _lazy(r"(?:from\s+scratch|random(?:ly)?[\s-]+init\w*|without\s+(?:the\s+|any\s+)?pre[\s-]?train\w*|"
                       r"(?:basic|simple|custom|small|shallow|own|vanilla|plain)\s+(?:cnn|rnn|lstm|network|net|model))"
                       + _SCORE_AFTER, re.I, need=("%",))
_TRANSFER_SCORE = _lazy(r"(?:transfer(?:\s+learning)?|pre[\s-]?trained|fine[\s-]?tun\w*|"
                        r"(?:imagenet|coco|source|pre[\s-]?trained)(?:[\s-]\w+)?\s+(?:weights|checkpoints?|init\w*))"
                        + _SCORE_AFTER,
                        re.I, need=("%",))


# A yes/no question ("is my model overfitting?", "could it be a learning-rate problem?") asks about a
# hypothesis; it does not report what was seen. A why/how question presupposes what it asks about ("why
# does my loss become NaN?") and is read as a statement.
_YES_NO = re.compile(r"^\W*(?:is|are|am|was|were|could|can|does|do|did|should|might|may|would|will|has|have)\b"
                     r"[^?]*\?\s*$", re.I)


def _drop_yes_no_questions(text: str) -> tuple[list[str], str]:
    """(the yes/no questions asked, the text without them)."""
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    asked = [x.strip() for x in sentences if _YES_NO.match(x)]
    if not asked:
        return [], text
    return asked, " ".join(x for x in sentences if not _YES_NO.match(x))


_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")


def script_of(text: str) -> Optional[str]:
    """The script most of a text's letters are in when it is not Latin ("CJK", "CYRILLIC", "ARABIC"...),
    else None."""
    import unicodedata

    letters = [c for c in text if c.isalpha()]
    if not letters or sum(bool(_LATIN.match(c)) for c in letters) * 2 >= len(letters):
        return None
    names = {}
    for c in letters:
        if not _LATIN.match(c):
            n = unicodedata.name(c, "OTHER").split()[0]
            names[n] = names.get(n, 0) + 1
    return max(names, key=names.get)


def _scratch_vs_transfer(text: str) -> int:
    """+1 where the score beside the model without transfer is higher ("transfer learning gets 85%, from
    scratch 89%"), -1 where the transferred one's is, 0 where the text gives no such pair."""
    a, b = _SCRATCH_SCORE.search(text), _TRANSFER_SCORE.search(text)
    if not (a and b) or a.start() == b.start():
        return 0
    x, y = float(a.group(1)), float(b.group(1))
    return (x > y) - (x < y)



def _high_accuracy_low_other(text: str) -> bool:
    """Accuracy of 95% or more beside an F1, recall, precision or AUC far lower: the rare class is missed."""
    def values(pat: str) -> list[float]:
        out = []
        for m in re.finditer(pat + r"\w*\b[^0-9.;]{0,30}?" + _NUM + r"\s*(%?)", text, re.I):
            x = float(m.group(1))
            out.append(x / 100 if m.group(2) or x > 1 else x)
        return out
    if "acc" not in text.lower() or not re.search(r"\d", text):
        return False
    acc = values(r"\bacc")
    other = values(r"\b(?:f1|f-?score|recall|precision|auc|roc|mcc|kappa)")
    return bool(acc and other and max(acc) >= 0.95 and min(other) <= max(acc) - 0.15)


def _is_log_line(part: str) -> bool:
    """A framework's metrics line ("loss: 0.31 - accuracy: 0.87 - val_loss: 0.40"): its numbers speak, not its words."""
    pairs = len(re.findall(r"\b[a-z_]+\s*[:=]\s*[-+]?[0-9]", part, re.I))
    return pairs >= 2 and pairs * 3 >= len(content_words(part))


_LOG_PAIR = _lazy(r"\b(val_|eval_|valid_|val\s+|validation\s+)?(loss|acc\w*)\s*[:=]?\s*" + _NUM, re.I, need=("loss", "acc"))


def _log_line_symptoms(text: str) -> list[str]:
    """A framework's log line ("loss: 2.3029 - acc: 0.0993 - val_loss: 2.3026 - val_acc: 0.1000") whose loss
    is ln(k) and accuracy 1/k for one class count k: the model guesses uniformly."""
    seen: dict[str, float] = {}
    for m in _LOG_PAIR.finditer(text):
        seen[("val_" if m.group(1) else "") + ("loss" if m.group(2).lower() == "loss" else "acc")] = float(m.group(3))
    for prefix in ("val_", ""):
        loss, acc = seen.get(prefix + "loss"), seen.get(prefix + "acc")
        if loss is None or acc is None:
            continue
        acc = acc / 100 if acc > 1 else acc
        if any(abs(loss - math.log(k)) <= 0.01 * math.log(k) and abs(acc - 1 / k) <= 0.02 for k in range(2, 21)):
            return ["loss_at_chance"]
    # the same line's training and validation figures far apart: the model fits what it trains on only
    acc, vacc = seen.get("acc"), seen.get("val_acc")
    acc, vacc = (None if a is None else a / 100 if a > 1 else a for a in (acc, vacc))
    loss, vloss = seen.get("loss"), seen.get("val_loss")
    if (acc is not None and vacc is not None and acc >= 0.85 and acc - vacc >= 0.2) or \
            (loss is not None and vloss is not None and 0 <= loss < 0.3 and vloss >= 3 * max(loss, 0.05)):
        return ["train_val_gap"]
    return []


# A part that only reports things going well ("loss went down nicely, looks good"): the model
# reads its polarity poorly, so plain words decide it before any reading by meaning.
_GOING_WELL = _lazy(r"\b(?:looks?|looking|seems?)\s+(?:good|fine|great|healthy|ok|okay|normal|right)\b"
                         r"|\b(?:is|are|keeps?)\s+getting\s+better\b|\bgood\s+to\s+go\b"
                         r"|\bnicely\b|\bas\s+expected\b|\bno\s+(?:issues?|problems?)\b|\bworks?\s+(?:fine|great|well)\b",
                         re.I)
_TROUBLE = _lazy(r"\b(?:nan|inf|worse|drop\w*|stuck|fail\w*|bad|poor\w*|tank\w*|spik\w*|explod\w*|diverg\w*|"
                      r"overfit\w*|underfit\w*|forg[eo]t\w*|collaps\w*|slow\w*|memory|oom|wrong|only|but|however|"
                      r"except|though|while|loss\w*\s+(?:\w+\s+){0,2}(?:rises?|rising|increas\w*|goes\s+up|went\s+up))\b", re.I)


def going_well(part: str) -> bool:
    return bool(_GOING_WELL.search(part)) and not _TROUBLE.search(part)


def numeric_symptoms(part: str) -> list[str]:
    """Symptoms that the numbers of ``part`` state: a loss that went from A to B (B >= 10 A: it
    exploded; B a little under A: it barely moved), a class that is <= 5% or >= 80% of the data."""
    out = []
    m = _LOSS_MOVE.search(part)
    if m:
        a, b = (float(x) for x in (m.group(1, 2) if m.group(1) else m.group(3, 4)))
        if a > 0 and b >= _EXPLODED * a:
            out.append("loss_exploding")
        elif 0 < b < a and (a - b) / a < _SLOW_DECREASE and not re.search(r"\bval", part[:m.start()], re.I):
            out.append("high_train_loss")
    m = _LOSS_STUCK.search(part)
    if m:
        x = float(m.group(1))
        if any(abs(x - math.log(k)) <= 0.02 * math.log(k) for k in range(2, 21)):
            out.append("loss_at_chance")
    m = _ACC_STUCK.search(part)
    if m:
        x = float(m.group(1) or m.group(3))
        x = x / 100 if (m.group(2) or m.group(4)) or x > 1 else x
        if any(abs(x - 1 / k) <= 0.005 for k in range(2, 11)):
            out.append("metric_constant")
    for m in _SHARE.finditer(part):
        share, of = float(m.group(1)), (m.group(2) or "")
        about_data = re.fullmatch(_SHARE_OF, of, re.I) or (not of and re.search(r"\bclass", part, re.I))
        a_split = re.match(r"\s*(?:\w+\s+)?(?:for|as|is|are|go(?:es)?\s+to)\s+(?:the\s+)?(?:train|training|val|validation|"
                           r"test|testing|eval|evaluation|hold)", part[m.end():], re.I)
        if about_data and not a_split and (share <= _IMBALANCED[0] or share >= _IMBALANCED[1]) and share <= 100:
            out.append("minority_class_missed")
            break
    return out


# --- the knowledge side


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


def _distinction(kb, a: str, b: str) -> Optional[str]:
    for did, d in kb.sections.get("distinctions", {}).items():
        if {p.value for p in d.pitfalls} == {a, b}:
            return did
    return None


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


# settings a description says are already in place: "I already use batch size 1", "lr=3e-5", "with fp16"
_NEG_BEFORE = re.compile(r"\b(?:no|not|without|n't|never|instead\s+of)[^\w,.;]+(?:\w+[^\w,.;]+){0,2}$", re.I)
_STATED = (
    ("batch_size", re.compile(r"\b(?:batch[\s_-]*size|bs|per[\s_-]device[\s_-]train[\s_-]batch[\s_-]size)\s*"
                              r"(?:of|is|=|:|to|at)?\s*(\d{1,5})\b|\bbatch(?:es)?\s+of\s+(\d{1,5})\b", re.I), int),
    ("learning_rate", re.compile(r"\b(?:learning[\s_-]*rate|lr)\s*(?:of|is|=|:|to|at)?\s*"
                                 r"(\d+(?:\.\d+)?(?:e-?\d+)?|\.\d+)\b", re.I), float),
    ("max_length", re.compile(r"\b(?:max[\s_-]*(?:seq(?:uence)?[\s_-]*)?len(?:gth)?|seq(?:uence)?[\s_-]*len(?:gth)?)\s*"
                              r"(?:of|is|=|:|to|at)?\s*(\d{1,6})\b", re.I), int),
    ("precision", re.compile(r"\b(fp16|bf16|mixed[\s-]precision|amp|half[\s-]precision)\b", re.I), lambda _: "bf16-mixed"),
    ("gradient_checkpointing", re.compile(r"\b(gradient[\s_-]checkpointing|activation[\s_-]checkpointing)\b", re.I),
     lambda _: True),
    ("num_workers", re.compile(r"\bnum[\s_-]*workers\s*(?:of|is|=|:|to|at)?\s*(\d{1,3})\b", re.I), int),
)


def stated_settings(text: str) -> dict:
    """The training settings ``text`` says are in place (batch size, learning rate, sequence length,
    mixed precision, checkpointing, loader workers), each by a generic extractor; one stated under a
    negation ("without fp16") is not in place. The fixes a consultation offers are computed against
    them, so a fix the user already applied ("batch size 1 and still out of memory") is not offered."""
    out: dict = {}
    for name, pat, conv in _STATED:
        for m in pat.finditer(text):
            if _NEG_BEFORE.search(text[max(0, m.start() - 40):m.start()]):
                continue
            raw = next((g for g in m.groups() if g), None)
            try:
                out.setdefault(name, conv(raw))
            except (TypeError, ValueError):
                continue
    return out


def read_symptoms(text: str, kb, semantic: bool = True) -> Reading:
    """What ``text`` says went wrong: matched symptoms, ruled-out ones, ambiguities."""
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
        reading.note = (f"it only asks whether something is the case ({asked[0]!r}); a diagnosis needs what "
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
                f"English only (the patterns and the sentence encoder, all-MiniLM-L6-v2, are English). Describe it "
                f"in English, or use an id of `tlexpert symptoms`.")
        raise SymptomMatchError(unmatched_message(reading, where))
    return reading.symptoms


def match_symptom(text: str, kb, where: str = "--symptom") -> str:
    """The id of the main symptom ``text`` names."""
    ids = match_symptoms(text, kb, where)
    if not ids:
        raise SymptomMatchError(unmatched_message(read_symptoms(text, kb), where))
    return ids[0]


# --- the matcher before meaning-based reading (kept to measure against; bench/symptom_matcher.py)


def score_symptoms(text: str, kb) -> list[tuple[float, str]]:
    """(score, id) for every symptom by word overlap (Dice), best first."""
    query = content_words(text)
    out = []
    for sid, s in kb.symptoms.items():
        phrases = [s.description, *s.synonyms, sid.replace("_", " ")]
        best = max(_dice(query, content_words(p)) for p in phrases)
        out.append((round(best, 3), sid))
    return sorted(out, key=lambda t: (-t[0], t[1]))
