"""The guard that keeps evaluation on plain test documents.

``lsr evaluate`` scores against the gold summaries of an unfiltered test split. Data carrying mining or
selection columns (rationales, sub-summaries, scores, a kept flag) is a stage's output: most likely training
rows, or a split that was filtered, and either would report a score the paper's Table 2 cannot be compared
with. Such data is refused unless ``--force``, which turns the refusal into a warning recorded in the results.
"""

from __future__ import annotations

import sys

from lsr.core import schema
from lsr.core.errors import InputError
from lsr.data.io import input_columns

#: Columns that only mining (RATIONALES) and selection (SCORED) write: anything beyond id, document, summary.
STAGE_COLUMNS = frozenset((set(schema.RATIONALES.names) | set(schema.SCORED.names)) - set(schema.DOCUMENTS.names))


def stage_columns(columns: list[str]) -> list[str]:
    """The mining or selection columns among ``columns``, in their order."""
    return [c for c in columns if c in STAGE_COLUMNS]


def check_test_data(path: str, *, force: bool = False) -> list[str]:
    """Refuse (or, forced, warn about) data that carries mining or selection columns; return those columns."""

    found = stage_columns(input_columns(path))
    if not found:
        return []
    shown = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
    message = (f"--data {path}: carries mining/selection columns ({shown}): this looks like a stage's output "
               "(training or filtered rows), not an unfiltered test split")
    if not force:
        raise InputError(f"{message}; give the raw test documents, or pass --force to evaluate on it anyway")
    print(f"warning: {message}; evaluating anyway (--force)", file=sys.stderr)
    return found
