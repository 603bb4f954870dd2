"""The repository's folders, found from this file (tests/helpers/paths.py), wherever the checkout is."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The 40-row real samples shipped in the package (the demo's input too); provenance in tests/fixtures/README.md.
SAMPLES = REPO / "lsr" / "samples"
#: Fixtures only the tests need (the parser's LLM outputs), beside their provenance (tests/fixtures/README.md).
TEST_DATA = REPO / "tests" / "fixtures"
