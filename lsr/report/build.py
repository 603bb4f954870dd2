"""The run report as one self-contained HTML page, built from the files a run directory holds."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from lsr import __version__
from lsr.core.errors import InputError
from lsr.report.examples import examples_section
from lsr.report.markup import Markup, Section, join, missing, page, paragraph, tag
from lsr.report.sections import evaluation_section, input_section, selection_section
from lsr.report.training import training_section

REPORT_FILE = "report.html"
#: Every section the page has, in order: its id (the page's anchor) and its builder.
SECTIONS = (
    ("input", input_section),
    ("selection", selection_section),
    ("training", training_section),
    ("evaluation", evaluation_section),
    ("examples", examples_section),
)
SECTION_IDS = tuple(section_id for section_id, _ in SECTIONS)

log = logging.getLogger(__name__)


def build_sections(root: Path) -> list[Section]:
    """Every section; one that fails on a file of unexpected content (a field of the wrong type, say) becomes a
    note naming the error, so the rest of the page, which the demo writes last, is not lost with it."""
    sections = []
    for section_id, builder in SECTIONS:
        try:
            sections.append(builder(root))
        except Exception as err:  # noqa: BLE001 - shown on the page and logged, never dropped
            log.warning("report section %s failed: %s: %s", section_id, type(err).__name__, err)
            note = missing(f"this section could not be built from the run's files ({type(err).__name__}: {err})")
            sections.append(Section(section_id, section_id.capitalize(), note))
    return sections


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
