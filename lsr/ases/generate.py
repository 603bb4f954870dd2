"""Iterative AS-ES generation: from the document alone, an ES turn then an AS turn, round after round.

A round is one ES turn and one AS turn, each written from "chain so far + document" (the same
:func:`lsr.ases.chain.source_text` the training rows were built with). A chain ends when an AS turn holds the
``Summary:`` item, or after ``max_rounds`` rounds; an unfinished chain's summary is its last AS turn (flagged
``finished: false`` in the rationale, so a reader can tell). Documents are generated as a batch; a finished one
drops out of the later rounds.

The writer of a turn is a function ``step(sources, type) -> texts``: :func:`model_step` builds it from the dual
variant's two checkpoints (ES model, AS model) or the unified variant's one; tests give a scripted one.

Turns are decoded with the summary settings less the n-gram block (:func:`turn_generation`): the chain's format
repeats its tags (`` | Aspect:`` once per line), so ``no_repeat_ngram_size`` would forbid the second aspect of a
turn and break the chain. ``max_new_tokens`` (per turn) and ``max_rounds`` still bound a looping student.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsr.ases.chain import TYPES, Rationale, SegmentType, Turn, is_final, parse_turns, source_text
from lsr.model.generate import generate, load_summarizer

StepFn = Callable[[Sequence[str], SegmentType], list[str]]
DEFAULT_MAX_ROUNDS = 8


@dataclass
class Generated:
    """One document's generated chain: its turns, the rationale read back from them, and the summary."""

    turns: list[Turn] = field(default_factory=list)
    rationale: Rationale = field(default_factory=Rationale)
    rounds: int = 0

    @property
    def summary(self) -> str:
        return self.rationale.summary

    def as_dict(self) -> dict[str, Any]:
        return {
            "turns": [{"type": t.type, "text": t.text} for t in self.turns],
            "rounds": self.rounds,
            **self.rationale.as_dict(),
        }


def _finish(turns: list[Turn], rounds: int) -> Generated:
    rationale = parse_turns(t.text for t in turns)
    if not rationale.finished:
        last_as = [t.text for t in turns if t.type == "AS"]
        rationale.summary = last_as[-1] if last_as else ""
    return Generated(turns=turns, rationale=rationale, rounds=rounds)


def generate_chains(documents: Sequence[str], step: StepFn, *, unified: bool,
                    max_rounds: int = DEFAULT_MAX_ROUNDS) -> list[Generated]:
    """The chains of ``documents`` (module docstring); at most ``max_rounds`` rounds, whatever ``step`` writes."""
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    chains: list[list[Turn]] = [[] for _ in documents]
    rounds = [0] * len(documents)
    active = list(range(len(documents)))
    for _ in range(max_rounds):
        if not active:
            break
        for kind in TYPES:
            sources = [source_text(documents[i], chains[i], kind, unified=unified) for i in active]
            texts = step(sources, kind)
            if len(texts) != len(active):
                raise RuntimeError(f"the {kind} step returned {len(texts)} texts for {len(active)} inputs")
            for i, text in zip(active, texts, strict=True):
                chains[i].append(Turn(kind, " ".join(str(text).split())))
        for i in active:
            rounds[i] += 1
        active = [i for i in active if not is_final(chains[i][-1].text)]
    return [_finish(chain, n) for chain, n in zip(chains, rounds, strict=True)]


def turn_generation(generation_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``generate`` settings of one turn: the summary's, without ``no_repeat_ngram_size`` (module docstring)."""
    return {k: v for k, v in generation_kwargs.items() if k != "no_repeat_ngram_size"}


def model_step(models: dict[str, tuple[Any, Any]], *, source_max_tokens: int, generation_kwargs: dict[str, Any],
               device: Any = "cpu") -> StepFn:
    """A :data:`StepFn` over loaded checkpoints: ``{"ES": (model, tokenizer), "AS": (model, tokenizer)}``
    (dual: two models; unified: the same pair under both keys)."""
    generation_kwargs = turn_generation(generation_kwargs)

    def step(sources: Sequence[str], kind: SegmentType) -> list[str]:
        model, tokenizer = models[kind]
        return generate(model, tokenizer, sources, source_max_tokens=source_max_tokens,
                        generation_kwargs=generation_kwargs, device=device)

    return step


def load_models(es_model: str, as_model: str | None = None, device: Any = "cpu") -> tuple[dict[str, Any], bool]:
    """The step's models and whether the variant is unified (no ``as_model``: one model writes both types)."""
    es = load_summarizer(es_model, device)
    if as_model is None:
        return {"ES": es, "AS": es}, True
    return {"ES": es, "AS": load_summarizer(as_model, device)}, False
