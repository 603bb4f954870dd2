"""The owned output folder: manifest, lock with its stale rule, foreign files refused, interrupted writes finished."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.cli.main import main
from lsr.core.config import preset
from lsr.core.errors import InputError
from lsr.data.unique_ids import check_unique_ids
from lsr.mining.engines import OracleEngine
from lsr.mining.output import LOCK, MANIFEST, STALE_AFTER_S, TMP_PREFIX, OwnedOutput


def _config(tmp_path, out, *, dataset="cnndm", input_name="in.jsonl"):
    return SimpleNamespace(
        input=str(tmp_path / input_name), output=str(out), dataset=dataset, engine=OracleEngine(),
        mining=preset(dataset).mining,
    )


def _rows(n, start=0):
    return pa.table({"id": [f"d{i}" for i in range(start, start + n)]})


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_files_are_listed_and_a_second_open_resumes_only_them(tmp_path):
    out = tmp_path / "out"
    owned, opened = OwnedOutput.open(_config(tmp_path, out))
    assert opened.files == [] and (out / LOCK).exists()
    first = owned.add(_rows(3))
    owned.add(_rows(2, start=3))
    owned.release()
    assert not (out / LOCK).exists()
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["identity"]["engine"] == "oracle" and len(manifest["files"]) == 2
    assert manifest["identity"]["prompt_version"] and manifest["identity"]["mining"]["rationale_max_tokens"] == 1024
    assert sorted(p.name for p in out.iterdir()) == sorted([*manifest["files"], MANIFEST])

    again, opened = OwnedOutput.open(_config(tmp_path, out))
    assert sorted(opened.files) == sorted(again.files()) and first in opened.files
    again.release()


def test_foreign_files_are_refused_and_left_alone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(_rows(4), out / "export.parquet")  # a user's file, valid Parquet with an id column
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"holds 2 file\(s\) this mining run did not write \(export.parquet"):
        OwnedOutput.open(_config(tmp_path, out))
    assert (out / "export.parquet").exists() and not (out / LOCK).exists()
    # Also under a folder lsr owns: a file dropped in later is not taken for a finished row.
    owned, _ = OwnedOutput.open(_config(tmp_path, tmp_path / "owned"))
    owned.release()
    (tmp_path / "owned" / "part-copy.parquet").write_bytes((out / "export.parquet").read_bytes())
    with pytest.raises(InputError, match="did not write"):
        OwnedOutput.open(_config(tmp_path, tmp_path / "owned"))


def test_other_settings_are_refused_unless_starting_over(tmp_path):
    out = tmp_path / "out"
    owned, _ = OwnedOutput.open(_config(tmp_path, out))
    written = owned.add(_rows(3))
    owned.release()
    with pytest.raises(InputError, match=r"was mined with other settings \(input: .*; dataset: 'cnndm' there, 'xsum'"):
        OwnedOutput.open(_config(tmp_path, out, dataset="xsum", input_name="other.jsonl"))
    owned, opened = OwnedOutput.open(_config(tmp_path, out, dataset="xsum"), start_over=True)
    assert opened.files == [] and not os.path.exists(written) and opened.cleaned == [os.path.basename(written)]
    assert json.loads((out / MANIFEST).read_text())["identity"]["dataset"] == "xsum"
    owned.release()


def test_a_live_lock_refuses_a_second_run_and_a_stale_one_is_taken_over(tmp_path):
    out = tmp_path / "out"
    owned, _ = OwnedOutput.open(_config(tmp_path, out))
    with pytest.raises(InputError, match=r"another lsr mine run is writing here \(pid \d+ on"):
        OwnedOutput.open(_config(tmp_path, out))
    owned.release()

    host = socket.gethostname()
    (out / LOCK).write_text(json.dumps({"host": host, "pid": _dead_pid(), "token": "x", "heartbeat": time.time()}))
    owned, _ = OwnedOutput.open(_config(tmp_path, out))  # its process is gone: stale at once
    owned.release()
    old = time.time() - STALE_AFTER_S - 1
    (out / LOCK).write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "y", "heartbeat": old}))
    owned, _ = OwnedOutput.open(_config(tmp_path, out))  # no heartbeat for longer than the stale limit
    owned.release()
    fresh = {"host": "elsewhere", "pid": 1, "token": "z", "heartbeat": time.time()}
    (out / LOCK).write_text(json.dumps(fresh))
    with pytest.raises(InputError, match="another lsr mine run"):  # another host, recent heartbeat: live
        OwnedOutput.open(_config(tmp_path, out))


def test_writes_cut_by_a_kill_are_finished_or_undone(tmp_path):
    out = tmp_path / "out"
    owned, _ = OwnedOutput.open(_config(tmp_path, out))
    kept = owned.add(_rows(2))
    owned.release()
    manifest = json.loads((out / MANIFEST).read_text())
    # Killed after listing a file and before renaming it: the next run finishes the rename.
    pending = "part-dead-00001.parquet"
    pq.write_table(_rows(2, start=2), out / (TMP_PREFIX + pending))
    manifest["files"].append(pending)
    # Killed before listing: an unlisted temporary file is deleted.
    pq.write_table(_rows(2, start=4), out / (TMP_PREFIX + "part-dead-00002.parquet"))
    # A listed file another hand broke: deleted, its rows redone.
    broken = "part-dead-00003.parquet"
    (out / broken).write_bytes(b"PAR1 not really")
    manifest["files"].append(broken)
    (out / MANIFEST).write_text(json.dumps(manifest))

    owned, opened = OwnedOutput.open(_config(tmp_path, out))
    owned.release()
    assert opened.finished == [pending] and sorted(opened.files) == sorted([kept, str(out / pending)])
    assert opened.broken == [str(out / broken)] and opened.cleaned == [TMP_PREFIX + "part-dead-00002.parquet"]
    ids = pq.read_table(out).column("id").to_pylist()
    assert sorted(ids) == ["d0", "d1", "d2", "d3"]


def test_an_output_that_is_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    docs = tmp_path / "in.jsonl"
    docs.write_text(json.dumps({"id": "a", "document": "Some text.", "summary": "Text."}) + "\n")
    args = ["mine", "--input", str(docs), "--dataset", "cnndm", "--engine", "oracle", "--output"]
    assert main([*args, str(target)]) == 2
    assert "the output must be a directory" in capsys.readouterr().err


def test_an_unwritable_output_is_one_line(tmp_path, capsys):
    docs = tmp_path / "in.jsonl"
    docs.write_text(json.dumps({"id": "a", "document": "Some text.", "summary": "Text."}) + "\n")
    args = ["mine", "--input", str(docs), "--dataset", "cnndm", "--engine", "oracle", "--output"]
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    # Root may write into a read-only folder; nobody can create folders in /proc (Linux), so use that there.
    target = locked / "out" if not os.access(locked, os.W_OK) else Path("/proc/lsr-unwritable/out")
    try:
        assert main([*args, str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "cannot" in err
    finally:
        locked.chmod(0o700)


def test_selection_refuses_duplicated_ids(tmp_path):
    folder = tmp_path / "mined"
    folder.mkdir()
    pq.write_table(_rows(3), folder / "a.parquet")
    pq.write_table(_rows(2, start=2), folder / "b.parquet")  # d2 twice: what two runs on one folder leave
    with pytest.raises(InputError, match=r"1 id\(s\) occur more than once \(e.g. d2\)"):
        check_unique_ids(str(folder))
    (folder / "b.parquet").unlink()
    check_unique_ids(str(folder))
