"""The ES/AS split statistics of a segmented data set, as JSON and as a readable Markdown table.

Per row, :func:`row_stats` counts segments and words of each type, per role, and the turns the chain makes;
:func:`build_report` aggregates those rows (a small numeric table, whatever the data set's size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lsr.ases.chain import ROLES, Segment, turns
from lsr.ases.segment import words


def row_stats(segments: Sequence[Segment], summary: str) -> dict[str, int]:
    """The numbers one row adds to the report."""
    stats: dict[str, int] = {"turns": len(turns(segments, summary))}
    for kind in ("ES", "AS"):
        typed = [s for s in segments if s.type == kind]
        stats[f"{kind}_segments"] = len(typed)
        stats[f"{kind}_words"] = sum(len(words(s.text)) for s in typed)
        for role in ROLES:
            stats[f"{kind}_{role}"] = sum(1 for s in typed if s.role == role)
    return stats


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def build_report(stats: Sequence[Mapping[str, int]], *, scheme: str, parameters: Mapping[str, Any],
                 input_path: str, output: str, truncated_pieces: int = 0) -> dict[str, Any]:
    """The report of a segmentation run from every row's :func:`row_stats`."""
    def total(key: str) -> int:
        return int(sum(row.get(key, 0) for row in stats))

    rows = len(stats)
    es, as_ = total("ES_segments"), total("AS_segments")
    es_words, as_words = total("ES_words"), total("AS_words")
    roles = {}
    for role in ROLES:
        r_es, r_as = total(f"ES_{role}"), total(f"AS_{role}")
        if r_es or r_as:
            roles[role] = {"ES": r_es, "AS": r_as, "es_share": _share(r_es, r_es + r_as)}
    return {
        "scheme": scheme,
        "parameters": dict(parameters),
        "input": input_path,
        "output": output,
        "rows": rows,
        "segments": {"ES": es, "AS": as_, "es_share": _share(es, es + as_)},
        "words": {"ES": es_words, "AS": as_words, "es_share": _share(es_words, es_words + as_words)},
        "per_role": roles,
        "mean_segments_per_row": _share(es + as_, rows),
        "mean_turns_per_row": _share(total("turns"), rows),
        "rows_without_es": sum(1 for row in stats if not row.get("ES_segments")),
        "truncated_pieces": truncated_pieces,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_markdown(report: Mapping[str, Any]) -> str:
    segments, words_ = report["segments"], report["words"]
    lines = [
        f"# AS-ES segmentation ({report['scheme']})",
        "",
        f"Input `{report['input']}`, {report['rows']} rows; parameters: "
        + ", ".join(f"{k}={v}" for k, v in report["parameters"].items()),
        "",
        "| | ES | AS | ES share |",
        "|---|---:|---:|---:|",
        f"| segments | {segments['ES']} | {segments['AS']} | {_pct(segments['es_share'])} |",
        f"| words | {words_['ES']} | {words_['AS']} | {_pct(words_['es_share'])} |",
    ]
    lines += [f"| role: {role} | {v['ES']} | {v['AS']} | {_pct(v['es_share'])} |"
              for role, v in report["per_role"].items()]
    lines += [
        "",
        f"Mean segments per row {_num(report['mean_segments_per_row'])}, mean turns per row "
        f"{_num(report['mean_turns_per_row'])}; rows without any ES segment: {report['rows_without_es']}; "
        f"pieces past the scorer's token limit: {report['truncated_pieces']}.",
        "",
    ]
    return "\n".join(lines)
