"""Does the entropy scheme split sensibly with a scorer that is not random? An offline check on the shipped sample.

``lsr segment --scheme entropy`` types a piece AS when a scorer's summed token entropy over it exceeds 1.4 x the
chain's mean. The tests run it with tiny random scorers, whose entropies are flat (about log V per token), so they
check the arithmetic, not the signal. No real scorer can be downloaded here, so this script trains one: the tiny
BART, on the shipped CNN/DM and XSum documents, to copy sentences of the document it reads (document -> one to
three of its sentences, with their tags) -- the ability that makes extracts cheap for any real language model. It
never sees a chain or a reference summary.

The chains it scores are built from held-out CNN/DM rows so that both kinds of piece are really there: the
oracle's associated sentences (copied from the document: extractive) and the reference highlights, written by
journalists (abstractive), as sub-summaries. (The oracle's own chains cannot serve: its aspects, triples and
sub-summaries are cut from the document sentences too, so nothing in them is abstractive.) A sensible split types
the copied sentences ES more often than the highlights; the script prints each kind's ES share and mean entropy per
token under the untrained and the trained scorer, through the stage's own pieces, scorer and labelling rule.

    python bench/bench_entropy_segmentation.py                  # about 10 minutes on two busy CPU cores
    python bench/bench_entropy_segmentation.py --steps 300      # shorter, a weaker copier
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch

from lsr.ases.chain import Item, chain_items
from lsr.ases.entropy import EntropyScorer
from lsr.ases.segment import by_entropy, entropy_pieces
from lsr.mining.oracle import oracle_rationale, split_sentences
from lsr.model.loading import SAMPLES_DIR, tiny_model

MAX_TOKENS = 512


def copy_examples(documents: list[str], rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` (document, target) pairs: the target is one to three tagged sentences among the document's first
    sixteen."""
    pairs = []
    for _ in range(count):
        document = rng.choice(documents)
        sentences = split_sentences(document)[:16] or [document]
        picked = sorted(rng.sample(range(len(sentences)), min(len(sentences), rng.randint(1, 3))))
        pairs.append((document, " ".join(f"Sentence: {sentences[i]}" for i in picked)))
    return pairs


def train_copier(folder: Path, documents: list[str], steps: int, batch_size: int, seed: int) -> Path:
    """The tiny BART trained ``steps`` steps on :func:`copy_examples`, saved to ``folder``."""
    model, tokenizer = tiny_model({"mwf_views": []}, seed=seed)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    started = time.perf_counter()
    for step in range(1, steps + 1):
        sources, targets = zip(*copy_examples(documents, rng, batch_size), strict=True)
        batch = tokenizer(list(sources), truncation=True, max_length=MAX_TOKENS, padding=True, return_tensors="pt")
        labels = tokenizer(list(targets), truncation=True, max_length=96, padding=True, return_tensors="pt")
        target_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        loss = model(**batch, labels=target_ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps:
            print(f"  step {step}: loss {loss.item():.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def held_out_chains(rows: list[dict]) -> list[tuple[str, list[Item]]]:
    """Per row: the oracle's copied associated sentences, then the reference highlights as sub-summaries."""
    chains = []
    for row in rows:
        rationale = oracle_rationale(row["document"], row["summary"], "cnndm")
        chain = {"sentences": rationale.sentences, "sub_summaries": split_sentences(row["summary"])}
        chains.append((row["document"], chain_items(chain)))
    return chains


def split_statistics(scorer_path: Path, chains: list[tuple[str, list[Item]]]) -> dict[str, dict[str, float]]:
    """ES share and mean entropy per token of each role's pieces, labelled by the stage's rule."""
    scorer = EntropyScorer(str(scorer_path), max_tokens=MAX_TOKENS)
    totals: dict[str, dict[str, float]] = {}
    for document, items in chains:
        pieces = entropy_pieces(items)
        texts = [text for _, text in pieces]
        entropies, _ = scorer.score(document, texts)
        lengths = [len(ids) for ids in scorer._piece_ids(texts)]
        for segment, length in zip(by_entropy(pieces, entropies), lengths, strict=True):
            role = totals.setdefault(segment.role, {"pieces": 0, "ES": 0, "entropy": 0.0, "tokens": 0})
            role["pieces"] += 1
            role["ES"] += segment.type == "ES"
            role["entropy"] += segment.score
            role["tokens"] += length
    return {role: {"pieces": t["pieces"], "es_share": round(t["ES"] / t["pieces"], 3),
                   "entropy_per_token": round(t["entropy"] / max(t["tokens"], 1), 3)} for role, t in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps of the copying scorer")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--held-out", type=int, default=10, help="CNN/DM sample rows whose chains are scored")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (SAMPLES_DIR / name).read_text(encoding="utf-8").splitlines() if line]

    cnndm, xsum = rows("cnndm_sample.jsonl"), rows("xsum_sample.jsonl")
    held_out, trained_on = cnndm[: args.held_out], cnndm[args.held_out :] + xsum
    chains = held_out_chains(held_out)
    with tempfile.TemporaryDirectory() as tmp:
        untrained = train_copier(Path(tmp) / "untrained", [], 0, args.batch_size, args.seed)
        print(f"training the copying scorer on {len(trained_on)} documents, {args.steps} steps", flush=True)
        trained = train_copier(Path(tmp) / "trained", [r["document"] for r in trained_on], args.steps,
                               args.batch_size, args.seed)
        results = {"untrained (random) scorer": split_statistics(untrained, chains),
                   f"copying scorer, {args.steps} steps": split_statistics(trained, chains)}
    names = {"sentence": "copied associated sentences (ES expected)",
             "sub_summary": "reference highlights (AS expected)"}
    print(f"\n{len(held_out)} held-out CNN/DM chains, rule: AS when summed entropy > 1.4 x the chain's mean\n")
    print("| scorer | pieces | ES share | entropy / token |\n|---|---|---:|---:|")
    for scorer, stats in results.items():
        for role, label in names.items():
            s = stats[role]
            print(f"| {scorer} | {label}: {s['pieces']} | {s['es_share']:.2f} | {s['entropy_per_token']:.2f} |")


if __name__ == "__main__":
    main()
