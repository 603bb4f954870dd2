"""``lsr report``: the page has every section, its images are real embedded PNGs, its text is escaped, and a run
with a stage missing still gets a page that says what is missing.

The fake run directory is written with the stages' own writers (mining report, selection report, gate plot,
evaluation tables) so a change in what a stage writes shows up here.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.cli.main import main
from lsr.core import schema
from lsr.core.config import preset
from lsr.evaluation.results import ModelResult, write_tables
from lsr.mining.report import MiningReport
from lsr.mining.report import write_report as write_mining_report
from lsr.report import SECTION_IDS, render_report
from lsr.report.build import build_sections
from lsr.report.markup import PNG_SIGNATURE, esc
from lsr.report.run_files import CorpusFigures, corpus_figures
from lsr.selection.report import build_report as build_selection_report
from lsr.selection.report import write_report as write_selection_report
from lsr.training.gates_plot import plot_gates

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


class Page(HTMLParser):
    """The parts of a page the tests look at: tags seen, images, section ids and each section's text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.sections: dict[str, str] = {}
        self.current: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        if tag in ("a", "link", "script", "iframe") or attrs.get("href"):
            self.links.append(attrs.get("href") or attrs.get("src") or "")
        if tag == "section":
            self.current = attrs.get("id")
            self.sections[self.current] = ""

    def handle_endtag(self, tag):
        if tag == "section":
            self.current = None

    def handle_data(self, data):
        if self.current:
            self.sections[self.current] += data


def test_page_parser_sees_sections():
    page = Page('<section id="a"><h2>A</h2>x &amp; y</section><p>out</p>')
    assert page.sections == {"a": "Ax & y"}


def _history(gates: bool, steps: int = 6) -> list[dict]:
    rows = []
    for step in range(1, steps + 1):
        row = {"step": step, "epoch": 0, "loss": 5.0 / step, "loss/ce": 6.0 / step, "lr": 1e-3, "grad_norm": 1.0}
        if gates:
            row["loss/align_ea"] = 0.5
            row.update({f"gate/{view}/{layer}": 0.02 * step for view in ("ea", "as") for layer in (0, 1)})
        rows.append(row)
    rows.append({"step": steps, "val_rouge1": 0.2, "val_rouge2": 0.05, "val_rougeLsum": 0.18, "val_rouge": 0.14})
    return rows


def _rationale_row(doc: dict) -> dict:
    row = {name: None for name in schema.RATIONALES.names}
    triple = {"subject": "Ann", "relation": "wins", "object": "<prize>"}
    row.update(
        doc,
        aspects=["award"],
        sentences=["Ann won the prize."],
        triples=[[triple]],
        sub_summaries=["Ann wins."],
        total_summary="Ann won.",
        problems=[],
        engine="oracle",
        model="oracle-extractive-v1",
        truncated=False,
    )
    return row


@pytest.fixture()
def run_dir(tmp_path: Path, write_jsonl) -> Path:
    """A small run directory laid out as ``lsr demo`` writes it, every stage present."""
    run = tmp_path / "run"
    train = [
        {"id": f"train-{i}", "document": " ".join(["one two three four"] * (i + 1)), "summary": "one two"}
        for i in range(4)
    ]
    test = [
        {"id": f"test-{i}", "document": f"test document {i} " * 20, "summary": f"gold summary {i}"} for i in range(7)
    ]
    test[0]["summary"] = HOSTILE
    write_jsonl(run / "data" / "train.jsonl", train)
    write_jsonl(run / "data" / "test.jsonl", test)

    # Mining: the rationales (test-1 mined too, to show a rationale beside the summaries) and the report.
    (run / "mined").mkdir()
    mined = [_rationale_row(d) for d in train + [test[1]]]
    pq.write_table(pa.Table.from_pylist(mined, schema=schema.RATIONALES), run / "mined" / "part-0.parquet")
    mining = MiningReport(
        str(run / "data" / "train.jsonl"),
        str(run / "mined"),
        "cnndm",
        "oracle",
        "oracle-v1",
        input_rows=4,
        output_rows=4,
        done=3,
        failed=1,
        failed_by_reason={"parse": 1},
    )
    write_mining_report(mining, str(run / "mined"))

    verdicts = pd.DataFrame(
        {
            "score": [0.5, 0.7, 0.9, None],
            "kept": [True, True, False, False],
            "reject_reason": [None, None, "score_above_threshold", "mining_error"],
            "document_words": [4, 8, 12, 16],
            "summary_words": [2, 2, 2, 2],
        }
    )
    report = build_selection_report(
        verdicts, preset("cnndm").selection, dataset="cnndm", input_path=str(run / "mined"),
        output=str(run / "selected"),
    )  # fmt: skip
    write_selection_report(report, str(run / "selected"))

    for name, gates in (("mwf", True), ("plain", False)):
        (run / name / "model").mkdir(parents=True)
        write_jsonl(run / name / "history.jsonl", _history(gates))
        if gates:
            plot_gates(_history(gates), run / name / "gates.png", title="gates")
        (run / name / "train_report.json").write_text(
            json.dumps(
                {
                    "settings": {
                        "objective": "mwf" if gates else "finetune",
                        "views": ["ea", "as"] if gates else [],
                        "model": "tiny",
                    },
                    "examples": 2,
                    "validation_examples": 7,
                    "steps": 6,
                    "metrics": {
                        "loss": 0.9,
                        "val_rouge1": 0.2,
                        "val_rouge2": 0.05,
                        "val_rougeLsum": 0.18,
                        "examples_per_s": 3.5,
                    },
                }
            )
        )

    results = []
    for name, folder in (("LSR-MWF", "mwf"), ("BART", "plain")):
        rows = [
            {**d, "prediction": f"{name} says {i} & <i>more</i>", "rouge1": 0.3, "rouge2": 0.1, "rougeLsum": 0.25}
            for i, d in enumerate(test)
        ]
        (run / "eval" / name).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), run / "eval" / name / "predictions.parquet")
        results.append(
            ModelResult(
                name,
                str(run / folder / "model"),
                len(rows),
                str(run / "eval" / name / "predictions.parquet"),
                {"rouge1": 0.3, "rouge2": 0.1, "rougeLsum": 0.25, "bertscore": None},
            )
        )
    write_tables(
        results,
        run / "eval",
        "cnndm",
        {
            "dataset": "cnndm",
            "data": str(run / "data" / "test.jsonl"),
            "examples": len(test),
            "generation": {"num_beams": 2},
        },
    )
    return run


def _decoded_png(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:60]
    data = base64.b64decode(src[len(prefix) :], validate=True)
    assert data.startswith(PNG_SIGNATURE)
    return data


def _assert_readable_png(data: bytes) -> None:
    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100


def test_cli_writes_a_page_with_every_section_and_embedded_pngs(run_dir: Path, capsys):
    assert main(["report", str(run_dir)]) == 0
    path = run_dir / "report.html"
    assert f"report: {path}" in capsys.readouterr().out
    page = Page(path.read_text(encoding="utf-8"))
    assert list(page.sections) == list(SECTION_IDS)
    # Score histogram, two loss curves, one gate plot (the plain baseline has no gates).
    assert len(page.images) == 4
    for src in page.images:
        _assert_readable_png(_decoded_png(src))
    assert "Not available" not in "".join(page.sections.values())


def test_page_is_self_contained(run_dir: Path):
    page = Page(render_report(run_dir))
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    assert all(href.startswith("#") for href in page.links), page.links
    assert all(src.startswith("data:") for src in page.images)


def test_every_text_is_escaped(run_dir: Path):
    text = render_report(run_dir)
    page = Page(text)
    assert "script" not in page.tags and "i" not in page.tags
    assert HOSTILE in page.sections["examples"]  # shown literally, as text
    assert esc(HOSTILE) in text
    assert "LSR-MWF says 0 & <i>more</i>" in page.sections["examples"]
    assert "<prize>" in page.sections["examples"]  # a mined triple


def test_sections_hold_each_stage_figures(run_dir: Path):
    sections = Page(render_report(run_dir)).sections
    # Table 1: both data files and the kept set; the mining report's outcome.
    assert "train (train.jsonl)" in sections["input"] and "test (test.jsonl)" in sections["input"]
    assert corpus_figures(run_dir / "data" / "train.jsonl") == CorpusFigures("train", 4, 10.0, 2.0)
    assert "train (train.jsonl)410.02.0" in sections["input"]  # the cells of its row, in order
    assert "training set after selection" in sections["input"] and "1 parse" in sections["input"]
    # Selection: counts by reason, as the selection report has them.
    assert "rejected: score above threshold" in sections["selection"]
    assert "rejected: mining error" in sections["selection"]
    # Training, one block per model, named as the evaluation named it.
    assert "LSR-MWF" in sections["training"] and "BART (plain/)" in sections["training"]
    assert "No gates" in sections["training"]
    # The results table x100.
    assert "30.00" in sections["evaluation"] and "10.00" in sections["evaluation"]


def test_examples_show_five_documents_side_by_side(run_dir: Path):
    text = render_report(run_dir)
    examples = Page(text).sections["examples"]
    shown = [f"test-{i}" for i in range(7) if f"Document test-{i}" in examples]
    assert shown == [f"test-{i}" for i in range(5)]
    for i in range(5):
        assert f"gold summary {i}" in examples or i == 0
        assert f"LSR-MWF says {i}" in examples and f"BART says {i}" in examples
    assert "Ann won the prize." in examples  # test-1 was mined
    assert examples.count("Not mined") == 4


def test_model_names_come_from_the_results_and_moved_runs_still_match(run_dir: Path, tmp_path: Path):
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    for model, (new, folder) in zip(results["models"], (("Student", "mwf"), ("Baseline", "plain")), strict=True):
        (run_dir / "eval" / model["name"]).rename(run_dir / "eval" / new)
        model["name"] = new
        model["path"] = f"somewhere/else/{run_dir.name}/{folder}/model"  # recorded before the run was moved
        model["predictions"] = "gone.parquet"
    (run_dir / "eval" / "results.json").write_text(json.dumps(results))
    sections = Page(render_report(run_dir)).sections
    assert "Student (mwf/)" in sections["training"] and "Baseline (plain/)" in sections["training"]
    assert "Student" in sections["evaluation"] and "Baseline" in sections["examples"]


def test_missing_plots_are_redrawn(run_dir: Path):
    (run_dir / "selected" / "scores.png").unlink()
    (run_dir / "mwf" / "gates.png").unlink()
    page = Page(render_report(run_dir))
    assert len(page.images) == 4
    for src in page.images:
        _decoded_png(src)
    assert "re-drawn" in page.sections["selection"] and "re-drawn" in page.sections["training"]


@pytest.mark.parametrize(
    ("remove", "section", "says"),
    [
        (["data"], "input", "train (train.jsonl)"),
        (["mined.report.json"], "input", "mined.report.json does not exist"),
        (["selected"], "selection", "report.json does not exist"),
        (["mwf", "plain"], "training", "no trained model"),
        (["plain/history.jsonl"], "training", "history.jsonl does not exist"),
        (["eval"], "evaluation", "results.json does not exist"),
        (["eval/BART"], "examples", "predictions.parquet does not exist"),
        (["mined"], "examples", "mined does not exist"),
    ],
)
def test_a_missing_stage_gives_a_section_saying_so(run_dir: Path, remove: list[str], section: str, says: str):
    for name in remove:
        target = run_dir / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert main(["report", str(run_dir)]) == 0
    page = Page((run_dir / "report.html").read_text(encoding="utf-8"))
    assert list(page.sections) == list(SECTION_IDS)
    if remove == ["data"]:
        assert says not in page.sections[section]  # the kept set's row stays, the data rows go
        assert "training set after selection" in page.sections[section]
    else:
        assert "Not available" in page.sections[section] and says in page.sections[section]
    for src in page.images:
        _decoded_png(src)


def test_an_empty_run_dir_still_gets_every_section(tmp_path: Path):
    page = Page(render_report(tmp_path))
    assert list(page.sections) == list(SECTION_IDS)
    assert all("Not available" in text for text in page.sections.values())


def test_broken_files_are_reported_not_raised(run_dir: Path):
    (run_dir / "eval" / "results.json").write_text("{not json")
    (run_dir / "mwf" / "history.jsonl").write_text('{"step": 1}\nnot json\n')
    (run_dir / "selected" / "scores.png").write_bytes(b"GIF89a")
    (run_dir / "data" / "test.jsonl").write_text("not json\n")
    sections = Page(render_report(run_dir)).sections
    assert "test.jsonl could not be read as JSON Lines" in sections["input"]
    assert "train (train.jsonl)" in sections["input"]
    assert "could not be read as JSON" in sections["evaluation"]
    assert "line 2, is not JSON" in sections["training"]
    assert "is not a PNG image" in sections["selection"] and "re-drawn" in sections["selection"]


def test_section_ids_are_the_builders_ids(run_dir: Path):
    assert tuple(s.id for s in build_sections(run_dir)) == SECTION_IDS


def test_a_missing_run_dir_is_a_one_line_error(tmp_path: Path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_markup_stays_markup_and_text_is_escaped_when_joined():
    from lsr.report.markup import Markup, join, tag

    assert Markup("<b>") + "<i>" == "<b>&lt;i&gt;"
    assert (
        tag("p", join([tag("em", "a<b"), "c&d"], " "), class_='x"y')
        == '<p class="x&quot;y"><em>a&lt;b</em> c&amp;d</p>'
    )


def test_unexpected_file_content_is_a_note_not_a_crash(run_dir: Path):
    (run_dir / "mined.report.json").write_text("[1, 2]")
    report = json.loads((run_dir / "selected" / "report.json").read_text())
    report["rejected_by_reason"] = 5  # a field of the wrong type
    (run_dir / "selected" / "report.json").write_text(json.dumps(report))
    page = Page(render_report(run_dir))
    assert list(page.sections) == list(SECTION_IDS)
    assert "mined.report.json is not a JSON object" in page.sections["input"]
    assert "could not be built" in page.sections["selection"] and "AttributeError" in page.sections["selection"]
    assert "Not available" not in page.sections["evaluation"]
