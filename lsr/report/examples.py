"""The report's side-by-side section: a few test documents with the gold summary, every evaluated model's
summary and, where the document was mined, its rationale.

The documents are the first few by id of the evaluation's predictions, the same for every model. Test documents
are held out of mining, so in a well-made run they have no rationale; the page says so instead of leaving a gap.
"""

from __future__ import annotations

from pathlib import Path

from lsr.report import run_files as rf
from lsr.report.markup import Markup, Section, join, missing, paragraph, tag

#: How many test documents the section shows.
EXAMPLES = 5
#: Characters of the document shown before the reader expands it.
PREVIEW_CHARS = 300


def _card(title: str, body: Markup) -> Markup:
    return tag("div", join([tag("h4", title), body]), class_="card")


def _scores(row: dict) -> Markup:
    shown = [
        f"{label} {100 * row[key]:.1f}"
        for key, label in (("rouge1", "R-1"), ("rouge2", "R-2"), ("rougeLsum", "R-L"))
        if isinstance(row.get(key), (int, float))
    ]
    if isinstance(row.get("bertscore"), (int, float)):
        shown.append(f"BS {row['bertscore']:.4f}")
    return paragraph(", ".join(shown), class_="scores") if shown else Markup("")


def _triples(triples: object) -> str:
    if not isinstance(triples, list):
        return ""
    return "; ".join(
        " # ".join(str(t.get(k) or "") for k in ("subject", "relation", "object"))
        for t in triples
        if isinstance(t, dict)
    )


def rationale_html(row: dict) -> Markup:
    """A mined rationale, one item per line: aspect, associated sentence, triples (and its sub-summary)."""
    if row.get("error"):
        return paragraph(f"Mining failed: {row['error']}")
    aspects, sentences = row.get("aspects") or [], row.get("sentences") or []
    triples, subs = row.get("triples") or [], row.get("sub_summaries") or []
    items = []
    for i in range(max(len(aspects), len(sentences), len(triples))):
        parts = [
            tag("strong", aspects[i]) if i < len(aspects) and aspects[i] else None,
            sentences[i] if i < len(sentences) else None,
            tag("em", _triples(triples[i])) if i < len(triples) and _triples(triples[i]) else None,
            f"-> {subs[i]}" if i < len(subs) and subs[i] else None,
        ]
        items.append(tag("li", join((p for p in parts if p), " | ")))
    body = [tag("ul", join(items))] if items else [paragraph("(no rationale lines)")]
    if row.get("total_summary"):
        body.append(paragraph(tag("strong", "Total summary: "), row["total_summary"]))
    return join(body)


def _document_block(doc_id: str, by_model: dict[str, dict], rationale: dict | None, note: str) -> Markup:
    first = next(iter(by_model.values()))
    document = str(first.get("document") or "")
    preview = document[:PREVIEW_CHARS] + ("..." if len(document) > PREVIEW_CHARS else "")
    cards = [_card("Gold summary", paragraph(first.get("summary")))]
    for name, row in by_model.items():
        cards.append(_card(name, join([paragraph(row.get("prediction")), _scores(row)])))
    cards.append(_card("Mined rationale", rationale_html(rationale) if rationale else paragraph(note, class_="note")))
    return tag(
        "div",
        join(
            [
                tag("h3", f"Document {doc_id}", class_="mono"),
                tag(
                    "details",
                    join(
                        [
                            tag("summary", f"Document ({len(document.split()):,} words): {preview}"),
                            tag("div", document, class_="source"),
                        ]
                    ),
                ),
                tag("div", join(cards), class_="columns"),
            ]
        ),
        class_="doc",
    )


def examples_section(root: Path, count: int = EXAMPLES) -> Section:
    eval_dir = root / rf.EVAL_DIR
    title = "Test documents side by side"
    try:
        models = rf.evaluated_models(rf.load_json(eval_dir / rf.RESULTS_JSON))
    except rf.MissingPart as err:
        return Section("examples", title, missing(err))
    predictions: dict[str, dict[str, dict]] = {}
    notes: list[Markup] = []
    for model in models:
        try:
            predictions[model["name"]] = {str(r["id"]): r for r in rf.load_predictions(eval_dir, model)}
        except rf.MissingPart as err:
            notes.append(missing(err))
    if not predictions:
        return Section("examples", title, join([*notes, missing("no model's predictions could be read")]))
    ids = sorted(next(iter(predictions.values())))[:count]
    try:
        rationales = rf.load_rationales(root / rf.MINED_DIR, ids)
        note = "Not mined: a held-out test document (only the training split is mined)."
    except rf.MissingPart as err:
        rationales, note = {}, f"Not available: {err}"
    blocks = []
    for doc_id in ids:
        by_model = {name: rows[doc_id] for name, rows in predictions.items() if doc_id in rows}
        blocks.append(_document_block(doc_id, by_model, rationales.get(doc_id), note))
    intro = paragraph(
        f"The first {len(ids)} test documents by id; each model's summary with its own ROUGE F1 "
        "x100 against the gold one. Expand a document to read it whole.",
        class_="note",
    )
    return Section("examples", title, join([*notes, intro, *blocks]))
