"""Which failed rows a resumed run mines again, by the kind of failure recorded in the row's ``error``.

A row's ``error`` is ``"<category>: <detail>"`` (:mod:`lsr.mining.rows`). Kinds:

- ``transient``: the request failed for a reason outside the row: HTTP 5xx, 408, 425 or 429, a timeout, a
  connection error, and HTTP 401/403 (the credentials, fixed by the user, not the row). Retried on resume by
  default (``--retry-failed``; ``--no-retry-failed`` keeps them).
- ``unparsable``: the model answered, but not in the format asked for, or its reply was cut at ``max_tokens``
  (``*_truncated``). Asking again at temperature 0 usually gives the same answer, so these are retried only with
  ``--retry-unparsable``.
- ``permanent``: anything else (the document cannot fit the context, another 4xx, a reply without content).
"""

from __future__ import annotations

import re

from lsr.mining.rows import (
    RATIONALE_REQUEST_FAILED,
    RATIONALE_TRUNCATED,
    RATIONALE_UNPARSABLE,
    SUMMARIES_REQUEST_FAILED,
    SUMMARIES_TRUNCATED,
    SUMMARIES_UNPARSABLE,
)

TRANSIENT = "transient"
UNPARSABLE = "unparsable"
PERMANENT = "permanent"

_TRANSIENT_DETAIL = re.compile(
    r"HTTP (5\d\d|408|425|429|401|403)\b|timeout|timed out|connect|disconnected|ClientOSError|ClientPayloadError",
    re.IGNORECASE,
)


def failure_kind(error: str) -> str:
    category, _, detail = error.partition(":")
    category = category.strip()
    if category in (RATIONALE_UNPARSABLE, SUMMARIES_UNPARSABLE, RATIONALE_TRUNCATED, SUMMARIES_TRUNCATED):
        return UNPARSABLE
    if category in (RATIONALE_REQUEST_FAILED, SUMMARIES_REQUEST_FAILED) and _TRANSIENT_DETAIL.search(detail):
        return TRANSIENT
    return PERMANENT


def should_retry(error: str | None, *, transient: bool, unparsable: bool) -> bool:
    """Whether a row with ``error`` is mined again on resume."""
    if error is None:
        return False
    kind = failure_kind(error)
    return (kind == TRANSIENT and transient) or (kind == UNPARSABLE and unparsable)
