"""A deterministic, extractive stand-in for the LLM: no model, the same output format.

It lets the whole pipeline run on any machine and gives a floor for rationale quality. For each gold summary
sentence it takes the document sentence with the highest ROUGE (mean of ROUGE-1 and ROUGE-2 F1, stemmed) as
the associated sentence, a key phrase of the summary sentence as the aspect, and subject-relation-object
triples cut around the first verb-like word. The sub-summaries are the associated sentences (call B sees only
the rationale, as for the LLM, so nothing of the gold summary leaks into them) and the total summary joins
them. The outputs are rendered as text in the prompts' format and go through the same parser as an LLM's.
It is never presented as an LLM: its rows say ``engine="oracle"``.

``rouge-score`` are imported inside the functions that use them: the ``lsr`` command imports this module at start-
up, before it knows which of them a command needs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from lsr.data.sentences import split_sentences
from lsr.mining.parse import Triple
from lsr.mining.prompts import format_rationale

MODEL_NAME = "oracle-extractive-v1"
MAX_SUB_SUMMARY_WORDS = 45

_STOPWORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been being has have had it its "
    "this that these those he she they we you i his her their our your who whom which what when where why how "
    "will would can could may might must should said says not no after before over into about than then also "
    "new more most up out one two three".split()
)
# Auxiliaries and frequent news verbs; any longer word ending in -ed counts too.
_VERBS = frozenset(
    "is are was were be been has have had will would can could may might must should shall did does do "
    "said says say told tells announced announces won wins beat beats lost loses died dies killed kills made "
    "makes took takes gave gives got gets found finds led leads left leaves met meets ran runs saw sees set "
    "sets came comes went goes became becomes began begins hit hits held holds kept keeps paid pays put puts "
    "sold sells spent spends struck strikes".split()
)


@dataclass(frozen=True)
class OracleRationale:
    aspects: list[str]
    sentences: list[str]
    triples: list[list[Triple]]


@lru_cache(maxsize=1)
def _tokenizer():
    from rouge_score.tokenizers import DefaultTokenizer

    return DefaultTokenizer(use_stemmer=True)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f1(reference: Counter, candidate: Counter) -> float:
    overlap = sum((reference & candidate).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(candidate.values()), overlap / sum(reference.values())
    return 2 * precision * recall / (precision + recall)


def _best_sentence(target: str, sentences: list[str], grams: list[tuple[Counter, Counter]]) -> int:
    """Index of the sentence with the highest mean ROUGE-1/ROUGE-2 F1 against ``target`` (first one on ties)."""
    tokens = _tokenizer().tokenize(target)
    ref1, ref2 = _ngrams(tokens, 1), _ngrams(tokens, 2)
    scores = [(_f1(ref1, g1) + _f1(ref2, g2)) / 2 for g1, g2 in grams]
    return max(range(len(sentences)), key=lambda i: (scores[i], -i))


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"\s+", _sanitize(text)) if w]


def _sanitize(text: str) -> str:
    """Text safe inside a rationale line: no field or triple separators, no brackets, one line."""
    return re.sub(r"[|#<>\[\]{}\s]+", " ", text).strip()


def _bare(word: str) -> str:
    return word.strip(".,;:!?\"'“”‘’()").lower()


def key_phrase(sentence: str, max_words: int = 4) -> str:
    """A short aspect: the longest run of capitalised words, else the first content words."""
    words = _words(sentence)
    runs: list[list[str]] = []
    current: list[str] = []
    for i, word in enumerate(words):
        bare = word.strip(".,;:!?\"'“”‘’()")
        if bare[:1].isupper() and not (i == 0 and _bare(word) in _STOPWORDS):
            current.append(bare)
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    if runs:
        best = max(runs, key=len)
        if len(best) >= 2 or not [w for w in words if _bare(w) not in _STOPWORDS]:
            return " ".join(best[:max_words])
    content = [w.strip(".,;:!?\"'“”‘’()") for w in words if _bare(w) and _bare(w) not in _STOPWORDS]
    return " ".join(content[:max_words]) or " ".join(words[:max_words])


def simple_triples(sentence: str, max_object_words: int = 6, max_subject_words: int = 5) -> list[Triple]:
    """One (subject, relation, object) cut around the first verb-like word of ``sentence``."""
    words = _words(sentence)
    if len(words) < 3:
        return [(words[0] if words else sentence, "is", " ".join(words[1:]) or sentence)] if words else []
    verb = next(
        (
            i
            for i in range(1, len(words) - 1)
            if _bare(words[i]) in _VERBS or (_bare(words[i]).endswith("ed") and len(_bare(words[i])) > 4)
        ),
        None,
    )
    if verb is None:
        verb = min(2, len(words) - 2)
    end = verb + 1
    while end < len(words) - 1 and (_bare(words[end]) in _VERBS or _bare(words[end]).endswith(("ed", "ing"))):
        end += 1
    subject = " ".join(words[max(0, verb - max_subject_words) : verb])
    relation = " ".join(w.strip(",;:") for w in words[verb:end])
    obj_words: list[str] = []
    for word in words[end : end + max_object_words]:
        obj_words.append(word)
        if word.endswith((",", ";", ":", ".", "!", "?")):
            break
    parts = (subject, relation, " ".join(obj_words))
    clean = [re.sub(r"^[\"'“‘]+|[\"'”’,;:.!?]+$", "", re.sub(r"\([^)]*\)?|\)", " ", p)).strip() for p in parts]
    clean = [" ".join(c.split()) for c in clean]
    if not all(clean):
        return []
    return [(clean[0], clean[1], clean[2])]


def oracle_rationale(document: str, summary: str, dataset: str) -> OracleRationale:
    """Tasks 1-3 without an LLM (see the module docstring)."""
    doc_sentences = split_sentences(document) or [document.strip()]
    tokenize = _tokenizer().tokenize
    grams = [(_ngrams(t, 1), _ngrams(t, 2)) for t in (tokenize(s) for s in doc_sentences)]
    # XSum's rationale is one line dug from the whole (one-sentence) summary, triples taken from the summary.
    targets = split_sentences(summary) if dataset == "cnndm" else [" ".join(summary.split())]
    aspects, sentences, triples = [], [], []
    for target in targets or [summary]:
        sentence = _sanitize(doc_sentences[_best_sentence(target, doc_sentences, grams)])
        line_triples = simple_triples(sentence if dataset == "cnndm" else target) or simple_triples(sentence)
        aspect = _sanitize(key_phrase(target))
        if not (sentence and aspect and line_triples):
            continue
        aspects.append(aspect)
        sentences.append(sentence)
        triples.append(line_triples)
    return OracleRationale(aspects, sentences, triples)


def oracle_summaries(rationale: OracleRationale, dataset: str) -> tuple[list[str], str]:
    """Tasks 4-5 from the rationale alone: the associated sentences, shortened, and their concatenation."""
    subs = [" ".join(s.split()[:MAX_SUB_SUMMARY_WORDS]) for s in rationale.sentences]
    if dataset == "xsum":
        return [], subs[0] if subs else ""
    return subs, " ".join(subs)


def render_rationale(rationale: OracleRationale, dataset: str) -> str:
    return format_rationale(rationale.aspects, rationale.sentences, rationale.triples, dataset)


def render_summaries(sub_summaries: list[str], total: str, dataset: str) -> str:
    if dataset == "xsum" or not sub_summaries:
        return f"Summary: {total}"
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(sub_summaries, 1))
    return f"Multiple sub-summaries:\n{numbered}\n\nSummary: {total}"


def oracle_outputs(document: str, summary: str, dataset: str) -> tuple[str, str]:
    """The oracle's (call A text, call B text), in the format an LLM is asked for."""
    rationale = oracle_rationale(document, summary, dataset)
    subs, total = oracle_summaries(rationale, dataset)
    return render_rationale(rationale, dataset), render_summaries(subs, total, dataset) if total else ""
