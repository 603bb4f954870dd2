"""The alignment targets: encoded once by the initial encoder (a Ray Data pass), stored, counted, reused."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lsr.model.batching import pad_batch
from lsr.model.views import VIEWS, rationale_text
from lsr.training.targets import TargetOptions, encode_texts, fixed_encoder, target_key


def _reference(texts: list[str], max_tokens: int) -> np.ndarray:
    """The fixed encoder's mean-pooled encoding, computed text by text without the pass's batching."""
    from lsr.model.modules import masked_mean

    model, tok = fixed_encoder("tiny", seed=0)
    out = []
    with torch.no_grad():
        for text in texts:
            enc = tok([text], truncation=True, max_length=max_tokens, return_tensors="pt")
            states = model.model.encoder.encode_targets(enc["input_ids"], enc["attention_mask"])
            out.append(masked_mean(states, enc["attention_mask"])[0].numpy())
    return np.stack(out)


def test_encoded_texts_are_mean_pooled_and_empty_or_long_texts_are_flagged():
    model, tok = fixed_encoder("tiny", seed=0)
    texts = ["LPAC # backs # Clinton", "", "a much longer rationale text " * 20]
    vectors, present, truncated = encode_texts(model, tok, texts, max_tokens=16)
    assert present.tolist() == [True, False, True] and truncated.tolist() == [False, False, True]
    assert np.allclose(vectors[[0, 2]], _reference([texts[0], texts[2]], 16), atol=1e-5)  # padding changes nothing
    assert not vectors[1].any()


def test_the_key_changes_with_the_encoder_and_the_text_settings_only():
    options = TargetOptions()
    key = target_key("tiny", 0, options, "data-a")
    assert key == target_key("tiny", 0, TargetOptions(target_batch_size=4, target_actors=2), "data-a")
    assert key != target_key("tiny", 1, options, "data-a")
    assert key != target_key("tiny", 0, TargetOptions(rationale_max_tokens=64), "data-a")
    assert key != target_key("tiny", 0, TargetOptions(target_dtype="float16"), "data-a")
    assert key != target_key("tiny", 0, options, "data-b")


@pytest.mark.usefixtures("ray_local")
def test_the_pass_stores_the_fixed_encoders_vectors_and_counts_empty_and_cut_views(
    tmp_path, cnndm_path, selection_rows, write_selection
):
    from lsr.cli.main import main

    rows = selection_rows(cnndm_path, 6)
    rows[1]["triples"] = [[] for _ in rows[1]["triples"]]  # no triples: TER is empty for this row
    data = write_selection(rows, tmp_path / "selected")
    args = ["targets", "--data", str(data), "--rationale-max-tokens", "12", "--target-batch-size", "4"]
    assert main(args) == 0
    (folder,) = [p for p in (data / "targets").iterdir() if p.is_dir()]
    table = pq.read_table(folder).to_pylist()
    by_id = {row["id"]: row for row in table}
    assert set(by_id) == {r["id"] for r in rows}
    for view, column in zip(VIEWS, ("aspects", "sentences", "triples"), strict=True):
        texts = [rationale_text(view, r[column]) for r in rows]
        stored = np.array([by_id[r["id"]][f"{view}_target"] for r in rows], dtype=np.float32)
        present = [t != "" for t in texts]
        assert [by_id[r["id"]][f"{view}_present"] for r in rows] == present
        expected = _reference([t for t in texts if t], 12)
        assert np.allclose(stored[np.array(present)], expected, atol=1e-5), view
    assert by_id[rows[1]["id"]]["ter_present"] is False

    import json

    meta = json.loads(folder.with_name(folder.name + ".json").read_text())
    assert meta["counts"]["rows"] == 6 and meta["counts"]["empty"]["ter"] == 1
    assert meta["counts"]["truncated"]["as"] == sum(by_id[r["id"]]["as_truncated"] for r in rows) > 0
    mtimes = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert main(args) == 0  # present: reused, not recomputed
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes

    assert main([*args, "--target-dtype", "float16"]) == 0
    (half,) = [p for p in (data / "targets").iterdir() if p.is_dir() and p != folder]
    half_table = pq.read_table(half)
    assert str(half_table.schema.field("ea_target").type.value_type) == "halffloat"
    batch = {name: half_table.column(name).to_pylist() for name in ("ea_target", "as_target", "ter_target",
                                                                     "ea_present", "as_present", "ter_present")}
    padded = pad_batch(batch, pad_token_id=1)
    assert padded["view_targets"].dtype == torch.float32 and padded["view_targets"].shape[:2] == (6, 3)
    assert padded["view_target_mask"].dtype == torch.bool
