"""Input checks: types are checked, not coerced; the right line of a malformed JSON file; before Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.core.errors import InputError
from lsr.data.io import check_documents, read_documents
from tests.helpers.paths import REPO


def test_a_non_text_document_column_is_an_input_error_naming_column_and_type(ray_local, tmp_path):
    path = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "document": [1.5, 2.5], "summary": ["s", "t"]}), path)
    with pytest.raises(InputError, match=r"floats.parquet: column 'document' holds double values, not text"):
        check_documents(str(path))  # from the footer, before Ray
    jsonl = tmp_path / "numbers.jsonl"
    jsonl.write_text("".join(json.dumps({"id": str(i), "document": i + 0.5, "summary": "s"}) + "\n" for i in range(3)))
    with pytest.raises(InputError, match=r"column 'document' holds double values, not text"):
        read_documents(str(jsonl))  # JSON's types are known only once read


def test_a_malformed_json_line_is_named_by_its_number(ray_local, tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps({"id": str(i), "document": f"Doc {i}.", "summary": "S."}) for i in range(12)]
    lines[10] = '{"id": "10", "document": "broken'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl: line 11 is not valid JSON"):
        read_documents(str(path))


def test_check_documents_needs_no_ray(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        check_documents(str(tmp_path / "missing.jsonl"))
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({"article": "A.", "highlights": "B."}) + "\n")
    _, files, fmt, columns = check_documents(str(path))
    assert fmt == "json" and columns.document == "article" and len(files) == 1


def test_mine_with_a_missing_input_is_one_line_before_ray_starts(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "lsr.cli", "mine", "--input", str(tmp_path / "nope.jsonl"), "--output",
         str(tmp_path / "out"), "--dataset", "cnndm", "--engine", "oracle"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "nope.jsonl: no such file or directory" in done.stderr and "ray" not in done.stderr.lower()
    assert time.monotonic() - started < 6 and not (tmp_path / "out").exists()
