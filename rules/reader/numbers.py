"""Readings that numbers and fixed turns of phrase carry, whatever the words around them: "loss went from
0.7 to 1e6", "fraud is 0.17% of transactions", "validation loss goes up while training loss falls",
scratch-vs-transfer scores, a pasted log line; and a description's script (a non-Latin message)."""

from __future__ import annotations

import math
import re
from typing import Optional

from rules.reader.words import _lazy, content_words


_NUM = r"([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)"
_ABOUT = r"(?:~\s*|\u2248\s*|about\s+|around\s+|approx(?:imately|\.)?\s+|roughly\s+)?"
_LOSS_MOVE = _lazy(r"\bloss\b[^0-9~]{0,40}?\bfrom\s+" + _ABOUT + _NUM + r"\s*(?:to|->|\u2192)\s*" + _ABOUT + _NUM
                        + r"|\bloss\b[^0-9~]{0,20}?" + _ABOUT + _NUM + r"\s*(?:->|\u2192|=>)\s*" + _ABOUT + _NUM, re.I, need=("loss",))
# words the knowledge base's vocabulary holds (knowledge/data/vocabulary.yaml; an overlay may add to them)
_STUCK = "<<stuck>>"
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


_TRAIN = "<<training_split>>"
_VAL = "<<validation_split>>"
_DOWN = "<<falling>>"
_UP = "<<rising>>"
_STEEP = "<<steep>>"
_NOT_A_LEVEL = r"(?!\s+(?:\w+\s+)?(?:above|over|beyond)\b)"
_PATTERNS = [
    # the two curves moving apart: training loss down while validation loss goes up
    (_lazy(rf"\b{_TRAIN}\s+loss\b[^.;]{{0,25}}?\b{_DOWN}\b.{{0,40}}?\b{_VAL}\s+loss\b[^.;]{{0,25}}?\b{_UP}\b"
                rf"|\b{_VAL}\s+loss\b[^.;]{{0,25}}?\b{_UP}\b.{{0,40}}?\b{_TRAIN}\s+loss\b[^.;]{{0,25}}?\b{_DOWN}\b", re.I, need=("loss",)),
     "val_loss_rising"),
    # the validation loss alone going up: the curve of overfitting ("the eval loss keeps increasing")
    (_lazy(rf"\b{_VAL}\s+loss\b[^.;,]{{0,20}}?\b(?:keeps?\s+|starts?\s+|begins?\s+(?:to\s+)?|is\s+|was\s+)?"
                rf"(?:increas\w*|ris\w*|rose|climb\w*|grow\w*|go(?:es|ing)?\s+up|went\s+up)\b", re.I, need=("loss",)), "val_loss_rising"),
    # the training loss going up ("the training loss keeps increasing"), or a loss with no split named going up
    # steeply ("the loss shoots up and keeps climbing"); a plain "the loss goes up" is left to the knowledge
    # base's distinction (divergence or overfitting: it asks which loss)
    (_lazy(rf"\b{_TRAIN}\s+loss(?:es)?\b[^.;,]{{0,20}}?\b(?:keeps?\s+|starts?\s+|is\s+|was\s+)?"
           rf"(?:increas\w*|ris(?:es|ing)|rose|climb\w*|{_STEEP}|go(?:es|ing)?\s+up|went\s+up)\b{_NOT_A_LEVEL}"
           rf"|(?<!val\s)(?<!dev\s)(?<!eval\s)(?<!test\s)(?<!valid\s)(?<!validation\s)(?<!evaluation\s)"
           rf"\bloss(?:es)?\b[^.;,]{{0,20}}?\b(?:keeps?\s+|starts?\s+|is\s+|was\s+)?{_STEEP}\b{_NOT_A_LEVEL}",
           re.I, need=("loss",)), "loss_exploding"),  # "rose far above ln(k)" compares with a level: not a move
    # the accelerator waits: "GPU utilization is from 0% to 90%, most of the time 0%", "gpu util is low"
    (_lazy(r"\b(?:gpu|cuda|device)[\s-]*(?:util\w*|usage|load)\b[^.;]{0,40}?\b(?:low|0\s*%|[1-3]?[0-9]\s*%|drops?|"
                r"not\s+stable|fluctuat\w*|idle|spiky)"
                r"|\b(?:gpu|cuda|device)\b[^.;]{0,25}?\b(?:is|sits|stays|seems)\s+(?:nearly\s+|mostly\s+|almost\s+)?idle\b",
           re.I, need=("gpu", "cuda", "device")), "gpu_underused"),
    # "very slow, stopped after 1 hour" (not "very slow convergence": that is the loss, not the clock)
    (_lazy(r"\b(?:very|super|extremely|too|so|really|painfully|incredibly|unbearably)\s+slow\b"
                r"(?!\s+(?:converg\w*|decreas\w*|learn\w*|progress\w*|improv\w*))", re.I, need=("slow",)), "slow_steps"),
    # both curves bad together: no gap, both high/low/bad
    (_lazy(r"\bboth\s+(?:are\s+|stay\s+|remain\s+)?(?:bad|poor|high|low|terrible|awful|stuck|flat)\b"
                r"|\b(?:bad|poor|high|low|stuck|flat)\s+(?:on|for)\s+both\b", re.I, need=("both",)), "high_train_loss"),
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


_CLAUSE_MARKS = str.maketrans({"，": ", ", "。": ". ", "；": "; ", "：": ": ", "？": "? ", "！": "! ", "、": ", ",
                               "（": " (", "）": ") ", "“": '"', "”": '"'})
_GLOSSARY: dict = {"kb": None, "terms": None, "gloss": {}}


def glossed(text: str, kb) -> Optional[str]:
    """``text`` read through the knowledge base's glossary (vocabulary entries with a ``gloss``) when it is
    written mostly in another script: every glossary term replaced by its English gloss, the longest
    terms first, the script's own punctuation by ours, and what the glossary does not hold dropped. None
    for an English text, or one with no term the glossary knows."""
    if script_of(text) is None:
        return None
    if _GLOSSARY["kb"] is not kb:
        pairs = [(w, v.gloss) for v in kb.sections.get("vocabulary", {}).values() if v.gloss for w in v.words]
        pairs.sort(key=lambda p: -len(p[0]))
        terms = re.compile("|".join(re.escape(w) for w, _ in pairs)) if pairs else None
        _GLOSSARY.update(kb=kb, terms=terms, gloss=dict(pairs))
    terms = _GLOSSARY["terms"]
    if terms is None or not terms.search(text):
        return None
    out = terms.sub(lambda m: f" {_GLOSSARY['gloss'][m.group(0)]} ", text.translate(_CLAUSE_MARKS))
    out = "".join(c if c.isascii() or not c.isalpha() else " " for c in out)  # untranslated words dropped
    return re.sub(r"\s+", " ", re.sub(r"\s+([,.;:?!])", r"\1", out)).strip()


def encoder_text(text: str, kb) -> str:
    """What the sentence encoder reads for ``text``: the English a description in another language is read as
    (``glossed``), else the text itself."""
    return glossed(text, kb) or text


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
# progress stated: the training loss going down, with nothing in the part going up, spiking or stalling
_TRAINING_LOSS_FALLS = _lazy(r"\b<<training_split>>\s+loss(?:es)?\s+(?:\w+\s+){0,3}?<<falling>>", re.I)
_TURNS = _lazy(r"<<rising>>|<<steep>>|<<stuck>>|\b(?:then|after|until|before|spik\w*|going\s+up)\b", re.I)
_TROUBLE = _lazy(r"\b(?:nan|inf|worse|drop\w*|stuck|fail\w*|bad|poor\w*|tank\w*|spik\w*|explod\w*|diverg\w*|"
                      r"overfit\w*|underfit\w*|forg[eo]t\w*|collaps\w*|slow\w*|memory|oom|wrong|only|but|however|"
                      r"except|though|while|loss\w*\s+(?:\w+\s+){0,2}(?:rises?|rising|increas\w*|goes\s+up|went\s+up))\b", re.I)


def going_well(part: str) -> bool:
    if _TROUBLE.search(part):
        return False
    return bool(_GOING_WELL.search(part)) or bool(_TRAINING_LOSS_FALLS.search(part) and not _TURNS.search(part))


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
