"""The run report: one self-contained HTML page over a run directory (``lsr report RUN_DIR``).

``run_files`` reads what the stages wrote, ``plots`` draws what is not drawn yet, ``sections``, ``training``
and ``examples`` lay out one part each, ``markup`` holds the escaped HTML pieces and ``build`` puts the page
together.
"""

from lsr.report.build import REPORT_FILE, SECTION_IDS, render_report, write_report

__all__ = ["REPORT_FILE", "SECTION_IDS", "render_report", "write_report"]
