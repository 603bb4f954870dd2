"""The report's sections about the data and the results: the input's Table 1, selection, evaluation.

Each builder takes the run directory and returns a :class:`~lsr.report.markup.Section`; a file it needs that
is absent or unreadable turns into a note in that section (:func:`~lsr.report.markup.missing`), never an error.
"""

from __future__ import annotations

from pathlib import Path

from lsr.data import layout
from lsr.evaluation.metrics.registry import columns, notes
from lsr.report import run_files as rf
from lsr.report.markup import Markup, Section, image, join, key_values, missing, paragraph, table, tag
from lsr.report.plots import plot_cluster


def _number(value: object, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


def _percent(part: object, whole: object) -> str:
    if isinstance(part, (int, float)) and isinstance(whole, (int, float)) and whole:
        return f"{100 * part / whole:.1f}%"
    return "-"


def input_section(root: Path) -> Section:
    """The paper's Table 1 for the run's documents, the kept training set, and what mining made of them."""
    parts: list[Markup] = []
    rows = []
    data_files = sorted((root / layout.RUN_DATA_DIR).glob("*.jsonl")) if (root / layout.RUN_DATA_DIR).is_dir() else []
    for path in data_files:
        try:
            figures = rf.corpus_figures(path)
            rows.append(
                [
                    f"{figures.name} ({path.name})",
                    _count(figures.examples),
                    _number(figures.avg_document_words),
                    _number(figures.avg_summary_words),
                ]
            )
        except rf.MissingPart as err:
            parts.append(missing(err))
    try:
        selection = rf.load_json(root / layout.RUN_SELECTED_DIR / layout.SELECTION_REPORT_JSON)
        after = selection.get("after") or {}
        rows.append(
            [
                "training set after selection",
                _count(after.get("examples")),
                _number(after.get("avg_document_words")),
                _number(after.get("avg_summary_words")),
            ]
        )
        paper = selection.get("paper_table1")
    except rf.MissingPart:
        paper = None  # the selection section says it is missing
    if rows:
        parts.insert(0, table(["", "examples", "avg. document words", "avg. summary words"], rows, numeric=(1, 2, 3)))
        parts.append(paragraph("Words are whitespace-separated tokens, as in the paper's Table 1.", class_="note"))
    else:
        no_data = f"no documents: {root / layout.RUN_DATA_DIR} has no .jsonl file and there is no selection report"
        parts.insert(0, missing(no_data))
    if isinstance(paper, dict):
        parts.append(
            paragraph(
                f"The paper's Table 1 keeps {_count(paper.get('after'))} of "
                f"{_count(paper.get('before'))} training examples "
                f"({_percent(paper.get('after'), paper.get('before'))}).",
                class_="note",
            )
        )
    parts.append(tag("h3", "Mining"))
    parts.append(_mining_table(root))
    return Section("input", "Input (Table 1)", join(parts))


def _mining_table(root: Path) -> Markup:
    try:
        report = rf.load_json(root / rf.MINED_REPORT)
    except rf.MissingPart as err:
        return missing(f"{err} (`lsr mine --output RUN/{layout.RUN_MINED_DIR}` writes it)")
    failed = ", ".join(f"{n} {why}" for why, n in sorted((report.get("failed_by_reason") or {}).items()))
    tokens = report.get("prompt_tokens_per_document")
    rows = [
        ["engine / model", f"{report.get('engine', '-')} / {report.get('model', '-')}"],
        [
            "documents in / rationales out",
            f"{_count(report.get('input_rows'))} / {_count(report.get('output_rows'))}"
            + ("" if report.get("complete", True) else " (INCOMPLETE)"),
        ],
        ["mined", _count(report.get("done"))],
        ["failed", _count(report.get("failed")) + (f" ({failed})" if failed else "")],
        ["truncated to fit the context", _count(report.get("truncated"))],
        ["rows with unusable lines", _count(report.get("with_problems"))],
        [
            "tokens per document (prompt + completion)",
            "none (no LLM)"
            if tokens is None
            else f"{_number(tokens, 0)} + {_number(report.get('completion_tokens_per_document'), 0)}",
        ],
    ]
    cluster = report.get("cluster") or []
    plot = plot_cluster(cluster, "the cluster under mining") if isinstance(cluster, list) else None
    if plot is None:
        return key_values(rows)
    return join([key_values(rows), image(plot, "alive nodes and mining replicas while mining (an autoscaled run "
                                               "grows and shrinks here)")])


def selection_section(root: Path) -> Section:
    """The rule, kept and rejected counts by reason, the score distribution and its histogram."""
    folder = root / layout.RUN_SELECTED_DIR
    try:
        report = rf.load_json(folder / layout.SELECTION_REPORT_JSON)
    except rf.MissingPart as err:
        return Section(
            "selection", "Selection", missing(f"{err} (`lsr select --output RUN/{layout.RUN_SELECTED_DIR}` writes it)")
        )
    rule = report.get("rule") or {}
    total = (report.get("kept") or 0) + (report.get("rejected") or 0)
    rows = [["kept", _count(report.get("kept")), _percent(report.get("kept"), total)]]
    for reason, count in (report.get("rejected_by_reason") or {}).items():
        rows.append([f"rejected: {reason.replace('_', ' ')}", _count(count), _percent(count, total)])
    rows.append(["total", _count(total), ""])
    parts = [
        paragraph(
            f"Rule: {rule.get('score', '-')} on the {rule.get('score_on', '-')} summaries, keep when score "
            f"<= {rule.get('threshold', '-')} (a loss: lower is better; ROUGE {rule.get('rouge', '-')})."
        ),
        table(["", "rows", "share"], rows, numeric=(1, 2)),
    ]
    if report.get("split_guard_overridden"):
        parts.append(paragraph("Split guard overridden (--force): " + "; ".join(report["split_guard_overridden"])))
    scores = report.get("scores") or {}
    if scores.get("count"):
        quantiles = ", ".join(f"{k} {_number(v, 3)}" for k, v in (scores.get("quantiles") or {}).items())
        parts.append(
            paragraph(
                f"{_count(scores['count'])} rows scored: mean {_number(scores.get('mean'), 3)}, "
                f"min {_number(scores.get('min'), 3)}, max {_number(scores.get('max'), 3)}; "
                f"{quantiles}."
            )
        )
    parts.append(_score_histogram(folder, report))
    return Section("selection", "Selection", join(parts))


def _score_histogram(folder: Path, report: dict) -> Markup:
    """``scores.png`` as the selection stage drew it, or drawn again from the report's histogram."""
    caption = "Score histogram: kept and rejected rows, the threshold dashed"
    try:
        return image(rf.load_png(folder / layout.SCORES_PNG), caption)
    except rf.MissingPart as err:
        from lsr.selection.report import plot_scores

        try:
            return image(plot_scores(report), caption + " (re-drawn: " + str(err) + ")")
        except (KeyError, TypeError, ValueError, IndexError):
            return missing(f"{err}, and the report holds no histogram to draw it from")


def evaluation_section(root: Path) -> Section:
    """Table 2's layout and the added measures, one row per evaluated model, with how each column was measured:
    the columns, formats and notes are the metric registry's, as ``results.md`` shows them."""
    folder = root / layout.RUN_EVAL_DIR
    try:
        results = rf.load_json(folder / layout.RESULTS_JSON)
        models = rf.evaluated_models(results)
    except rf.MissingPart as err:
        fallback = folder / layout.RESULTS_MD
        if fallback.is_file():
            text = fallback.read_text(encoding="utf-8", errors="replace")
            return Section("evaluation", "Evaluation", join([missing(err), tag("pre", text, class_="mono")]))
        return Section(
            "evaluation", "Evaluation", missing(f"{err} (`lsr evaluate --output RUN/{layout.RUN_EVAL_DIR}` writes it)")
        )
    title = {"cnndm": "CNN/DM", "xsum": "XSum"}.get(results.get("dataset"), results.get("dataset") or "")
    shown = columns()
    rows = [[m["name"], *(column.cell(m.get(column.key)) for column in shown)] for m in models]
    generation = ", ".join(f"{k}={v}" for k, v in (results.get("generation") or {}).items())
    note = (
        f"{notes(results)} Data: {results.get('data', '-')} ({_count(results.get('examples'))} examples). "
        f"Generation: {generation or '-'}."
    )
    headers = ["Model" + (f" ({title})" if title else ""), *(column.header for column in shown)]
    body = [table(headers, rows, numeric=tuple(range(1, len(headers)))), paragraph(note, class_="note")]
    return Section("evaluation", "Evaluation", join(body))
