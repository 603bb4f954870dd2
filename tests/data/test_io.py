"""Reading corpora in their common shapes, and failing with one clear line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.core import schema
from lsr.core.errors import InputError
from lsr.data.io import content_id, read_documents, read_parquet_dir, write_parquet
from lsr.data.stats import corpus_stats


def test_reads_the_cnndm_sample_with_table1_figures(ray_local, cnndm_path):
    ds, report = read_documents(str(cnndm_path))
    stats = corpus_stats(ds)
    assert stats.examples == 40 == report.rows_kept == report.rows_read
    assert ds.columns() == ["id", "document", "summary"]
    # These 40 rows average 536.6 and 49.4 whitespace words (the full 256-row file's card: ~523 and ~49).
    assert 530 < stats.avg_document_words < 545
    assert 45 < stats.avg_summary_words < 53


def test_cnndm_column_names_and_missing_ids_get_stable_hashes(ray_local, tmp_path, write_jsonl):
    rows = [{"article": f"Article number {i}.", "highlights": f"Highlight {i}."} for i in range(5)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    ds, _ = read_documents(str(path))
    got = sorted(ds.take_all(), key=lambda r: r["document"])
    assert [r["id"] for r in got] == [content_id(r["article"], r["highlights"]) for r in rows]
    again, _ = read_documents(str(path))
    assert sorted(r["id"] for r in again.take_all()) == sorted(r["id"] for r in got)


def test_empty_documents_and_summaries_are_removed_and_counted(ray_local, tmp_path, write_jsonl):
    rows = [
        {"id": "a", "document": "A real document.", "summary": "Real."},
        {"id": "b", "document": "   ", "summary": "No document."},
        {"id": "c", "document": "No summary here.", "summary": ""},
        {"id": "d", "document": "Another.", "summary": None},
    ]
    ds, report = read_documents(str(write_jsonl(tmp_path / "x.jsonl", rows)))
    assert [r["id"] for r in ds.take_all()] == ["a"]
    assert report.rows_read == 4 and report.rows_kept == 1
    assert report.removed == {"empty_document": 1, "empty_summary": 2}


def test_a_json_lines_file_is_read_as_a_stream_of_blocks(ray_local, tmp_path, write_jsonl):
    """Ray's read_json parsed a file whole in one task (1.3 GiB of worker memory for a 237 MiB corpus) and then
    split the task's output; the stream reads Arrow blocks of 1 MB one after another, one read task per file."""
    rows = [{"id": f"d{i}", "document": f"Document {i}. " + "word " * 400, "summary": f"S {i}."} for i in range(1200)]
    path = write_jsonl(tmp_path / "one.jsonl", rows)
    assert path.stat().st_size > 2_000_000  # more than one reader block
    ds, _ = read_documents(str(path))
    got = ds.take_all()
    assert [r["id"] for r in got] == [r["id"] for r in rows]  # every row once, in file order
    plan = ds.stats()
    assert "ReadJsonLinesStream" in plan and "ReadArrowJSON" not in plan and "SplitBlocks" not in plan


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_parquet_and_csv_folders_are_read(ray_local, tmp_path, fmt):
    table = pa.table({"id": ["1", "2", "3"], "document": ["d one", "d two", "d three"], "summary": ["s", "s", "s"]})
    folder = tmp_path / "in"
    folder.mkdir()
    if fmt == "parquet":
        pq.write_table(table.slice(0, 2), folder / "part-0.parquet")
        pq.write_table(table.slice(2), folder / "part-1.parquet")
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, folder / "all.csv")
    ds, report = read_documents(str(folder))
    assert sorted(r["id"] for r in ds.take_all()) == ["1", "2", "3"]
    assert len(report.files) == (2 if fmt == "parquet" else 1)


def test_duplicate_ids_are_refused(ray_local, tmp_path, write_jsonl):
    rows = [{"id": "same", "document": "one", "summary": "s"}, {"id": "same", "document": "two", "summary": "s"}]
    with pytest.raises(InputError, match="occur more than once"):
        read_documents(str(write_jsonl(tmp_path / "dup.jsonl", rows)))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("nocol.jsonl", '{"id": "1", "body": "x", "summary": "y"}\n', "missing column 'document'"),
        ("empty.jsonl", "", "the file is empty"),
        ("notes.txt", "hello\n", "unknown format .txt"),
        ("array.json", '[{"document": "x", "summary": "y"}]', "JSON array"),
        ("broken.jsonl", "{not json\n", "not valid JSON"),
    ],
)
def test_bad_inputs_name_the_file_and_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        read_documents(str(path))
    assert name in str(err.value)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_documents(str(tmp_path / "absent.jsonl"))


def test_cli_prints_one_line_and_exits_nonzero(tmp_path):
    path = tmp_path / "nocol.csv"
    path.write_text("id,text_body,summary\n1,x,y\n")
    result = subprocess.run(
        [sys.executable, "-m", "lsr.cli", "data", "stats", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "missing column 'document'" in result.stderr and "Traceback" not in result.stderr


def test_written_parquet_has_the_explicit_schema_and_is_read_back(ray_local, tmp_path):
    import ray.data

    ds = ray.data.from_items([{"summary": "s", "id": "1", "document": "d", "extra": 3}])
    write_parquet(ds, str(tmp_path / "out"), schema.DOCUMENTS)
    files = list((tmp_path / "out").glob("*.parquet"))
    assert files and pq.read_schema(files[0]).names == ["id", "document", "summary"]
    back = read_parquet_dir(str(tmp_path / "out"), ["id", "document"])
    assert back.take_all() == [{"id": "1", "document": "d", "summary": "s"}]
    with pytest.raises(InputError, match="missing column"):
        read_parquet_dir(str(tmp_path / "out"), ["aspects"])


def test_reads_documents_from_s3(ray_local, s3):
    """An ``s3://`` input through pyarrow's S3 filesystem, against a moto server on loopback."""
    s3.create_bucket(Bucket="corpus")
    body = "".join(json.dumps({"id": str(i), "document": f"doc {i}", "summary": "s"}) + "\n" for i in range(3))
    s3.put_object(Bucket="corpus", Key="cnndm/train.jsonl", Body=body.encode())
    ds, report = read_documents("s3://corpus/cnndm/train.jsonl")
    assert sorted(r["id"] for r in ds.take_all()) == ["0", "1", "2"]
    assert report.files == ["s3://corpus/cnndm/train.jsonl"]


def test_word_counts_ignore_surrounding_whitespace_and_count_empty_texts_as_zero():
    import pyarrow as pa

    from lsr.data.stats import word_counts

    assert word_counts(pa.array(["a b ", "", None, " x  y z", "one"])).to_pylist() == [2, 0, 0, 3, 1]
