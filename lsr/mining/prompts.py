"""The two mining calls of the paper's Step 1, as chat messages (docs/paper.md#mining).

Call A (Tasks 1-3) sees the document and the gold summary and writes the structured rationale; call B
(Tasks 4-5) sees the document and the *parsed* rationale (never the gold summary) and writes the
sub-summaries and the total summary. Both calls share the system message and open the user message with
the document, so an engine with prefix caching (vLLM) computes the document's KV cache once per document.
"""

from __future__ import annotations

from collections.abc import Sequence

from lsr.core.config import DATASETS
from lsr.core.errors import InputError

Message = dict[str, str]

SYSTEM = (
    "You are an expert news editor. You analyse news articles precisely, quote the article faithfully, "
    "and follow the requested output format exactly, without any other text."
)

_RATIONALE_TASKS = {
    "cnndm": (
        "Reference summary:\n{summary}\n\n"
        "For each sentence of the reference summary, write one rationale line with three fields separated by "
        '" | ":\n'
        "Task 1: the aspect, a short key phrase naming what the summary sentence is about.\n"
        "Task 2: the associated sentence, the one sentence of the article that best supports the summary "
        "sentence, copied verbatim.\n"
        "Task 3: the relation triples of the associated sentence, each as <subject # relation # object>, "
        "separated by commas.\n\n"
        "Format, one line per summary sentence:\n"
        "aspect | associated sentence | <subject # relation # object>, <subject # relation # object>"
    ),
    "xsum": (
        "Reference summary:\n{summary}\n\n"
        'Write one rationale line with three fields separated by " | ", working backwards from the summary:\n'
        "Task 1: the relation triples of the summary, each as <subject # relation # object>, separated by "
        "commas.\n"
        "Task 2: the associated sentence, the one sentence of the article that best supports the summary, "
        "copied verbatim.\n"
        "Task 3: the aspect, a short key phrase naming what the summary is about.\n\n"
        "Format, a single line:\n"
        "<subject # relation # object>, <subject # relation # object> | associated sentence | aspect"
    ),
}

_SUMMARIES_TASKS = {
    "cnndm": (
        "Rationale (aspect | associated sentence | relation triples), one line per key point:\n{rationale}\n\n"
        "Task 4: for each rationale line, write one sub-summary sentence of the article covering that aspect.\n"
        "Task 5: write a total summary of the article in one sentence.\n\n"
        "Format:\n"
        "Multiple sub-summaries:\n1. <sub-summary for line 1>\n2. <sub-summary for line 2>\n\n"
        "Summary: <total summary>"
    ),
    "xsum": (
        "Rationale (relation triples | associated sentence | aspect):\n{rationale}\n\n"
        "Task 5: using the rationale, write a summary of the article in one sentence.\n\n"
        "Format:\n"
        "Summary: <one-sentence summary>"
    ),
}


#: With ``--structured-output`` the tasks are the same and only the answer's format changes: one JSON object, whose
#: schema the engine enforces (:mod:`lsr.mining.structured`); the keys follow the tasks' order.
_RATIONALE_TASKS_JSON = {
    "cnndm": (
        "Reference summary:\n{summary}\n\n"
        "For each sentence of the reference summary, in order, write one rationale:\n"
        "Task 1: the aspect, a short key phrase naming what the summary sentence is about.\n"
        "Task 2: the associated sentence, the one sentence of the article that best supports the summary "
        "sentence, copied verbatim.\n"
        "Task 3: the relation triples of the associated sentence, each with a subject, a relation and an object.\n\n"
        "Answer with one JSON object and nothing else:\n"
        '{{"rationales": [{{"aspect": "...", "sentence": "...", '
        '"triples": [{{"subject": "...", "relation": "...", "object": "..."}}]}}]}}'
    ),
    "xsum": (
        "Reference summary:\n{summary}\n\n"
        "Write one rationale, working backwards from the summary:\n"
        "Task 1: the relation triples of the summary, each with a subject, a relation and an object.\n"
        "Task 2: the associated sentence, the one sentence of the article that best supports the summary, "
        "copied verbatim.\n"
        "Task 3: the aspect, a short key phrase naming what the summary is about.\n\n"
        "Answer with one JSON object and nothing else:\n"
        '{{"triples": [{{"subject": "...", "relation": "...", "object": "..."}}], "sentence": "...", '
        '"aspect": "..."}}'
    ),
}

_SUMMARIES_TASKS_JSON = {
    "cnndm": (
        "Rationale (aspect | associated sentence | relation triples), one line per key point:\n{rationale}\n\n"
        "Task 4: for each rationale line, write one sub-summary sentence of the article covering that aspect.\n"
        "Task 5: write a total summary of the article in one sentence.\n\n"
        "Answer with one JSON object and nothing else:\n"
        '{{"sub_summaries": ["<sub-summary for line 1>", "<sub-summary for line 2>"], '
        '"total_summary": "<total summary>"}}'
    ),
    "xsum": (
        "Rationale (relation triples | associated sentence | aspect):\n{rationale}\n\n"
        "Task 5: using the rationale, write a summary of the article in one sentence.\n\n"
        "Answer with one JSON object and nothing else:\n"
        '{{"total_summary": "<one-sentence summary>"}}'
    ),
}


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise InputError(f"unknown data set {dataset!r}: choose one of {', '.join(DATASETS)}")


def _document_block(document: str) -> str:
    # Identical bytes at the start of both calls: this is what the prefix cache keys on.
    return f"Article:\n{document.strip()}\n\n"


def rationale_messages(document: str, summary: str, dataset: str, structured: bool = False) -> list[Message]:
    """Call A (Tasks 1-3): the rationale, from the document and the gold summary (a JSON answer if
    ``structured``)."""
    _check_dataset(dataset)
    tasks = _RATIONALE_TASKS_JSON if structured else _RATIONALE_TASKS
    task = tasks[dataset].format(summary=summary.strip())
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": _document_block(document) + task}]


def format_rationale(
    aspects: Sequence[str], sentences: Sequence[str], triples: Sequence[Sequence[Sequence[str]]], dataset: str
) -> str:
    """The parsed rationale in the canonical line format, so call B sees clean input whatever call A wrote."""
    _check_dataset(dataset)
    lines = []
    for aspect, sentence, line_triples in zip(aspects, sentences, triples, strict=True):
        triple_text = ", ".join(f"<{s} # {r} # {o}>" for s, r, o in line_triples)
        fields = (aspect, sentence, triple_text) if dataset == "cnndm" else (triple_text, sentence, aspect)
        lines.append(" | ".join(fields))
    return "\n".join(lines)


def summaries_messages(document: str, rationale: str, dataset: str, structured: bool = False) -> list[Message]:
    """Call B (Tasks 4-5): sub-summaries and a total summary, from the document and the rationale only (a JSON
    answer if ``structured``)."""
    _check_dataset(dataset)
    tasks = _SUMMARIES_TASKS_JSON if structured else _SUMMARIES_TASKS
    task = tasks[dataset].format(rationale=rationale.strip())
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": _document_block(document) + task}]


def template_text(dataset: str, call: str, structured: bool = False) -> str:
    """The fixed text of a call (system message and instructions) without document, summary or rationale.

    Used to budget tokens: the document gets what the model's context leaves after this and the outputs.
    """
    _check_dataset(dataset)
    if call == "rationale":
        messages = rationale_messages("", "", dataset, structured)
    elif call == "summaries":
        messages = summaries_messages("", "", dataset, structured)
    else:
        raise ValueError(f"unknown call {call!r}")
    return "\n".join(m["content"] for m in messages)
