"""The report's side-by-side section: a few test documents with the gold summary, every evaluated model's
summary and, where the document was mined, its rationale.

The documents are the first few by id of the evaluation's predictions, the same for every model. Test documents
are held out of mining, so in a well-made run they have no rationale; the page says so instead of leaving a gap.
"""

from __future__ import annotations

from pathlib import Path

from lsr.data import layout
from lsr.report import run_files as rf
from lsr.report.markup import Markup, Section, join, missing, paragraph, table, tag

#: How many test documents the section shows.
EXAMPLES = 5
#: Characters of the document shown before the reader expands it.
PREVIEW_CHARS = 300


def _card(title: str, body: Markup, wide: bool = False) -> Markup:
    return tag("div", join([tag("h4", title), body]), class_="card wide" if wide else "card")


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
    """A mined rationale as a table, one row per rationale line (aspect, sentence, triples, sub-summary)."""
    if row.get("error"):
        return paragraph(f"Mining failed: {row['error']}")
    columns = {
        "aspect": row.get("aspects") or [],
        "associated sentence": row.get("sentences") or [],
        "triples (subject # relation # object)": [_triples(t) for t in row.get("triples") or []],
        "sub-summary": row.get("sub_summaries") or [],
    }
    columns = {name: values for name, values in columns.items() if any(values)}
    lines = max((len(values) for values in columns.values()), default=0)
    body = []
    if lines:
        rows = [[values[i] if i < len(values) else "" for values in columns.values()] for i in range(lines)]
        body.append(table(list(columns), rows))
    if row.get("total_summary"):
        body.append(paragraph(tag("strong", "Total summary:"), row["total_summary"]))
    return join(body) if body else paragraph("(an empty rationale)")


def _grid(columns: int) -> str | None:
    """One column per summary (gold + each model), so the rationale's full-width row leaves no gap; many
    models fall back to the stylesheet's auto-fit grid."""
    return f"grid-template-columns: repeat({columns}, minmax(0, 1fr))" if columns <= 4 else None


def _document_block(doc_id: str, by_model: dict[str, dict], rationale: dict | None, note: str) -> Markup:
    first = next(iter(by_model.values()))
    document = str(first.get("document") or "")
    preview = document[:PREVIEW_CHARS] + ("..." if len(document) > PREVIEW_CHARS else "")
    cards = [_card("Gold summary", paragraph(first.get("summary")))]
    for name, row in by_model.items():
        cards.append(_card(name, join([paragraph(row.get("prediction")), _scores(row)])))
    if rationale:
        cards.append(_card("Mined rationale", rationale_html(rationale), wide=True))
    else:
        cards.append(_card("Mined rationale", paragraph(note, class_="note")))
    heading = tag("strong", f"Document ({len(document.split()):,} words):")
    source = tag(
        "details", join([tag("summary", join([heading, preview], " ")), tag("div", document, class_="source")])
    )
    block = [
        tag("h3", f"Document {doc_id}", class_="mono"),
        source,
        tag("div", join(cards), class_="columns", style=_grid(len(by_model) + 1)),
    ]
    return tag("div", join(block), class_="doc")


def examples_section(root: Path, count: int = EXAMPLES) -> Section:
    eval_dir = root / layout.RUN_EVAL_DIR
    title = "Test documents side by side"
    try:
        models = rf.evaluated_models(rf.load_json(eval_dir / layout.RESULTS_JSON))
    except rf.MissingPart as err:
        written_by = f"`lsr evaluate --output RUN/{layout.RUN_EVAL_DIR}` writes it"
        return Section("examples", title, missing(f"{err} ({written_by})"))
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
        rationales = rf.load_rationales(root / layout.RUN_MINED_DIR, ids)
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
