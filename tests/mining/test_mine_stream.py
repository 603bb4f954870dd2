"""The corpus streams: checked by an id-only pass, read lazily, --limit and resume decided by ids."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.cli.main import main
from lsr.core.errors import InputError
from lsr.data.io import index_documents, read_documents, stream_documents


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"d{i:03d}", "document": f"Document {i}. It has a second sentence.", "summary": f"Sum {i}."}
            for i in range(start, start + n)]


def test_documents_are_a_lazy_stream_and_the_index_keeps_ids_in_file_order(ray_local, tmp_path):
    from ray.data.dataset import MaterializedDataset

    folder = tmp_path / "in"
    folder.mkdir()
    # Three files; the second holds a removed row. File order is the sorted path order.
    pq.write_table(pa.Table.from_pylist(_rows(3, 0)), folder / "part-0.parquet")
    second = _rows(3, 3)
    second[1]["summary"] = " "
    pq.write_table(pa.Table.from_pylist(second), folder / "part-1.parquet")
    pq.write_table(pa.Table.from_pylist(_rows(3, 6)), folder / "part-2.parquet")

    index = index_documents(str(folder))
    assert index.ids.to_pylist() == ["d000", "d001", "d002", "d003", "d005", "d006", "d007", "d008"]
    assert index.report.rows_read == 9 and index.report.removed == {"empty_summary": 1}

    ds, report = read_documents(str(folder))
    assert not isinstance(ds, MaterializedDataset)  # nothing is held before a consumer pulls
    assert sorted(r["id"] for r in ds.take_all()) == index.ids.to_pylist() and report == index.report

    first, _ = read_documents(str(folder), limit=4)  # the first rows of the files, not whichever block is first
    assert sorted(r["id"] for r in first.take_all()) == ["d000", "d001", "d002", "d003"]
    rest = stream_documents(index, pa.array(["d000", "d008"]), exclude=True)
    assert sorted(r["id"] for r in rest.take_all()) == ["d001", "d002", "d003", "d005", "d006", "d007"]


def test_mining_limit_and_resume_follow_the_ids_and_count_removed_rows(ray_local, tmp_path, write_jsonl):
    rows = _rows(14)
    rows[2]["document"] = ""  # removed at read: counted, never mined, not "missing"
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    args = ["mine", "--input", str(path), "--output", str(out), "--dataset", "xsum", "--engine", "oracle",
            "--rows-per-file", "4"]

    assert main([*args, "--limit", "5"]) == 0
    first = json.loads((tmp_path / "out.report.json").read_text())
    assert sorted(pq.read_table(out, columns=["id"]).column("id").to_pylist()) == ["d000", "d001", "d003", "d004",
                                                                                     "d005"]
    assert first["removed_at_read"] == {"empty_document": 1} and first["complete"] and first["input_rows"] == 5

    assert main([*args, "--limit", "9"]) == 0  # four more, the next ones in file order
    second = json.loads((tmp_path / "out.report.json").read_text())
    assert (second["processed_this_run"], second["resumed_from_earlier_runs"]) == (4, 5) and second["complete"]

    assert main(args) == 0  # no limit: the rest, streamed with the done ids cleared
    ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == [r["id"] for r in rows if r["document"]]
    third = json.loads((tmp_path / "out.report.json").read_text())
    assert (third["processed_this_run"], third["resumed_from_earlier_runs"], third["output_rows"]) == (4, 9, 13)


def test_duplicate_ids_stop_mining_before_anything_is_written(ray_local, tmp_path, capsys, write_jsonl):
    rows = _rows(6)
    rows[4]["id"] = "d001"
    path = write_jsonl(tmp_path / "dup.jsonl", rows)
    out = tmp_path / "out"
    code = main(["mine", "--input", str(path), "--output", str(out), "--dataset", "xsum", "--engine", "oracle"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "1 id(s) occur more than once (e.g. d001)" in err and len(err.splitlines()) == 1
    assert not list(out.glob("*.parquet"))
    with pytest.raises(InputError, match="occur more than once"):
        index_documents(str(path))
