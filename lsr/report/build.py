"""The run report as one self-contained HTML page, built from the files a run directory holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lsr import __version__
from lsr.errors import InputError
from lsr.report.examples import examples_section
from lsr.report.markup import Markup, Section, join, page, paragraph, tag
from lsr.report.sections import evaluation_section, input_section, selection_section
from lsr.report.training import training_section

REPORT_FILE = "report.html"
#: Every section the page has, in order (their ids are the page's anchors).
SECTIONS = (input_section, selection_section, training_section, evaluation_section, examples_section)
SECTION_IDS = ("input", "selection", "training", "evaluation", "examples")


def build_sections(root: Path) -> list[Section]:
    return [builder(root) for builder in SECTIONS]


def render_report(run_dir: str | Path, now: dt.datetime | None = None) -> str:
    """The page for ``run_dir``; a stage whose files are absent gets a section saying what is missing."""
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"{run_dir}: no such run directory (give the folder `lsr demo --output` wrote)")
    when = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M %Z").strip()
    header: Markup = join(
        [
            tag("h1", "lsr run report"),
            paragraph("Run directory: ", tag("code", str(root.resolve()))),
            paragraph(f"Generated {when} by lsr {__version__}."),
        ]
    )
    return page(f"lsr run report: {root.resolve().name}", header, build_sections(root))


def write_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the page to ``output`` (default ``RUN_DIR/report.html``) and return its path."""
    path = Path(output) if output else Path(run_dir) / REPORT_FILE
    text = render_report(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
