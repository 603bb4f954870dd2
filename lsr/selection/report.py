"""Step 2's report: the paper's Table 1 (examples and average words before and after selection), the score
distribution (JSON figures and a histogram PNG with the threshold drawn) and the count of each rejection reason.

Everything here is plain Python over one small row-per-example frame of numbers that :mod:`lsr.selection.job`
pulls from the scored rows, so the report costs no extra pass over the documents.

``matplotlib`` is imported inside the functions that use it, so that importing this module for one of its
functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lsr.core.config import SelectionPreset
from lsr.core.storage import join, write_bytes, write_text
from lsr.data.layout import SCORES_PNG, SELECTION_REPORT_JSON, SELECTION_REPORT_MD
from lsr.data.stats import CorpusStats
from lsr.selection.scoring import REJECT_REASONS

if TYPE_CHECKING:
    import pandas as pd

#: Histogram bin width over the score's [0, 1] range.
BIN_WIDTH = 0.025
#: The paper's Table 1 as printed (training examples before -> after selection, rounded to thousands),
#: shown next to ours for comparison.
PAPER_TABLE1 = {"cnndm": (287_000, 203_000), "xsum": (203_000, 126_000)}


def histogram(scores: Sequence[float], kept: Sequence[bool], bin_width: float = BIN_WIDTH) -> dict:
    """Counts of scored rows per bin of ``bin_width`` over [0, 1], kept and rejected apart."""
    bins = round(1.0 / bin_width)
    edges = [round(i * bin_width, 6) for i in range(bins + 1)]
    counts = {"kept": [0] * bins, "rejected": [0] * bins}
    for score, is_kept in zip(scores, kept, strict=True):
        index = min(max(int(math.floor(score / bin_width)), 0), bins - 1)
        counts["kept" if is_kept else "rejected"][index] += 1
    return {"edges": edges, **counts}


def score_summary(scores: Sequence[float]) -> dict:
    """Count, mean and a few quantiles (nearest rank) of the scores; ``None`` figures when nothing was scored."""
    ordered = sorted(scores)
    if not ordered:
        return {"count": 0, "mean": None, "min": None, "max": None, "quantiles": {}}

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "count": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "quantiles": {f"p{int(q * 100)}": rank(q) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
    }


def table1(document_words: Sequence[int], summary_words: Sequence[int]) -> CorpusStats:
    """The paper's Table-1 figures from per-row word counts (:func:`lsr.data.stats.word_counts`, whitespace words)."""
    examples = len(document_words)
    if examples == 0:
        return CorpusStats(0, 0.0, 0.0)
    return CorpusStats(examples, float(sum(document_words)) / examples, float(sum(summary_words)) / examples)


def build_report(verdicts: pd.DataFrame, rule: SelectionPreset, *, dataset: str, input_path: str, output: str,
                 split_flags: Sequence[str] = ()) -> dict:
    """The report's figures from one row per example: score, kept, reject_reason, document_words, summary_words.

    Table 1's "before" is every mined row (the training split as it entered selection, mining errors included),
    "after" the kept rows, both counting words of the document and the *gold* summary as the paper does.
    """
    kept_rows = verdicts[verdicts["kept"].astype(bool)]
    before = table1(verdicts["document_words"].tolist(), verdicts["summary_words"].tolist())
    after = table1(kept_rows["document_words"].tolist(), kept_rows["summary_words"].tolist())
    reasons = Counter(r for r in verdicts["reject_reason"].tolist() if isinstance(r, str))
    with_score = verdicts[verdicts["score"].notna()]
    scores = [float(s) for s in with_score["score"].tolist()]
    kept_flags = [bool(k) for k in with_score["kept"].tolist()]
    n_kept = len(kept_rows)
    paper = PAPER_TABLE1.get(dataset)
    paper_table1 = {"before": paper[0], "after": paper[1], "kept_fraction": paper[1] / paper[0]} if paper else None
    return {
        "dataset": dataset,
        "input": input_path,
        "output": output,
        "rule": {"score": rule.score, "threshold": rule.threshold, "third_rouge": rule.third_rouge,
                 "score_on": rule.score_on, "rouge": "F1, Porter stemming, [0, 1]", "keep_when": "score <= threshold"},
        "split_guard_overridden": list(split_flags),
        "before": before.to_dict(),
        "after": after.to_dict(),
        "kept": n_kept,
        "rejected": len(verdicts) - n_kept,
        "kept_fraction": n_kept / len(verdicts) if len(verdicts) else 0.0,
        "rejected_by_reason": {reason: reasons.get(reason, 0) for reason in REJECT_REASONS},
        "scores": {**score_summary(scores), "histogram": histogram(scores, kept_flags)},
        "paper_table1": paper_table1,
    }


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render_markdown(report: dict) -> str:
    """A readable report: Table 1 before and after, rejections by reason, the score distribution."""
    rule = report["rule"]
    before, after = report["before"], report["after"]
    lines = [
        f"# Selection report: {report['dataset']}",
        "",
        f"Input `{report['input']}`, output `{report['output']}`. Rule: {rule['score']} "
        f"(ROUGE {rule['rouge']}; scored text: {rule['score_on']}"
        + (f"; third term {rule['third_rouge']}" if rule["score"] == "score2" else "")
        + f"), keep when score <= {rule['threshold']}.",
        "",
    ]
    if report["split_guard_overridden"]:
        lines += [f"**Split guard overridden (--force):** {'; '.join(report['split_guard_overridden'])}.", ""]
    lines += [
        "## Table 1",
        "",
        "| | examples | avg. document words | avg. summary words |",
        "|---|---:|---:|---:|",
        f"| before selection | {before['examples']:,} | {_number(before['avg_document_words'])} "
        f"| {_number(before['avg_summary_words'])} |",
        f"| after selection | {after['examples']:,} | {_number(after['avg_document_words'])} "
        f"| {_number(after['avg_summary_words'])} |",
        "",
        f"Kept {report['kept']:,} of {before['examples']:,} ({100 * report['kept_fraction']:.1f}%).",
    ]
    paper = report.get("paper_table1")
    if paper:
        lines.append(f"The paper's Table 1 keeps {paper['after']:,} of {paper['before']:,} training examples "
                     f"({100 * paper['kept_fraction']:.1f}%).")
    lines += ["", "## Rejected, by reason", "", "| reason | rows |", "|---|---:|"]
    lines += [f"| {reason} | {count:,} |" for reason, count in report["rejected_by_reason"].items()]
    scores = report["scores"]
    lines += ["", "## Scores (a loss: lower is better)", ""]
    if scores["count"]:
        quantiles = ", ".join(f"{k} {v:.3f}" for k, v in scores["quantiles"].items())
        lines.append(f"{scores['count']:,} rows scored: mean {scores['mean']:.3f}, min {scores['min']:.3f}, "
                     f"max {scores['max']:.3f}; {quantiles}.")
    else:
        lines.append("No row reached scoring.")
    lines += ["", f"![score distribution]({SCORES_PNG})", ""]
    return "\n".join(lines)


def plot_scores(report: dict) -> bytes:
    """The score histogram as PNG bytes: kept and rejected stacked, the threshold as a vertical line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = report["scores"]["histogram"]
    edges = hist["edges"]
    lefts, width = edges[:-1], edges[1] - edges[0]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        axes.bar(lefts, hist["kept"], width=width, align="edge", color="tab:green", label="kept")
        axes.bar(lefts, hist["rejected"], width=width, align="edge", bottom=hist["kept"], color="tab:red",
                 label="rejected (score)")
        threshold = report["rule"]["threshold"]
        axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold}")
        axes.set_xlim(0.0, 1.0)
        axes.set_xlabel(f"{report['rule']['score']} (lower is better)")
        axes.set_ylabel("examples")
        axes.set_title(f"{report['dataset']}: {report['kept']:,} kept, {report['rejected']:,} rejected "
                       f"({report['scores']['count']:,} scored)")
        axes.legend()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue()


def write_report(report: dict, output: str) -> None:
    """``report.json``, ``report.md`` and ``scores.png`` under ``output`` (a local folder or ``s3://``)."""
    write_text(join(output, SELECTION_REPORT_JSON), json.dumps(report, indent=2) + "\n")
    write_text(join(output, SELECTION_REPORT_MD), render_markdown(report))
    write_bytes(join(output, SCORES_PNG), plot_scores(report))
