"""AS-ES learning: segmentation under both schemes, training rows, iterative generation, explain,
``lsr segment`` on Ray Data and each variant trained a few steps through ``lsr train`` on Ray Train."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from lsr.ases.chain import ITEM_SEPARATOR, Segment, Turn, chain_items, is_final, parse_turns, turns
from lsr.ases.dataset import training_examples
from lsr.ases.explain import explain, locate
from lsr.ases.generate import Generated, generate_chains
from lsr.ases.segment import by_entropy, by_source, entropy_pieces, label_by_entropy, split_clauses
from lsr.cli.main import main
from lsr.core.schema import RATIONALES
from tests.helpers.paths import SAMPLES

DOCUMENT = (
    "The mayor, smiling, opened the new bridge on Monday. Traffic fell by half within a week. "
    "Residents said the river crossing now takes five minutes."
)
ROW = {
    "id": "r1",
    "document": DOCUMENT,
    "summary": "A new bridge opened and traffic halved.",
    "aspects": ["Bridge opening", "Traffic"],
    "sentences": ["The mayor, smiling, opened the new bridge on Monday.", "Traffic dropped sharply soon after."],
    "triples": [
        [{"subject": "mayor", "relation": "opened", "object": "bridge"}],
        [{"subject": "traffic", "relation": "fell by", "object": "half"},
         {"subject": "crossing", "relation": "takes", "object": "five minutes"}],
    ],
    "sub_summaries": ["A bridge opened."],
    "total_summary": "The mayor opened a bridge and traffic fell.",
}
SUMMARY_ITEM = "Summary: The mayor opened a bridge and traffic fell."


# ---- the chain and segmentation -------------------------------------------------------------------------------


def test_chain_items_put_each_lines_sentence_first_then_aspect_and_triples_then_sub_summaries():
    items = chain_items(ROW)
    assert [(i.role, i.text) for i in items] == [
        ("sentence", "The mayor, smiling, opened the new bridge on Monday."),
        ("aspect", "Bridge opening"),
        ("triples", "mayor # opened # bridge"),
        ("sentence", "Traffic dropped sharply soon after."),
        ("aspect", "Traffic"),
        ("triples", "traffic # fell by # half ; crossing # takes # five minutes"),
        ("sub_summary", "A bridge opened."),
    ]


def test_by_source_types_copied_sentences_es_and_paraphrases_aspects_triples_as():
    segments = by_source(chain_items(ROW), DOCUMENT)
    assert [s.type for s in segments] == ["ES", "AS", "AS", "AS", "AS", "AS", "AS"]
    assert segments[0].score == 1.0 and segments[3].score == pytest.approx(0.2)  # "traffic" of five words
    # The threshold and the roles that may be ES are settings: a low threshold lets the paraphrase in, and
    # triples whose words run in order through a document sentence count as taken from it.
    loose = by_source(chain_items(ROW), DOCUMENT, threshold=0.2, extractive_roles=["sentence", "triples"])
    assert [s.type for s in loose] == ["ES", "AS", "ES", "ES", "AS", "ES", "AS"]
    assert loose[5].score == pytest.approx(0.5)  # traffic fell by half: 4 of its 8 words


def test_entropy_scheme_splits_at_clauses_and_types_pieces_above_1_4_times_the_mean_as():
    assert split_clauses("The mayor, smiling, opened it. Then; done") == ["The mayor,", "smiling,", "opened it.",
                                                                          "Then;", "done"]
    pieces = entropy_pieces(chain_items(ROW))
    assert [text for _, text in pieces] == [
        "Sentence: The mayor,", "smiling,", "opened the new bridge on Monday.",
        "Aspect: Bridge opening", "Triples: mayor # opened # bridge",
        "Sentence: Traffic dropped sharply soon after.", "Aspect: Traffic",
        "Triples: traffic # fell by # half ;", "crossing # takes # five minutes",
        "Sub-summary: A bridge opened.",
    ]
    entropies = [1.0, 1.0, 2.0, 6.0, 9.0, 2.0, 5.0, 7.0, 1.0, 6.0]  # mean 4.0, cut 5.6
    segments = by_entropy(pieces, entropies)
    assert [s.type for s in segments] == ["ES", "ES", "ES", "AS", "AS", "ES", "ES", "AS", "ES", "AS"]
    assert label_by_entropy([1, 1, 1, 5]) == ["ES", "ES", "ES", "AS"]  # 5 > 1.4 * 2
    assert label_by_entropy([2, 2, 2]) == ["ES", "ES", "ES"]  # nothing stands out: all extractive
    with pytest.raises(ValueError, match="10 pieces but 2"):
        by_entropy(pieces, [1.0, 2.0])


def test_turns_alternate_es_first_and_close_with_the_summary_and_parse_back():
    segments = by_entropy(entropy_pieces(chain_items(ROW)), [1.0, 1.0, 2.0, 6.0, 9.0, 2.0, 5.0, 7.0, 1.0, 6.0])
    chain = turns(segments, ROW["total_summary"])
    assert [t.type for t in chain] == ["ES", "AS", "ES", "AS", "ES", "AS"]
    assert chain[0].text == "Sentence: The mayor, smiling, opened the new bridge on Monday."
    assert chain[1].text == "Aspect: Bridge opening | Triples: mayor # opened # bridge"
    assert chain[3].text == "Triples: traffic # fell by # half ;"
    assert chain[4].text == "crossing # takes # five minutes"  # the same item goes on, untagged
    assert chain[5].text == f"Sub-summary: A bridge opened.{ITEM_SEPARATOR}{SUMMARY_ITEM}"
    rationale = parse_turns(t.text for t in chain)
    assert rationale.finished and rationale.summary == ROW["total_summary"]
    assert rationale.as_dict()["triples"] == [["mayor # opened # bridge"],
                                              ["traffic # fell by # half", "crossing # takes # five minutes"]]
    assert rationale.texts("sentence") == ROW["sentences"]
    # A chain that opens with an abstraction gets an empty ES turn first; a trailing ES gets its own AS summary.
    opening_as = turns([Segment("Aspect: x", "AS", "aspect", 0), Segment("Sentence: y", "ES", "sentence", 1)], "s")
    assert [(t.type, t.text) for t in opening_as] == [("ES", ""), ("AS", "Aspect: x"), ("ES", "Sentence: y"),
                                                      ("AS", "Summary: s")]


# ---- training rows ------------------------------------------------------------------------------------------


def _segmented_row() -> dict:
    return {**ROW, "segments": [s.as_row() for s in by_source(chain_items(ROW), DOCUMENT)]}


def test_dual_and_unified_training_rows_are_chain_so_far_plus_document_to_next_turn():
    row = _segmented_row()
    es_turn = "Sentence: The mayor, smiling, opened the new bridge on Monday."
    as_turn = ("Aspect: Bridge opening | Triples: mayor # opened # bridge | Sentence: Traffic dropped sharply soon "
               "after. | Aspect: Traffic | Triples: traffic # fell by # half ; crossing # takes # five minutes | "
               f"Sub-summary: A bridge opened. | {SUMMARY_ITEM}")
    assert training_examples(row, "dual-es") == [
        {"id": "r1#0", "document": f"[document] {DOCUMENT}", "summary": es_turn}
    ]
    assert training_examples(row, "dual-as") == [
        {"id": "r1#1", "document": f"[ES] {es_turn} [document] {DOCUMENT}", "summary": as_turn}
    ]
    assert training_examples(row, "unified") == [
        {"id": "r1#0", "document": f"[extract] [document] {DOCUMENT}", "summary": es_turn},
        {"id": "r1#1", "document": f"[abstract] [ES] {es_turn} [document] {DOCUMENT}", "summary": as_turn},
    ]
    with pytest.raises(ValueError, match="unknown AS-ES variant"):
        training_examples(row, "triple")


# ---- generation and explain ---------------------------------------------------------------------------------


def test_generation_stops_at_the_summary_or_the_round_limit_with_alternating_turns():
    calls = []

    def step(sources, kind):
        calls.append((len(sources), kind))
        out = []
        for source in sources:
            rounds_done = source.count("[AS]")
            if kind == "ES":
                out.append(f"Sentence: fact {rounds_done}.")
            elif "first" in source and rounds_done == 1:  # the first document finishes in round 2
                out.append(f"Aspect: a{rounds_done} | Summary: done.")
            else:
                out.append(f"Aspect: a{rounds_done}")
        return out

    first, second = generate_chains(["first doc", "second doc"], step, unified=False, max_rounds=3)
    assert first.rounds == 2 and first.rationale.finished and first.summary == "done."
    assert [t.type for t in first.turns] == ["ES", "AS", "ES", "AS"]
    assert first.rationale.texts("sentence") == ["fact 0.", "fact 1."]
    assert second.rounds == 3 and not second.rationale.finished and len(second.turns) == 6
    assert second.summary == "Aspect: a2"  # an unfinished chain falls back to its last AS turn, flagged
    assert calls == [(2, "ES"), (2, "AS"), (2, "ES"), (2, "AS"), (1, "ES"), (1, "AS")]  # finished ones drop out
    assert is_final("Aspect: x | Summary: y") and not is_final("Aspect: summary of it")


def test_explain_locates_associated_sentences_and_flags_ungrounded_ones():
    exact = locate("traffic   fell by half within a week.", DOCUMENT)
    assert exact["match"] == "exact" and DOCUMENT[exact["start"]:exact["end"]] == "Traffic fell by half within a week."
    approximate = locate("Residents said the river crossing takes five minutes.", DOCUMENT)
    assert approximate["match"] == "approximate" and approximate["grounded"]
    assert DOCUMENT[approximate["start"]:approximate["end"]].startswith("Residents said")
    assert locate("Aliens landed in the square.", DOCUMENT)["grounded"] is False

    chain = [Turn("ES", "Sentence: Traffic fell by half within a week."),
             Turn("AS", "Aspect: Traffic | Triples: traffic # fell # half"),
             Turn("ES", "Sentence: Aliens landed."),
             Turn("AS", "Summary: Traffic halved.")]
    generated = Generated(turns=chain, rationale=parse_turns(t.text for t in chain), rounds=2)
    answer = explain(generated, DOCUMENT)
    assert answer["summary"] == "Traffic halved." and answer["finished"] and answer["aspects"] == ["Traffic"]
    assert [s["grounded"] for s in answer["sentences"]] == [True, False] and answer["ungrounded_sentences"] == 1
    assert answer["triples"] == [["traffic # fell # half"]]
    json.dumps(answer)  # JSON-ready for the serving answer


# ---- tiny models --------------------------------------------------------------------------------------------


def _tiny_bart(folder: Path) -> Path:
    from lsr.model.loading import tiny_model

    model, tokenizer = tiny_model({"mwf_views": []}, seed=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _tiny_gpt2(folder: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    from lsr.model.loading import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_head=2, n_embd=16, n_positions=256)
                    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", ["seq2seq", "causal"])
def test_entropy_scorer_sums_each_pieces_token_entropies(tmp_path, monkeypatch, kind):
    from lsr.ases import entropy

    path = (_tiny_bart if kind == "seq2seq" else _tiny_gpt2)(tmp_path / kind)
    scorer = entropy.EntropyScorer(str(path), max_tokens=128)
    pieces = [text for _, text in entropy_pieces(chain_items(ROW))]
    values, truncated = scorer.score(DOCUMENT, pieces)
    assert len(values) == len(pieces) and truncated == 0 and all(v > 0 for v in values)

    # With every token's entropy fixed at 1, a piece's score is its token count: the rule is then exact.
    monkeypatch.setattr(entropy, "token_entropies", lambda logits: torch.ones(logits.shape[0]))
    counts, _ = scorer.score(DOCUMENT, pieces)
    assert counts == [float(len(ids)) for ids in scorer._piece_ids(pieces)]
    short = entropy.EntropyScorer(str(path), max_tokens=8)
    cut, truncated = short.score(DOCUMENT, pieces)
    assert sum(cut) == 8.0 and truncated >= 1
    positions = 256 if kind == "causal" else 1024
    assert entropy.EntropyScorer(str(path), max_tokens=100_000).max_tokens == positions - 1  # capped to the model


def _oracle_rows(n: int) -> list[dict]:
    """Real mined rows, offline: the oracle miner's rationale and summaries for the shipped CNN/DM sample."""
    from lsr.mining.oracle import oracle_rationale, oracle_summaries

    rows = []
    for line in (SAMPLES / "cnndm_sample.jsonl").read_text(encoding="utf-8").splitlines()[:n]:
        record = json.loads(line)
        rationale = oracle_rationale(record["document"], record["summary"], "cnndm")
        subs, total = oracle_summaries(rationale, "cnndm")
        rows.append({
            "id": record["id"], "document": record["document"], "summary": record["summary"],
            "aspects": rationale.aspects, "sentences": rationale.sentences,
            "triples": [[dict(zip(("subject", "relation", "object"), t, strict=True)) for t in line]
                        for line in rationale.triples],
            "sub_summaries": subs, "total_summary": total, "engine": "oracle",
        })
    return rows


def _write_mined(rows: list[dict], folder: Path) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RATIONALES), folder / "part-0.parquet")
    return folder


def test_lsr_segment_writes_segments_and_the_split_report_under_both_schemes(ray_local, tmp_path):
    mined = _write_mined(_oracle_rows(6), tmp_path / "mined")
    out = tmp_path / "seg"
    assert main(["segment", "--input", str(mined), "--output", str(out)]) == 0
    table = pq.read_table(out / "segmented").to_pylist()
    assert len(table) == 6
    for row in table:  # the oracle copies its associated sentences from the document: all of them are ES
        assert {s["type"] for s in row["segments"] if s["role"] == "sentence"} == {"ES"}
        assert {s["type"] for s in row["segments"] if s["role"] != "sentence"} == {"AS"}
    report = json.loads((out / "segment_report.json").read_text())
    sentences = sum(len(r["sentences"]) for r in table)
    assert report["rows"] == 6 and report["per_role"]["sentence"] == {"ES": sentences, "AS": 0, "es_share": 1.0}
    assert "| segments |" in (out / "segment_report.md").read_text()
    assert main(["segment", "--input", str(mined), "--output", str(out)]) == 2  # no silent overwrite

    scorer = _tiny_bart(tmp_path / "scorer")
    out_e = tmp_path / "seg_entropy"
    assert main(["segment", "--input", str(mined), "--output", str(out_e), "--scheme", "entropy",
                 "--scorer", str(scorer), "--scorer-max-tokens", "256"]) == 0
    for row in pq.read_table(out_e / "segmented").to_pylist():
        scores = [s["score"] for s in row["segments"]]
        assert [s["type"] for s in row["segments"]] == label_by_entropy(scores)  # the stored entropies decided
    assert json.loads((out_e / "segment_report.json").read_text())["scheme"] == "entropy"
    assert main(["segment", "--input", str(mined), "--output", str(tmp_path / "x"), "--scheme", "entropy"]) == 2


TRAIN = ["--dataset", "cnndm", "--model", "tiny", "--views", "none", "--objective", "as-es", "--workers", "1",
         "--batch-size", "2", "--source-max-tokens", "96", "--target-max-tokens", "48", "--warmup-steps", "2",
         "--lr-scale", "0.01", "--checkpoint-every", "2", "--max-steps", "2"]


def test_each_variant_trains_through_ray_train_and_the_students_generate_chains(ray_local, tmp_path):
    from lsr.ases.generate import load_models, model_step

    mined = _write_mined(_oracle_rows(4), tmp_path / "mined")
    assert main(["segment", "--input", str(mined), "--output", str(tmp_path / "seg")]) == 0
    data = str(tmp_path / "seg" / "segmented")
    for variant in ("dual-es", "dual-as", "unified"):
        output = tmp_path / variant
        assert main(["train", *TRAIN, "--ases-variant", variant, "--data", data, "--output", str(output)]) == 0
        report = json.loads((output / "train_report.json").read_text())
        assert report["steps"] == 2 and report["config"]["objective"]["ases_variant"] == variant
        history = [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines()]
        assert [row["step"] for row in history] == [1, 2] and all(row["loss/ce"] > 0 for row in history)
    examples = {v: json.loads((tmp_path / v / "train_report.json").read_text())["examples"]
                for v in ("dual-es", "dual-as", "unified")}
    # The oracle's chains: per line an ES turn (its copied sentence) and an AS turn (aspect, triples, ...).
    sentences = sum(len(r["sentences"]) for r in pq.read_table(data).to_pylist())
    assert examples == {"dual-es": sentences, "dual-as": sentences, "unified": 2 * sentences}

    generation = {"num_beams": 1, "max_new_tokens": 6}
    document = json.loads((SAMPLES / "cnndm_sample.jsonl").read_text().splitlines()[0])["document"]
    for es, as_ in ((tmp_path / "dual-es" / "model", tmp_path / "dual-as" / "model"),
                    (tmp_path / "unified" / "model", None)):
        models, unified = load_models(str(es), str(as_) if as_ else None)
        step = model_step(models, source_max_tokens=96, generation_kwargs=generation)
        [chain] = generate_chains([document], step, unified=unified, max_rounds=2)
        assert 1 <= chain.rounds <= 2 and len(chain.turns) == 2 * chain.rounds
        assert [t.type for t in chain.turns] == ["ES", "AS"] * chain.rounds
        assert isinstance(chain.summary, str) and json.dumps(explain(chain, document))

    # lsr evaluate's hook: the summary in ``prediction`` (scored like any model's), the rationale kept beside it.
    from lsr.ases.evaluation import generate_ases_predictions

    rows = [{"id": "a", "document": document, "summary": "x"}, {"id": "b", "document": DOCUMENT, "summary": "y"}]
    predicted = generate_ases_predictions(
        ray_local.data.from_items(rows), str(tmp_path / "dual-es" / "model"), str(tmp_path / "dual-as" / "model"),
        source_max_tokens=96, generation_kwargs=generation, max_rounds=2,
    ).to_pandas()
    assert sorted(predicted["id"]) == ["a", "b"]
    for prediction, rationale in zip(predicted["prediction"], predicted["rationale"], strict=True):
        parsed = json.loads(rationale)
        assert parsed["summary"] == prediction and 1 <= parsed["rounds"] <= 2
        assert [t["type"] for t in parsed["turns"]] == ["ES", "AS"] * parsed["rounds"]


def test_as_es_objective_refuses_mwf_views_and_unsegmented_data(ray_local, tmp_path):
    from lsr.cli.main import build_parser
    from lsr.core.cli_config import config_from_args
    from lsr.core.errors import InputError

    def run(*flags):
        args = build_parser().parse_args(["train", *flags])
        return args._run(args)  # the library, not the CLI's exit code, to see the error itself

    with pytest.raises(InputError, match="as-es objective trains a plain BART student: pass --views none"):
        config_from_args(build_parser().parse_args(["train", *TRAIN[:4], "--objective", "as-es", "--data", "x",
                                                    "--output", "y", "--max-steps", "1"]))
    mined = _write_mined(_oracle_rows(2), tmp_path / "mined")
    with pytest.raises(InputError, match="missing column.*segments"):
        run(*TRAIN, "--data", str(mined), "--output", str(tmp_path / "run"))
