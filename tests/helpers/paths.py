"""The repository's folders, found from this file (tests/helpers/paths.py), wherever the checkout is."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The 40-row real samples shipped in the package (the demo's input too); provenance in tests/fixtures/README.md.
SAMPLES = REPO / "lsr" / "samples"
#: Fixtures only the tests need (the parser's LLM outputs), beside their provenance (tests/fixtures/README.md).
TEST_DATA = REPO / "tests" / "fixtures"


def sample_documents() -> list[str]:
    """The documents of every shipped sample (CNN/DailyMail's, then XSum's), in file order: a load for the benches."""
    docs = []
    for path in sorted(SAMPLES.glob("*.jsonl")):
        docs += [json.loads(line)["document"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return docs
